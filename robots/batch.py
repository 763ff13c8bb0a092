"""What every batch stage shares: run its jobs with a progress bar, inline or in worker
processes, and turn an input that fails into a reported reason instead of a stopped stage.

A batch stage (``retarget.stages``, ``amp.stages``) keeps going past bad inputs and lists them
with their reasons (DESIGN 3); only a fault of the place it writes to (a full or read-only disk,
:class:`~robots.errors.StorageError`) stops it, since every later input would fail the same way.
How a reason reads is the stage's own (its report format), so :func:`attempt` takes the
formatter.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from robots.errors import StorageError
from robots.parallel import parallel_map

J = TypeVar("J")
R = TypeVar("R")

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class Rejected:
    """An input the stage could not use; ``reason`` is what its report lists."""

    reason: str


def attempt(work: Callable[[], R], reason: Callable[[Exception], str]) -> R | Rejected:
    """``work()``, or ``Rejected(reason(exc))`` when it raises.

    Raises:
        StorageError: the output location cannot take the write (no fault of this input).
    """
    try:
        return work()
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad input must not stop the batch
        return Rejected(reason(exc))


def run_jobs(fn: Callable[[J], R], jobs: Sequence[J], workers: int, *, desc: str,
             progress: bool = True, start_method: str = "spawn",
             initializer: Callable[..., Any] | None = None, initargs: tuple[Any, ...] = (),
             ordered: bool = True, describe: Callable[[J], str] = repr,
             one_thread_each: bool = False) -> Iterator[R]:
    """Yield ``fn(job)`` for every job, advancing a tqdm bar named ``desc`` as each arrives.

    With ``workers <= 1`` or fewer than two jobs everything runs in this process
    (``initializer(*initargs)`` first, once, if there are jobs); otherwise in ``workers``
    processes through :func:`robots.parallel.parallel_map` (a worker that dies stops the stage
    with its job named, where a ``multiprocessing.Pool`` would hang).

    Args:
        fn, initializer, initargs, start_method, ordered, describe: As for ``parallel_map``.
        progress: Show the bar.
        one_thread_each: Workers start with one BLAS / OpenMP thread each, so ``workers``
            processes use ``workers`` cores (takes effect with ``spawn``: forked workers keep
            the parent's thread pools).
    """
    from tqdm import tqdm  # imported on use: the stage entry points stay quick to load

    bar = tqdm(total=len(jobs), desc=desc, unit="clip", disable=not progress)
    try:
        if workers <= 1 or len(jobs) < 2:
            if initializer is not None and jobs:
                initializer(*initargs)
            for job in jobs:
                yield fn(job)
                bar.update()
            return
        with _one_thread_each(one_thread_each):
            for result in parallel_map(fn, jobs, workers, start_method=start_method,
                                       initializer=initializer, initargs=initargs,
                                       ordered=ordered, describe=describe):
                yield result
                bar.update()
    finally:
        bar.close()


@contextmanager
def _one_thread_each(active: bool) -> Iterator[None]:
    """While active, the thread-count variables are 1 (spawned workers read them at start);
    they are restored after."""
    if not active:
        yield
        return
    previous = {key: os.environ.get(key) for key in _THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(previous, "1"))
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
