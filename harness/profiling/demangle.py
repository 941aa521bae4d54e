"""Readable names for mangled symbols (Rust's two schemes, C++), as py-spy and perf
pass them on.

py-spy demangles the path of a legacy Rust symbol but leaves the escapes of
the characters a linker symbol cannot hold (``$LT$`` for ``<``, ``..`` for
``::`` inside a type) and the trailing hash. ``Zip$LT$$LP$P1$C$P2$RP$$C$D$GT$
::for_each::h426a7eef2c90ebc1`` reads ``Zip<(P1,P2),D>::for_each``.

perf passes names on as the symbol table holds them: Rust's v0 scheme
(``_R...``), whose grammar of back-references and generic arguments is
binutils' to know, goes through ``c++filt`` (``demangle_all``), which reads
both Rust schemes and C++; the crates' disambiguating hashes are then dropped,
so that a name reads as it is written in the source.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable

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


# A symbol still mangled: the v0 scheme (_R...) or the Itanium/legacy one (_ZN...).
MANGLED = re.compile(r"^_(R|ZN)[0-9A-Za-z_$.]+$")
# v0 names carry each crate's disambiguator: core[c1f1a4ba060b9bfa]::ops.
_CRATE_HASH = re.compile(r"\[[0-9a-f]{8,16}\]")


def demangle_all(names: Iterable[str], cxxfilt: str | None = None) -> dict[str, str]:
    """Readable names for every mangled one of ``names``: Rust's v0 and legacy
    symbols and C++'s, through binutils' c++filt (one process for all of them),
    else the legacy unescaping above; names that are not mangled map to themselves."""
    names = list(dict.fromkeys(names))
    mangled = [n for n in names if MANGLED.match(n)]
    found = _cxxfilt(mangled, cxxfilt or shutil.which("c++filt")) if mangled else {}
    out = {}
    for name in names:
        readable = found.get(name) or demangle(name)
        out[name] = _HASH.sub("", _CRATE_HASH.sub("", readable))
    return out


def _cxxfilt(names: list[str], cxxfilt: str | None) -> dict[str, str]:
    if cxxfilt is None:
        return {}
    try:
        done = subprocess.run([cxxfilt], input="\n".join(names) + "\n", capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    lines = done.stdout.splitlines()
    if done.returncode != 0 or len(lines) != len(names):
        return {}
    return {name: line for name, line in zip(names, lines) if line and line != name}
