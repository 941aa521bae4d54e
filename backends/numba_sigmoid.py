"""The sigmoid of the Numba kernels, with exp written out in plain arithmetic so
that LLVM vectorises it (the scalar libm call took about a sixth of numba's
epoch), and the ``_jit`` every kernel of ``numba_fused`` and ``numba_parallel``
is compiled with."""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from backends.numba_cache import use_cache_keyed_by

# Before the first kernel is decorated: the kernels of numba_fused inline these.
use_cache_keyed_by()

# "reassoc" lets LLVM split a sum into vector accumulators; "contract" makes
# a * b + c one FMA. No "nnan"/"ninf": a diverging run must still show its
# infs and NaNs, which the harness checks for.
FASTMATH = {"reassoc", "contract"}


def _jit(fastmath=FASTMATH, **options):
    # error_model="numpy": a float division needs no zero check, so the
    # sigmoid loop can vectorise (Python's ZeroDivisionError check stops it).
    return njit(cache=True, error_model="numpy", fastmath=fastmath, **options)


# exp subtracts n ln2 in two parts (n times ln2's leading bits is exact);
# "reassoc" would let LLVM merge them and lose r's low bits, so the sigmoid
# gets "contract" only.
_EXACT = {"contract"}


# ----------------------------------------------------------------- exp, sigmoid


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float whose IEEE-754 bit pattern is ``bits``: int64 -> float64, int32 -> float32."""
    if bits == types.int64:
        sig, float_type = types.float64(bits), ir.DoubleType()
    elif bits == types.int32:
        sig, float_type = types.float32(bits), ir.FloatType()
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], float_type)

    return sig, codegen


def _exp64(x):
    """exp(x) within 1 ulp for x in [-708, 709]; clamping x to that range
    moves sigmoid(-x) by less than 1e-307.

    x = n ln2 + r with |r| <= ln2/2; exp(r) by its Taylor series to r^13 (the
    remainder is 4e-18 of the result), 2^n written straight into the exponent bits.
    """
    x = min(max(x, -708.0), 709.0)
    n = np.floor(x * 1.4426950408889634 + 0.5)  # round(x / ln2)
    r = x - n * 0.6931471803691238 - n * 1.9082149292705877e-10  # ln2 in two parts
    p = 1.0 / 6227020800.0
    for inverse_factorial in (
        1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
        1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0,
        1.0 / 6.0, 0.5, 1.0, 1.0,
    ):
        p = p * r + inverse_factorial
    return p * _float_from_bits((np.int64(n) + 1023) << 52)


def _exp32(x):
    """exp(x) in float32 within 2 ulp for x in [-87, 88] (clamped outside, which
    moves sigmoid(-x) by less than 1e-38): as ``_exp64``, Taylor to r^7."""
    f = np.float32
    x = min(max(x, f(-87.0)), f(88.0))
    n = np.floor(x * f(1.442695) + f(0.5))
    r = x - n * f(0.693359375) - n * f(-2.12194440e-4)
    p = f(1.0 / 5040.0)
    for inverse_factorial in (
        f(1.0 / 720.0), f(1.0 / 120.0), f(1.0 / 24.0), f(1.0 / 6.0), f(0.5), f(1.0), f(1.0),
    ):
        p = p * r + inverse_factorial
    return p * _float_from_bits(np.int32((np.int64(n) + 127) << 23))


def _exp(x):
    """exp in x's own precision, in code LLVM can vectorise; for compiled code only."""
    raise NotImplementedError("_exp runs inside Numba-compiled kernels only")


@overload(_exp, jit_options={"fastmath": _EXACT, "error_model": "numpy"})
def _exp_for(x):
    return {types.float64: _exp64, types.float32: _exp32}.get(x)


@_jit(fastmath=_EXACT)
def _sigmoid_inplace(z):
    """z <- 1 / (1 + exp(-z)), a contiguous run."""
    one = z.dtype.type(1)
    for k in range(z.size):
        z[k] = one / (one + _exp(-z[k]))


@_jit(fastmath=_EXACT)
def _sigmoid_columns(z, p, j0, j1):
    """z[i, j] <- sigmoid(z[i, j]) for i < p, j0 <= j < j1: in one run when
    that is all of z[:p] (rows of 10 or 30 are too short for the vector loop)."""
    if j0 == 0 and j1 == z.shape[1]:
        _sigmoid_inplace(z[:p].reshape(p * j1))
    else:
        for i in range(p):
            _sigmoid_inplace(z[i, j0:j1])
