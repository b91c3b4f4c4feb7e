"""Process hygiene for long jobs: interrupts become one exception in the parent, and worker processes never
outlive their parent (Linux parent-death signal) nor print tracebacks on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import sys


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
