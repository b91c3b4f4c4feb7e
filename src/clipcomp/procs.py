"""Where work runs, and process hygiene for long jobs.

Hygiene: interrupts become one exception in the parent, and worker processes never outlive their parent (Linux
parent-death signal) nor print tracebacks on Ctrl-C.

The task engine (`Engine`, `EngineOptions`, `dask_client`) says where a stage's tasks run: in this process
(`local`, the default and the fast path on one machine) or on a Dask cluster (`dask`: a LocalCluster of N worker
processes, or a running scheduler at ADDR).

Every heavy stage (embed, negatives generate, similarity knn / prune / dedup; the statistics via
`cooccur.engine.Runner`) is written as a plan of independent tasks — one shard, one row group, one cluster group —
run by a module-level function that reads its input from the (shared) file system and writes its own output file
atomically or returns a small result; the parent merges in plan order, so both engines write the same files. The
scheduler never holds the data: tasks carry paths and indices, large shared arrays are scattered to the workers
once. A worker that dies mid-run loses only its running tasks, which Dask reruns elsewhere (a task's output is
complete or absent, so a rerun writes the same bytes)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from clipcomp.errors import ClipcompError


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; `signum` says which (exit code 128 + signum)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


LAST_SIGNAL: int = 0  # the last interrupt signal received (Typer swallows the exception into an exit code)


def _raise_interrupted(signum, frame):  # noqa: ARG001 - signal handler signature
    global LAST_SIGNAL
    LAST_SIGNAL = signum
    raise Interrupted(signum)


def install_interrupt_handlers() -> None:
    """SIGINT and SIGTERM raise `Interrupted` in the main thread — also when the shell started us with SIGINT
    ignored (a background job of a script), where Python's own handler is missing and Ctrl-C did nothing."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, _raise_interrupted)
    signal.signal(signal.SIGTERM, _raise_interrupted)


def die_with_parent(parent_pid: int | None = None) -> None:
    """Worker initializer: get SIGKILL when the parent dies (even by SIGKILL) and leave SIGINT to the parent,
    which stops the workers itself — so an interrupted or killed run leaves no process behind."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except OSError:
            pass
    if parent_pid is not None and os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def terminate_pool(pool) -> None:
    """Stop a ProcessPoolExecutor's or multiprocessing Pool's workers now (after an interrupt)."""
    procs = getattr(pool, "_processes", None) or {}
    items = procs.values() if isinstance(procs, dict) else procs
    for p in list(items):
        with contextlib.suppress(Exception):  # already gone
            p.terminate()


_MALLOC_TUNED = False


def keep_freed_memory() -> None:
    """Let glibc reuse freed large blocks instead of returning them to the OS after every batch.

    The counting loop allocates and frees arrays of tens of MB per batch; by default glibc maps each one
    afresh, so every batch pays page faults for memory it just released (~10% of a build's CPU, as system
    time). Raising the mmap and trim thresholds keeps those pages in the heap; peak RSS stays the same order.
    No-op off glibc.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED or not sys.platform.startswith("linux"):
        return
    _MALLOC_TUNED = True
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: blocks below 32 MB come from the heap
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD: keep up to 256 MB of free heap


# ---- the task engine: local or Dask ----

ENGINES = ("local", "dask")
CONNECT_TIMEOUT = "10s"  # an unreachable scheduler fails in seconds, with its address


@dataclass(frozen=True)
class EngineOptions:
    """`--engine`, `--scheduler`, `--dask-workers` of a command. `dask_workers` sizes the LocalCluster started when
    no scheduler is given (one thread each, so N workers use N cores, like a local run with N threads)."""

    engine: str = "local"
    scheduler: str | None = None
    dask_workers: int = 2

    def validate(self) -> None:
        if self.engine not in ENGINES:
            raise ClipcompError(f"--engine {self.engine!r}: expected local or dask")
        if self.dask_workers < 1:
            raise ClipcompError(f"--dask-workers must be ≥ 1 (got {self.dask_workers})")
        if self.scheduler and self.engine != "dask":
            raise ClipcompError("--scheduler needs --engine dask")

    def settings(self) -> dict:
        """What a run records (not part of an output's identity: both engines write the same files)."""
        return {"engine": self.engine, **({"scheduler": self.scheduler} if self.scheduler else {}),
                **({"dask_workers": self.dask_workers} if self.engine == "dask" and not self.scheduler else {})}


def dask_client(scheduler: str | None, workers: int):
    """A connected Dask client and the LocalCluster it owns (None when connecting to `scheduler`)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ClipcompError("--engine dask needs dask[distributed] (pip install 'clipcomp[dask]')") from None
    if scheduler:
        _probe(scheduler)
        try:
            return Client(scheduler, timeout=CONNECT_TIMEOUT), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClipcompError(f"cannot reach Dask scheduler {scheduler}: "
                                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster), cluster


def _probe(scheduler: str) -> None:
    """A refused or unresolvable tcp:// address fails at once (Dask itself retries until its timeout)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(scheduler if "://" in scheduler else f"tcp://{scheduler}")
    if parts.scheme != "tcp":
        return  # tls://, inproc://, ...: left to Dask
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise ClipcompError(f"--scheduler {scheduler}: expected an address like tcp://host:8786")
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        raise ClipcompError(f"cannot reach Dask scheduler {scheduler}: {exc.strerror or exc}") from None


class Engine:
    """Runs `fn(task, *shared)` over tasks; yields (position, result) as tasks finish. A ClipcompError raised by a
    task stops the run with that message (finished tasks' files stay on disk, so a rerun resumes)."""

    def __init__(self, opts: EngineOptions | None = None) -> None:
        self.opts = opts or EngineOptions()
        self.opts.validate()
        self.client = None
        self._cluster = None

    @property
    def distributed(self) -> bool:
        return self.opts.engine == "dask"

    def __enter__(self) -> Engine:
        if self.distributed:
            self.client, self._cluster = dask_client(self.opts.scheduler, self.opts.dask_workers)
        return self

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
        self.client = self._cluster = None

    def n_workers(self) -> int:
        if self.client is None:
            return 1
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def worker_resources(self) -> list[dict]:
        if self.client is None:
            return []
        return [w.get("resources", {}) for w in self.client.scheduler_info().get("workers", {}).values()]

    def run_on_workers(self, fn: Callable) -> dict:
        """fn() on every worker (e.g. a GPU probe); {worker address: result}."""
        return self.client.run(fn) if self.client is not None else {"local": fn()}

    def share(self, obj):
        """An object every task receives (a model spec, the test matrix): scattered to the workers once."""
        if self.client is None:
            return obj
        return self.client.scatter(obj, broadcast=True, hash=False)

    def map(self, fn: Callable, tasks: Iterable, *shared,
            resources: dict | None = None) -> Iterator[tuple[int, object]]:
        tasks = list(tasks)
        if not tasks:
            return
        if self.client is None:
            for i, t in enumerate(tasks):
                yield i, fn(t, *shared)
            return
        from dask.distributed import as_completed

        futures = [self.client.submit(fn, t, *shared, pure=False, resources=resources, priority=-i)
                   for i, t in enumerate(tasks)]
        position = {f.key: i for i, f in enumerate(futures)}
        try:
            for fut in as_completed(futures):
                if fut.status == "error":
                    exc = fut.exception()
                    raise exc if isinstance(exc, ClipcompError) else _worker_error(exc)
                yield position[fut.key], fut.result()
                fut.release()
        finally:
            for f in futures:
                f.cancel()

    def map_ordered(self, fn: Callable, tasks: Iterable, *shared, resources: dict | None = None,
                    on_done: Callable | None = None) -> list:
        """`map`, results in task order (what an exact merge needs); on_done(result) as each finishes."""
        tasks = list(tasks)
        out: list = [None] * len(tasks)
        for i, r in self.map(fn, tasks, *shared, resources=resources):
            out[i] = r
            if on_done is not None:
                on_done(r)
        return out


def _worker_error(exc: BaseException) -> BaseException:
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        return ClipcompError(f"a task killed its Dask workers repeatedly ({exc}); finished tasks are kept — "
                             "rerun to resume")
    return exc
