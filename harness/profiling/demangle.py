"""Readable names for Rust's legacy-mangled symbols, as py-spy passes them on.

py-spy demangles the path of a legacy Rust symbol but leaves the escapes of
the characters a linker symbol cannot hold (``$LT$`` for ``<``, ``..`` for
``::`` inside a type) and the trailing hash. ``Zip$LT$$LP$P1$C$P2$RP$$C$D$GT$
::for_each::h426a7eef2c90ebc1`` reads ``Zip<(P1,P2),D>::for_each``. Names in
the newer v0 scheme (``_R...``) are left as they are: py-spy names their
source file beside them.
"""

from __future__ import annotations

import re

_ESCAPES = {
    "$LT$": "<", "$GT$": ">", "$LP$": "(", "$RP$": ")", "$C$": ",", "$SP$": "@",
    "$BP$": "*", "$RF$": "&",
}
_ESCAPE = re.compile(r"\$(?:LT|GT|LP|RP|C|SP|BP|RF|u[0-9a-f]{2,6})\$")
_HASH = re.compile(r"::h[0-9a-f]{16}$")


def _unescape(match: re.Match[str]) -> str:
    text = match.group(0)
    if text in _ESCAPES:
        return _ESCAPES[text]
    return chr(int(text[2:-1], 16))  # $u7b$ -> '{'


def demangle(name: str) -> str:
    """``name`` with a legacy Rust symbol's escapes undone and its hash dropped;
    any other name unchanged."""
    if not (_HASH.search(name) or "$" in name):
        return name
    readable = _HASH.sub("", name)
    readable = _ESCAPE.sub(_unescape, readable).replace("..", "::")
    if readable.startswith("_<"):
        readable = readable[1:]
    return readable
