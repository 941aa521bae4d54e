"""The ``torch`` backend's model and step under ``torch.compile``.

The same ``nn.Linear`` + ``nn.Sigmoid`` model, quadratic cost, autograd and
``torch.optim.SGD`` as ``torch_backend.py``, compiled the way PyTorch's users
do it: ``torch.compile`` of the train step (``STEP``), or of the model only
(``MODEL``), the update then running eagerly.

The compiled step is the forward, the cost, ``loss.backward()`` and
``optimizer.step()``; ``zero_grad`` runs before it, eagerly, because dynamo
will not trace it and would split the step there. Dynamo traces the backward
into the forward's graph when its ``trace_autograd_ops`` is on (PyTorch
2.13's own hint at that graph break; without it, ``backward()`` splits the
step again and runs as eager autograd calling AOTAutograd's compiled
backward). ``torch.optim`` breaks the graph around its update, so the step
is two graphs: the forward with its backward, and the update. The flag is on
only while a step compiles: the compiled code does not read it. A recompile
at a batch length already seen would trace without it and split the step
again, correct but slower; the harness causes none (the same arrays every
epoch, eta in a tensor), and the tests check that a second epoch compiles
nothing.

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
# Whether this PyTorch's dynamo has the flag (older ones do not; some that have
# it trace only ``torch.autograd.grad`` with it, and split at ``backward()`` still).
TRACES_BACKWARD = hasattr(torch._dynamo.config, "trace_autograd_ops")
# The whole step, because it is the fastest of the forms. On a 2-core Xeon,
# two threads, epochs taking turns, best of five scaled to 50,000 samples,
# float64 (docs/findings/<the Xeon>/torch-compile/): at batch 10 eager torch
# 1.80 s, the model compiled 2.91, the step compiled 1.00, and 2.03 when
# zero_grad and backward() split it, as they did before: each call into
# compiled code checks its guards and crosses AOTAutograd's wrappers, which
# cost more than the fusion saved on a 10 x 784 batch. At batch 1000: 0.132,
# 0.142, 0.087 and 0.117 s.
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
            self._compiled = torch.compile(self._train_step)
        else:
            self._model = torch.compile(self.model)
            self._compiled = self._train_step

    def _train_step(self, inputs: torch.Tensor, targets: torch.Tensor,
                    batch: torch.Tensor) -> None:
        """The book's ``update_mini_batch`` on the samples ``batch``, the
        gradients already zeroed."""
        x, t = inputs[batch], targets[batch]  # (m, n_in), (m, n_out)
        a = self.model(x) if self.mode == STEP else self._model(x)
        loss = 0.5 * ((a - t) ** 2).sum() / x.shape[0]
        loss.backward()
        self.optimizer.step()

    def _step(self, inputs: torch.Tensor, targets: torch.Tensor, batch: torch.Tensor,
              compiles: bool = False) -> None:
        self.optimizer.zero_grad()
        if compiles and TRACES_BACKWARD and self.mode == STEP:
            with torch._dynamo.config.patch(trace_autograd_ops=True):
                self._compiled(inputs, targets, batch)
        else:
            self._compiled(inputs, targets, batch)

    def train_epoch(self, X, y, order, batch_size, eta):
        inputs, targets = self._tensors(X, y)
        self._lr.fill_(eta)
        order = torch.from_numpy(np.ascontiguousarray(order, dtype=np.int64))
        for batch in order.split(batch_size):
            if len(batch) in self._shapes:
                self._step(inputs, targets, batch)
            else:  # this step compiles
                start = time.perf_counter()
                self._step(inputs, targets, batch, compiles=True)
                self.compile_seconds += time.perf_counter() - start
                self._shapes.add(len(batch))

    def choices(self, batch_size: int) -> dict:
        if self.mode == MODEL:
            return {"compiled": "the model"}
        backward = ("traced into the forward's graph (trace_autograd_ops while compiling)"
                    if TRACES_BACKWARD else "eager autograd")
        return {"compiled": "the train step", "backward": backward}
