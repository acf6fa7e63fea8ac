"""Helpers shared by the benchmark scripts: a busy machine and a thread setting for a child run."""

from __future__ import annotations

import multiprocessing
import os
from contextlib import contextmanager


def _burn(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


@contextmanager
def competing_process(enabled: bool):
    """Keep one CPU-bound process running while the block runs (when `enabled`)."""
    if not enabled:
        yield
        return
    stop = multiprocessing.Event()
    process = multiprocessing.Process(target=_burn, args=(stop,), daemon=True)
    process.start()
    try:
        yield
    finally:
        stop.set()
        process.join()


def thread_env(threads: str) -> dict:
    """The environment of a child run with one intra-op thread (`'1'`) or torch's default (`'default'`)."""
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if threads == "1":
        env["OMP_NUM_THREADS"] = "1"
    return env
