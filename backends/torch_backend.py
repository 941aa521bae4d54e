"""The network as a PyTorch user would write it: autograd and ``torch.optim.SGD``.

Each layer is an ``nn.Linear``, whose weight is (out, in) like Nielsen's, so the
book's parameters copy straight in. The loss is the book's quadratic cost of a
mini-batch, (1/m) sum_x 0.5 ||a_x - y_x||^2; ``mse_loss`` would also divide by
the number of outputs and so take steps ten times too small. Autograd then
gives nabla_w / m, and SGD's ``w -= lr * grad`` with ``lr = eta`` is the book's
update.

The training data are turned into tensors once, on the first epoch that sees
them (``torch.from_numpy`` shares the NumPy memory); only the shuffle order is
converted every epoch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from backends.base import Params


class TorchTrainer:
    name = "torch"

    def __init__(self, params: Params, dtype: str = "float64", threads: int | None = None):
        self.dtype = np.dtype(dtype)
        if threads is not None:
            torch.set_num_threads(threads)  # process-wide: each backend runs in its own worker
        # What it trains on, given or not: its intra-op pool, not NumPy's BLAS.
        self.threads = torch.get_num_threads()
        p = params.astype(self.dtype)
        layers: list[nn.Module] = []
        for w, b in zip(p.weights, p.biases, strict=True):
            linear = nn.Linear(w.shape[1], w.shape[0], dtype=getattr(torch, dtype))
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(w))
                linear.bias.copy_(torch.from_numpy(b.ravel()))
            layers += [linear, nn.Sigmoid()]
        self.model = nn.Sequential(*layers)
        self.n_out = p.sizes[-1]
        # The learning rate is set from eta at every epoch.
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.0)
        self._data: tuple[np.ndarray, np.ndarray, torch.Tensor, torch.Tensor] | None = None

    def _tensors(self, X: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The inputs and their one-hot targets, made once per pair of arrays.

        The cache holds the arrays themselves, so their identity cannot be reused.
        """
        if self._data is None or self._data[0] is not X or self._data[1] is not y:
            inputs = torch.from_numpy(np.ascontiguousarray(X, dtype=self.dtype))
            labels = torch.from_numpy(np.asarray(y, dtype=np.int64))
            targets = nn.functional.one_hot(labels, self.n_out).to(inputs.dtype)
            self._data = (X, y, inputs, targets)
        return self._data[2], self._data[3]

    def train_epoch(self, X, y, order, batch_size, eta):
        inputs, targets = self._tensors(X, y)
        for group in self.optimizer.param_groups:
            group["lr"] = eta
        for batch in torch.from_numpy(np.asarray(order, dtype=np.int64)).split(batch_size):
            x, t = inputs[batch], targets[batch]  # (m, n_in), (m, n_out)
            a = self.model(x)
            loss = 0.5 * ((a - t) ** 2).sum() / len(batch)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()

    def predict(self, X):
        with torch.no_grad():
            a = self.model(torch.from_numpy(np.ascontiguousarray(X, dtype=self.dtype)))
        return a.argmax(dim=1).numpy()

    def params(self) -> Params:
        linears = [m for m in self.model if isinstance(m, nn.Linear)]
        return Params(
            tuple(m.weight.detach().numpy().copy() for m in linears),
            tuple(m.bias.detach().numpy().reshape(-1, 1).copy() for m in linears),
        )
