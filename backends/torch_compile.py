"""The ``torch`` backend's model and step under ``torch.compile``.

The same ``nn.Linear`` + ``nn.Sigmoid`` model, quadratic cost, autograd and
``torch.optim.SGD`` as ``torch_backend.py``, compiled the way PyTorch's users
do it: ``torch.compile`` of the whole train step (``STEP``), which dynamo
splits at ``loss.backward()`` into the forward with its cost (whose backward
AOTAutograd compiles with it) and the optimizer's update; or ``torch.compile``
of the model only (``MODEL``), the update then running eagerly.

Compiling happens on the first step of each mini-batch shape, which is in the
first epoch (the harness's warm-up): a short last batch is a second shape, which
dynamo compiles with a dynamic batch dimension. ``compile_seconds`` adds up
those first steps (one step's own run, microseconds, included). The learning
rate is a tensor, so that a new eta changes a value the compiled update reads
rather than a constant it was specialised on (which would compile again).

Inductor's CPU code is C++ built with the system g++. It fuses the
element-wise work (sigmoid, its derivative, the cost's gradient, the update)
into loops and leaves the matrix products to ATen's BLAS. Its defaults keep
the arithmetic: ``-fno-unsafe-math-optimizations`` (no reassociation;
``inductor.config.cpp.enable_unsafe_math_opt_flag``) and ``-ffp-contract=off``
(``enable_floating_point_contract_flag``); only its reductions (the bias
gradients' sums over the batch) may add in an order of their own. The
result matches ``numpy-per-sample`` to 1e-14 in float64 (the tests ask 1e-9).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from backends.base import Params
from backends.torch_backend import TorchTrainer

STEP, MODEL = "step", "model"
# The whole step, because at batch 10 it is the faster of the two: on one
# thread, 1,000-sample slices of an epoch taking turns, best of 25 (scaled to
# 50,000 samples), 5.9 s against 7.2 s with the model alone compiled, and 5.4
# against 6.0 s in a second process: compiled, SGD's update of the four
# parameters is one fused loop instead of eager SGD's kernels per parameter.
# Both are slower there than eager torch (4.6 and 3.3 s): each call into
# compiled code checks its guards and crosses AOTAutograd's wrappers, which
# costs more than the fusion saves on a 10 x 784 batch. At batch 1000 they tie
# (0.40 against 0.38 s, 0.47 against 0.24 s; medians 0.60 and 0.61, 0.65 and
# 0.76 s): the products in BLAS are nearly all of the time.
DEFAULT_MODE = STEP


class TorchCompile(TorchTrainer):
    name = "torch-compile"

    def __init__(self, params: Params, dtype: str = "float64", threads: int | None = None,
                 mode: str = DEFAULT_MODE):
        if mode not in (STEP, MODEL):
            raise ValueError(f"unknown mode {mode!r}; one of {STEP!r}, {MODEL!r}")
        super().__init__(params, dtype, threads)
        self.mode = mode
        self._lr = torch.zeros((), dtype=getattr(torch, dtype))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=self._lr)
        self.compile_seconds = 0.0
        self._shapes: set[int] = set()
        if mode == STEP:
            self._step = torch.compile(self._train_step)
        else:
            self._model = torch.compile(self.model)
            self._step = self._train_step

    def _train_step(self, inputs: torch.Tensor, targets: torch.Tensor,
                    batch: torch.Tensor) -> None:
        """The book's ``update_mini_batch`` on the samples ``batch``."""
        x, t = inputs[batch], targets[batch]  # (m, n_in), (m, n_out)
        a = self.model(x) if self.mode == STEP else self._model(x)
        loss = 0.5 * ((a - t) ** 2).sum() / x.shape[0]
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def train_epoch(self, X, y, order, batch_size, eta):
        inputs, targets = self._tensors(X, y)
        self._lr.fill_(eta)
        order = torch.from_numpy(np.ascontiguousarray(order, dtype=np.int64))
        for batch in order.split(batch_size):
            if len(batch) in self._shapes:
                self._step(inputs, targets, batch)
            else:  # this step compiles
                start = time.perf_counter()
                self._step(inputs, targets, batch)
                self.compile_seconds += time.perf_counter() - start
                self._shapes.add(len(batch))

    def choices(self, batch_size: int) -> dict:
        return {"compiled": "the train step" if self.mode == STEP else "the model"}
