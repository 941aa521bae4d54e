"""What every backend shares: the parameters, their initialisation, the Trainer
protocol, the sigmoid and the exact FLOP count of an epoch.

Layout follows Nielsen's ``network.py``: ``weights[l]`` has shape (n_out, n_in)
and ``biases[l]`` has shape (n_out, 1), so ``sigmoid(w @ a + b)`` feeds a column
vector ``a`` forward one layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class Params:
    """Weights and biases of every layer, in Nielsen's layout."""

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.weights[0].shape[1],) + tuple(w.shape[0] for w in self.weights)

    def astype(self, dtype: str | np.dtype) -> Params:
        """A copy in ``dtype``, every array C-contiguous and owned by the copy."""
        return Params(
            tuple(np.array(w, dtype=dtype, order="C") for w in self.weights),
            tuple(np.array(b, dtype=dtype, order="C").reshape(-1, 1) for b in self.biases),
        )

    def is_finite(self) -> bool:
        return all(np.isfinite(a).all() for a in self.weights + self.biases)


def init_params(sizes: Sequence[int], seed: int) -> Params:
    """The book's initialisation: every weight and bias drawn from N(0, 1).

    Biases are drawn first, then weights, layer by layer, as ``network.py`` does,
    from one seeded ``numpy.random.Generator``.
    """
    sizes = validate_sizes(sizes)
    rng = np.random.default_rng(seed)
    biases = tuple(rng.standard_normal((n_out, 1)) for n_out in sizes[1:])
    weights = tuple(
        rng.standard_normal((n_out, n_in)) for n_in, n_out in zip(sizes[:-1], sizes[1:])
    )
    return Params(weights, biases)


def validate_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    sizes = tuple(int(n) for n in sizes)
    if len(sizes) < 2 or any(n < 1 for n in sizes):
        raise ValueError(
            f"sizes {list(sizes)} must list at least two positive layer widths, e.g. 784,30,10"
        )
    return sizes


@runtime_checkable
class Trainer(Protocol):
    """One implementation strategy of mini-batch SGD for the chapter-1 network.

    ``X`` is (n_samples, n_in), C-contiguous, in the trainer's dtype; ``y`` holds
    integer labels 0..n_out-1 (the target is their one-hot vector). ``order`` is
    the epoch's shuffle: mini-batch ``k`` is ``order[k*batch_size:(k+1)*batch_size]``
    and the last one may be smaller. Every trainer performs the same arithmetic,
    the book's ``update_mini_batch``: gradients of the quadratic cost summed over
    the mini-batch, then ``w -= eta / len(batch) * nabla_w``.
    """

    name: str
    dtype: np.dtype
    # Optional: the threads it trains on when it runs threads of its own (Numba,
    # PyTorch) or pins BLAS's, and the seconds it spent compiling, for a JIT. A
    # trainer without them is read as None (see ``trainer_threads``).
    threads: int | None
    compile_seconds: float | None
    # Also optional: ``choices(batch_size) -> dict``, what the trainer chose for
    # the running machine (instruction set, kernel, threads), which run.json
    # records (see ``trainer_choices``). And ``fix_for_counting()``: fix whatever
    # it would otherwise choose by timing, so that an instruction count runs the
    # same code every time (see ``harness.profiling.instructions``).

    def train_epoch(
        self, X: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int, eta: float
    ) -> None: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def params(self) -> Params: ...


def trainer_threads(trainer: Trainer) -> int | None:
    """The thread count a trainer reports, or None when its libraries decide."""
    return getattr(trainer, "threads", None)


def compile_seconds(trainer: Trainer) -> float | None:
    """The seconds a JIT trainer spent compiling, or None for one that compiles nothing."""
    return getattr(trainer, "compile_seconds", None)


def trainer_choices(trainer: Trainer, batch_size: int) -> dict | None:
    """What a trainer chose for this machine at ``batch_size``, or None for one
    that chooses nothing."""
    choices = getattr(trainer, "choices", None)
    found = choices(batch_size) if callable(choices) else None
    return dict(found) if found else None


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    s = sigmoid(z)
    return s * (1 - s)


def feedforward(params: Params, X: np.ndarray) -> np.ndarray:
    """Output activations for every row of ``X``: (n_samples, n_out)."""
    a = X
    for w, b in zip(params.weights, params.biases):
        a = sigmoid(a @ w.T + b.T)
    return a


def predict_labels(params: Params, X: np.ndarray) -> np.ndarray:
    """The book's ``evaluate``: the index of the most active output neuron."""
    return np.argmax(feedforward(params, X), axis=1)


def mini_batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """The book's slicing of a shuffled epoch: consecutive chunks, the last one short."""
    return [order[k : k + batch_size] for k in range(0, len(order), batch_size)]


def epoch_flops(sizes: Sequence[int], n_samples: int, batch_size: int) -> int:
    """Floating-point operations one epoch needs, counting multiply and add apart.

    Per sample, with N_l = n_in * n_out of layer l:
      forward        2 N_l for every layer (w @ a, plus the bias add, n_out)
      weight grad    2 N_l for every layer (the outer product delta a^T,
                     summed over the mini-batch)
      delta backprop 2 N_l for every layer but the first (w^T delta); no
                     backend computes the gradient of the input, so the
                     first layer is not counted
    Per mini-batch, the update w -= eta/m nabla_w is 2 N_l (and 2 n_out for b).
    Element-wise work (sigmoid, its derivative, the cost derivative) is a few
    operations per neuron and is left out, as GEMM-peak comparisons usually do.
    """
    sizes = validate_sizes(sizes)
    layers = list(zip(sizes[:-1], sizes[1:]))
    per_sample = sum(2 * n_in * n_out + n_out for n_in, n_out in layers)  # forward
    per_sample += sum(2 * n_in * n_out + n_out for n_in, n_out in layers)  # gradients
    per_sample += sum(2 * n_in * n_out for n_in, n_out in layers[1:])  # delta backprop
    n_batches = -(-n_samples // batch_size)
    per_batch = sum(2 * n_in * n_out + 2 * n_out for n_in, n_out in layers)
    return per_sample * n_samples + per_batch * n_batches
