"""PyTorch's forms of the train step, epochs taking turns: eager, the model
compiled, the step compiled, and the step compiled as commit SPLIT had it
(split by dynamo at zero_grad and backward()). Seconds scaled to 50,000 samples.

    python forms.py DTYPE BATCH [N_SAMPLES [ROUNDS [SPLIT]]]

Run from the checkout's root with its venv; SPLIT defaults to d2da299."""

import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from backends.base import Params
from backends.torch_backend import TorchTrainer
from backends.torch_compile import MODEL, TorchCompile

dtype, batch = sys.argv[1], int(sys.argv[2])
n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 5
split = sys.argv[5] if len(sys.argv) > 5 else "d2da299"


def split_form():
    """The TorchCompile class of commit `split`."""
    source = subprocess.run(["git", "show", f"{split}:backends/torch_compile.py"],
                            capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "split_torch_compile.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("split_torch_compile", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TorchCompile


rng = np.random.default_rng(0)
sizes = [784, 30, 10]
X = rng.random((n, sizes[0])).astype(dtype)
y = rng.integers(0, 10, n)
params = Params(tuple(rng.standard_normal((b, a)) for a, b in zip(sizes[:-1], sizes[1:])),
                tuple(rng.standard_normal((s, 1)) for s in sizes[1:]))
trainers = {"eager": TorchTrainer(params, dtype),
            "model": TorchCompile(params, dtype, mode=MODEL),
            f"step at {split}": split_form()(params, dtype),
            "step": TorchCompile(params, dtype)}
for trainer in trainers.values():  # each compiles here
    trainer.train_epoch(X, y, rng.permutation(n), batch, 3.0)
seconds = {name: [] for name in trainers}
for _ in range(rounds):
    order = rng.permutation(n)
    for name, trainer in trainers.items():
        start = time.perf_counter()
        trainer.train_epoch(X, y, order, batch, 3.0)
        seconds[name].append(time.perf_counter() - start)
scale = 50000 / n
print(f"{dtype} batch {batch}, {torch.get_num_threads()} threads, {n} samples, "
      f"{rounds} rounds; seconds scaled to 50,000 samples:")
for name, s in seconds.items():
    print(f"  {name:16s} best {min(s) * scale:.3f}  median {np.median(s) * scale:.3f}")
