"""Process pools that surface a worker's failure and stop, instead of hanging.

``multiprocessing.Pool`` waits forever when a worker dies (a segfault, the OOM killer, kill -9)
or when an exception fails to unpickle. :func:`parallel_map` runs on
``concurrent.futures.ProcessPoolExecutor``, which notices a dead worker: the first failure
(an exception raised by a job, or a worker that died) cancels the jobs not yet started, waits
for the running ones, and is raised in the caller, a dead worker as
:class:`WorkerCrashedError` naming the job.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from robots.errors import AmpkitError

J = TypeVar("J")
R = TypeVar("R")


class WorkerCrashedError(AmpkitError, RuntimeError):
    """A worker process died while running a job (signal, out of memory, killed)."""


def parallel_map(fn: Callable[[J], R], jobs: Sequence[J], workers: int, *,
                 start_method: str = "spawn", initializer: Callable[..., Any] | None = None,
                 initargs: tuple[Any, ...] = (), ordered: bool = True,
                 describe: Callable[[J], str] = repr) -> Iterator[R]:
    """Yield ``fn(job)`` for every job, computed in ``workers`` processes.

    Args:
        fn: A picklable (module-level) function.
        jobs: The inputs.
        workers: Processes (at most ``len(jobs)`` are started).
        start_method: ``spawn`` (clean workers) or ``fork`` (fast start).
        initializer, initargs: Run once in each worker before its first job.
        ordered: Results in job order (else as they complete).
        describe: Names a job in the error raised when its worker died.
    Raises:
        WorkerCrashedError: a worker died; the message names the job it was running.
        Exception: the first exception a job raised, as raised there.
    """
    context = multiprocessing.get_context(start_method)
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=max(1, min(workers, len(jobs))), mp_context=context,
        initializer=initializer, initargs=initargs)
    futures = {pool.submit(fn, job): job for job in jobs}
    clean = False
    try:
        stream = futures if ordered else concurrent.futures.as_completed(futures)
        for future in stream:
            try:
                result = future.result()
            except BrokenProcessPool as exc:
                raise WorkerCrashedError(
                    f"a worker process died while working on {describe(futures[future])} "
                    f"(killed by a signal or out of memory?); the stage stopped") from exc
            yield result
        clean = True
    finally:
        # Stop promptly on failure (or when the caller stops iterating): jobs not started are
        # dropped, running ones finish, and no worker outlives the call.
        pool.shutdown(wait=True, cancel_futures=not clean)
