"""A sweep's cells on a Dask cluster: the client's side.

``ClusterExecutor`` connects to a scheduler (``tcp://HOST:PORT``, a scheduler
file, or a local cluster it starts, ``local:N``), admits the workers that offer
the ``bench`` resource and run the client's own harness (the same commit and
package versions; any other is refused and named), and hands each worker one
cell at a time, as a task of plain data (``harness.running.cell``). Every file
of the sweep folder is written here, from the rows and bytes that come back.

The client places each cell on a worker itself rather than leaving it to the
scheduler, which would silently run a task again after its worker died, as
often as ``distributed.scheduler.allowed-failures`` allows and on any machine:
here a lost worker makes its cell's attempt ``lost``, and the cell is submitted
again, at most ``retries`` times, to a worker of the same fingerprint only.

``distributed`` is imported inside the functions that need it, so that the
rest of the harness works without it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

from harness.config import UsageError
from harness.records import FAILED, LOST, BackendOutcome
from harness.running import cell, provenance
from harness.running.executors import (
    CellOutcome,
    Executor,
    OnCell,
    Pending,
    SweepObserver,
    now,
    unrun,
)

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 2
FORMS = "tcp://HOST:PORT (a running scheduler), file:PATH (a scheduler file) or local:N"
POLL_SECONDS = 0.5


class ClusterError(UsageError):
    """A cluster that cannot run the sweep: a bad address, no scheduler there, no
    worker offering ``bench``, every worker refused; the message says which."""


@dataclass(frozen=True)
class Address:
    kind: str  # "tcp", "file" or "local"
    value: str  # the scheduler's address, the scheduler file, the number of workers
    text: str  # as given
    option: str = "--cluster"  # where it was given, for the errors

    @property
    def given(self) -> str:
        return f"{self.option} {self.text}"


def parse_address(text: str, option: str = "--cluster") -> Address:
    """An address as ``option`` gives it, checked, or a ClusterError naming the
    accepted forms."""
    kind, _, rest = text.partition(":")
    if kind == "tcp" and rest.startswith("//"):
        host, _, port = rest[2:].rpartition(":")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return Address("tcp", text, text, option)
    elif kind == "file" and rest:
        return Address("file", rest, text, option)
    elif kind == "local" and rest.isdigit() and int(rest) > 0:
        return Address("local", rest, text, option)
    raise ClusterError(f"{option} {text!r}: expected {FORMS}")


def scheduler_address(address: Address) -> str:
    """The scheduler's tcp:// address, read from the scheduler file for ``file:``."""
    if address.kind != "file":
        return address.value
    path = Path(address.value)
    try:
        found = json.loads(path.read_text())["address"]
    except OSError as e:
        raise ClusterError(f"{address.given}: cannot read the scheduler file "
                           f"({e.strerror or e})") from None
    except (ValueError, KeyError, TypeError):
        raise ClusterError(f"{address.given}: {path} is not a scheduler file "
                           "(JSON with an \"address\", as `dask scheduler --scheduler-file` "
                           "writes)") from None
    return parse_address(str(found), f"{address.given}: the address in it").value


def core_sets(n_workers: int, cores: Sequence[int]) -> list[list[int]]:
    """The cores split into ``n_workers`` contiguous sets, as even as they go."""
    cores = sorted(cores)
    if n_workers > len(cores):
        raise ClusterError(f"--cluster local:{n_workers}: this process may run on "
                           f"{len(cores)} cores ({provenance.format_cores(cores)}), one "
                           f"worker per core at most; use local:{len(cores)} or fewer")
    size, extra = divmod(len(cores), n_workers)
    sets, start = [], 0
    for i in range(n_workers):
        end = start + size + (i < extra)
        sets.append(cores[start:end])
        start = end
    return sets


def import_distributed():
    try:
        import distributed
    except ImportError:
        raise ClusterError("--cluster needs Dask's distributed package: pip install "
                           "'nndl-bench[cluster]' (or pip install distributed)") from None
    return distributed


class ClusterExecutor(Executor):
    """Cells on the cluster at ``address``, one per admitted worker at a time."""

    def __init__(self, address: str, retries: int = DEFAULT_RETRIES,
                 timeout: float = DEFAULT_TIMEOUT):
        self.address = parse_address(address)
        if retries < 0:
            raise ClusterError(f"--retries must be 0 or more, got {retries}")
        if not timeout > 0:
            raise ClusterError(f"--cluster-timeout must be positive seconds, got {timeout}")
        self.name, self.retries, self.timeout = address, retries, timeout
        self.client = None
        self.workers: dict[str, dict] = {}  # admitted: address -> provenance
        self.refused: dict[str, str] = {}  # address -> why
        self._stack = contextlib.ExitStack()
        self._facts = provenance.describe()
        self.identity = provenance.identity(self._facts)

    def __enter__(self) -> ClusterExecutor:
        """Connect (start the local cluster first) and wait for a worker offering
        ``bench``, each within ``timeout``; a ClusterError otherwise."""
        import_distributed()
        # Dask logs every retry and every lost worker; the sweep says what matters.
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        try:
            address = self._start()
            self.client = self._connect(address)
            self._stack.callback(self.client.close)
            if self.address.kind == "local":
                from harness.running.dask_worker import PinCores

                self.client.register_plugin(PinCores(self._core_sets))
            self._wait_for_bench(address)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _start(self) -> str:
        if self.address.kind != "local":
            return scheduler_address(self.address)
        import dask
        from distributed import LocalCluster

        from harness.running.dask_worker import WORKER_CONFIG, WORKER_OPTIONS

        n_workers = int(self.address.value)
        self._core_sets = core_sets(n_workers, provenance.parse_cores(
            self._facts["pinned_cores"]))
        # Kept for the cluster's life: a nanny reads them again to restart a worker.
        self._stack.enter_context(dask.config.set(WORKER_CONFIG))
        cluster = LocalCluster(n_workers=n_workers, processes=True, host="127.0.0.1",
                               scheduler_port=0, dashboard_address=None,
                               silence_logs=logging.CRITICAL, **WORKER_OPTIONS)
        self._stack.callback(cluster.close)
        return cluster.scheduler_address

    def _connect(self, address: str):
        from distributed import Client

        try:
            return Client(address, timeout=self.timeout, set_as_default=False)
        except (OSError, TimeoutError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ClusterError(f"--cluster {self.name}: no scheduler answered at {address} "
                               f"within {self.timeout:g} s ({reason})") from None

    def _bench_workers(self) -> dict[str, dict]:
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        return {a: w for a, w in workers.items()
                if (w.get("resources") or {}).get("bench", 0) >= 1}

    def _wait_for_bench(self, address: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not (found := self._bench_workers()):
            if time.monotonic() > deadline:
                others = len(self.client.scheduler_info(n_workers=-1)["workers"])
                raise ClusterError(
                    f"--cluster {self.name}: no worker offers the 'bench' resource after "
                    f"{self.timeout:g} s ({others} worker(s) without it); start one with "
                    f"`python -m harness worker {address}`")
            time.sleep(POLL_SECONDS)
        self._admit(found, notice=lambda message: None)
        if not self.workers:
            addr, why = next(iter(self.refused.items()))
            raise ClusterError(f"--cluster {self.name}: every benchmark worker was refused; "
                               f"{addr}: {why}")

    def _admit(self, addresses, notice) -> None:
        """Admit the workers at ``addresses`` that run the client's harness; refuse
        and name the others."""
        from harness.running.dask_worker import describe_worker

        replies = self.client.run(describe_worker, workers=list(addresses), on_error="return")
        for addr, facts in replies.items():
            if isinstance(facts, BaseException):
                why = f"it cannot run the harness ({type(facts).__name__}: {facts})"
            else:
                why = provenance.mismatch(self.identity, facts)
            if why:
                self.refused[addr] = why
                notice(f"refusing worker {addr}: {why}")
            else:
                self.workers[addr] = facts

    def run(self, work: Sequence[Pending], budget: float | None, cells_dir: Path,
            observer: SweepObserver, on_cell: OnCell) -> bool:
        from distributed import wait

        for addr, why in self.refused.items():
            observer.notice(f"refusing worker {addr}: {why}")
        queue, inflight = list(work), {}
        run = _Round(self, queue, inflight, budget, cells_dir, observer, on_cell)
        try:
            while queue or inflight:
                run.refresh()
                run.assign()
                if not inflight:
                    run.wait_for_workers()
                    continue
                try:
                    with self.client.as_current():
                        done = wait(list(inflight), timeout=POLL_SECONDS,
                                    return_when="FIRST_COMPLETED").done
                except TimeoutError:
                    continue
                for future in done:
                    if future in inflight:
                        run.arrived(future)
        except KeyboardInterrupt:
            self.client.cancel(list(inflight), force=True)
            return True
        return False


class _Round:
    """The state of one ``ClusterExecutor.run``: the cells still to place, the
    futures in flight and the worker each runs on."""

    def __init__(self, executor, queue, inflight, budget, cells_dir, observer, on_cell):
        self.executor, self.queue, self.inflight = executor, queue, inflight
        self.budget, self.cells_dir = budget, cells_dir
        self.observer, self.on_cell = observer, on_cell
        self._token = uuid4().hex[:8]

    @property
    def client(self):
        return self.executor.client

    def refresh(self) -> None:
        """Workers gone since the last look lose their cells; new ones are admitted."""
        current = self.executor._bench_workers()
        workers = self.executor.workers
        for addr in [a for a in workers if a not in current]:
            facts = workers.pop(addr)
            for future, (pending, worker, started) in list(self.inflight.items()):
                if worker == addr:
                    del self.inflight[future]
                    future.cancel()
                    self._lost(pending, addr, facts, started)
        new = [a for a in current if a not in workers and a not in self.executor.refused]
        if new:
            self.executor._admit(new, self.observer.notice)

    def _lost(self, pending: Pending, addr: str, facts: dict, started: str) -> None:
        message = f"worker {addr} ({facts.get('hostname')}) was lost during the cell"
        self.on_cell(unrun(pending, LOST, addr, facts, started, message))
        if pending.attempt <= self.executor.retries:
            self.queue.insert(0, Pending(pending.index, pending.attempt + 1, pending.cell,
                                         facts["fingerprint"]))
            self.observer.notice(f"cell {pending.index + 1}: {message}; attempt "
                                 f"{pending.attempt + 1} goes to a worker of fingerprint "
                                 f"{facts['fingerprint']}")
        else:
            self.observer.notice(f"cell {pending.index + 1}: {message}; no retry left "
                                 f"(--retries {self.executor.retries})")

    def assign(self) -> None:
        """One cell to every admitted worker that has none, a retry only to a worker
        of its fingerprint."""
        busy = {worker for _, worker, _ in self.inflight.values()}
        for addr, facts in self.executor.workers.items():
            if addr in busy:
                continue
            pending = next((p for p in self.queue
                            if p.fingerprint in (None, facts["fingerprint"])), None)
            if pending is None:
                continue
            self.queue.remove(pending)
            self._submit(pending, addr)

    def _submit(self, pending: Pending, addr: str) -> None:
        from harness.running.dask_worker import cluster_cell

        message = cell.task(pending.cell, self.budget, self.executor.identity)
        key = f"nndl-bench-cell-{self._token}-{pending.index}-{pending.attempt}"
        future = self.client.submit(cluster_cell, message, key=key, workers=[addr],
                                    allow_other_workers=False, resources={"bench": 1},
                                    pure=False)
        self.inflight[future] = (pending, addr, now())
        self.observer.cell_started(pending.index, pending.cell)

    def wait_for_workers(self) -> None:
        """Nothing in flight and cells left: wait up to the timeout for a worker that
        can take one, then give up with what is kept said."""
        deadline = time.monotonic() + self.executor.timeout
        while time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            self.refresh()
            self.assign()
            if self.inflight or not self.queue:
                return
        types = sorted({p.fingerprint for p in self.queue if p.fingerprint})
        of_type = f" of fingerprint {', '.join(types)}" if types else ""
        raise ClusterError(
            f"--cluster {self.executor.name}: no admitted worker{of_type} left for "
            f"{len(self.queue)} cell(s) after {self.executor.timeout:g} s; the finished "
            f"cells are kept, and --resume {self.cells_dir.parent} runs the others")

    def arrived(self, future) -> None:
        pending, addr, started = self.inflight.pop(future)
        if future.status == "cancelled":
            return
        try:
            reply = future.result()
        except Exception as e:  # noqa: BLE001 - the task itself failed on the worker
            if type(e).__name__ == "KilledWorker":
                self._lost(pending, addr, self.executor.workers.get(addr, {}), started)
            else:
                self._failed(pending, addr, started, f"{type(e).__name__}: {e}")
            return
        finally:
            future.release()
        if reply["refused"]:
            self.executor.workers.pop(addr, None)
            self.executor.refused[addr] = reply["refused"]
            self.observer.notice(f"refusing worker {addr}: {reply['refused']}")
            self.queue.insert(0, pending)
            return
        for row in reply["rows"]:
            self.observer.backend_finished(
                BackendOutcome(row["backend"], row["status"], row.get("message") or ""))
        self.on_cell(CellOutcome(
            pending.index, pending.attempt, rows=reply["rows"],
            run_dir=f"{self.cells_dir.name}/{reply['run_id']}", files=reply["files"],
            provenance=reply["provenance"], worker=addr, started=reply["started"],
            finished=reply["finished"], exit_code=reply["exit_code"],
            interrupted=reply["interrupted"]))

    def _failed(self, pending: Pending, addr: str, started: str, message: str) -> None:
        outcome = unrun(pending, FAILED, addr, self.executor.workers.get(addr, {}), started,
                        f"the cell's task failed on {addr}: {message}")
        self.on_cell(outcome)
        self.observer.notice(f"cell {pending.index + 1}: {outcome.message}")

