"""Where tasks run: in-process, a local process pool, or a Dask distributed cluster; same tasks, same files."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from clipcomp.cooccur.work import WorkContext, release_caches, run_task
from clipcomp.corpus import Task
from clipcomp.errors import ClipcompError

ENGINES = ("local", "dask")


class Runner:
    """Runs `run_task` over tasks and yields (task, result_dict | ClipcompError) as they finish."""

    def __init__(self, engine: str = "local", workers: int = 1, scheduler: str | None = None) -> None:
        if engine not in ENGINES:
            raise ClipcompError(f"unknown engine {engine!r} (expected local or dask)")
        if workers < 1:
            raise ClipcompError(f"--workers must be ≥ 1 (got {workers})")
        self.engine, self.workers, self.scheduler = engine, workers, scheduler
        self._pool: ProcessPoolExecutor | None = None
        self._client = None
        self._cluster = None

    def __enter__(self) -> Runner:
        if self.engine == "dask":
            from clipcomp.procs import dask_client  # the one connection path of every stage

            self._client, self._cluster = dask_client(self.scheduler, self.workers)
        elif self.workers > 1:
            # The parent is one of the workers (it would idle otherwise): N-1 processes beside it.
            from clipcomp.procs import die_with_parent

            self._pool = ProcessPoolExecutor(max_workers=self.workers - 1, mp_context=_mp_context(),
                                             initializer=die_with_parent, initargs=(os.getpid(),))
            # Start them now: with fork they inherit the warmed state and no thread of ours exists yet.
            for fut in [self._pool.submit(os.getpid) for _ in range(self.workers - 1)]:
                fut.result()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        release_caches()
        if self._pool is not None:
            if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
                from clipcomp.procs import terminate_pool

                terminate_pool(self._pool)  # finished tasks are on disk; running ones are redone on resume
                self._pool.shutdown(wait=False, cancel_futures=True)
            else:
                self._pool.shutdown(wait=True, cancel_futures=True)
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def map(self, phase: str, tasks: list[Task], ctx: WorkContext) -> Iterator[tuple[Task, object]]:
        if not tasks:
            return
        if self._client is not None:
            yield from self._map_dask(phase, tasks, ctx)
        elif self._pool is not None:
            yield from self._map_pool(phase, tasks, ctx)
        else:
            for t in tasks:
                try:
                    yield t, run_task(phase, t, ctx)
                except ClipcompError as exc:
                    yield t, exc

    def _map_pool(self, phase, tasks, ctx):
        pending: dict[Future, Task] = {}
        queue = deque(tasks)
        in_flight = self.workers  # a bounded number in flight, so a huge task list is not all pickled at once

        def collect(done):
            for fut in done:
                t = pending.pop(fut)
                exc = fut.exception()
                if exc is None:
                    yield t, fut.result()
                elif isinstance(exc, ClipcompError):
                    yield t, exc
                else:
                    raise exc

        while queue or pending:
            while queue and len(pending) < in_flight:
                t = queue.popleft()
                pending[self._pool.submit(run_task, phase, t, ctx)] = t
            if queue:  # the parent's share
                t = queue.popleft()
                try:
                    yield t, run_task(phase, t, ctx)
                except ClipcompError as exc:
                    yield t, exc
                yield from collect([f for f in list(pending) if f.done()])
            elif pending:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                yield from collect(done)

    def _map_dask(self, phase, tasks, ctx):
        from dask.distributed import as_completed

        futures = self._client.map(run_task, [phase] * len(tasks), tasks, [ctx] * len(tasks), pure=False)
        by_key = {f.key: t for f, t in zip(futures, tasks, strict=True)}
        for fut in as_completed(futures):
            t = by_key[fut.key]
            if fut.status == "error":
                exc = fut.exception()
                if isinstance(exc, ClipcompError):
                    yield t, exc
                    continue
                raise exc
            yield t, fut.result()


def _mp_context():
    """fork where it is safe — Linux, and no other Python thread in this process — so workers start in
    milliseconds with modules and lemmatizer dictionaries already loaded; spawn otherwise.
    CLIPCOMP_START_METHOD overrides."""
    method = os.environ.get("CLIPCOMP_START_METHOD")
    if method is None:
        method = "fork" if sys.platform == "linux" and threading.active_count() == 1 else "spawn"
    return mp.get_context(method)


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))
