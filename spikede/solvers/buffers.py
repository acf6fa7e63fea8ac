"""CPU buffers for the compiled loops, reused instead of fresh from the operating system.

A tensor of 32 MiB or more gets new pages from the operating system every time (glibc maps
it and unmaps it when freed), and the first write to each 4 KiB page is a page fault.  The
compiled layer (`spikede.fused`) writes `[T, m]` arrays -- the history rows, the spikes, the
input gradients -- once per call: at T = 1000 and 32 x 1024 neurons each is 131 MB, 32,000
faults, and a training step of `benchmarks/neurons.py`'s soe layer spent 0.3 s of its 1.0 s in
the kernel's system time.  An integer-order LIF loop of small per-step tensors gets its memory
back from the allocator's heap and takes almost none.  Smaller arrays fare little better: glibc
maps anything above a threshold that moves with the program's allocations (128 KiB to 32 MiB)
and gives the top of its heap back above another, so the reference workload's 16 MB arrays
(`benchmarks/reference_workload.py`, T = 1000) faulted 6,500-7,100 times a pass, and its 1.6 MB
ones at T = 100 some 560-760 times, each fault about 3 us on a virtual machine.

`empty` serves requests of `MIN_BYTES` (256 KiB) or more from buffers freed earlier, of exactly
the same size.  A buffer
comes back only when the last tensor on it is gone: the tensor's storage holds a NumPy array,
whose finalizer returns the memory here.  Free buffers are kept up to a limit, the oldest
dropped first: `SPIKEDE_BUFFER_CACHE_MB` (default 1024; 0 keeps none) or `set_limit`;
`release()` drops them all now, as `torch.cuda.empty_cache` does for CUDA.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from collections import OrderedDict

import numpy
import torch

__all__ = ["MIN_BYTES", "empty", "release", "set_limit", "cached_bytes"]

MIN_BYTES = 256 << 10  # below this a request costs at most 64 faults; glibc's heap serves most of them
_NUMPY = {torch.float32: numpy.float32, torch.float64: numpy.float64, torch.uint8: numpy.uint8}


def _limit_from_env() -> int:
    text = os.environ.get("SPIKEDE_BUFFER_CACHE_MB", "1024").strip()
    try:
        megabytes = int(text)
    except ValueError:
        megabytes = -1
    if megabytes < 0:
        raise ValueError(f"SPIKEDE_BUFFER_CACHE_MB must be a whole number of MiB, 0 or more, got {text!r}")
    return megabytes << 20


class _FreeBuffers:
    def __init__(self):
        self.lock = threading.RLock()  # a finalizer may run while this thread holds it
        self.free: OrderedDict[int, list] = OrderedDict()  # size in bytes -> free buffers, oldest size first
        self.bytes = 0
        self.limit: int | None = None  # read from the environment on first use

    def take(self, nbytes: int):
        with self.lock:
            stack = self.free.get(nbytes)
            if not stack:
                return None
            self.bytes -= nbytes
            raw = stack.pop()
            if not stack:
                del self.free[nbytes]
            return raw

    def give_back(self, raw) -> None:
        with self.lock:
            if raw.nbytes > self.limit:  # kept, it would push out every other buffer and then itself
                return
            self.free.setdefault(raw.nbytes, []).append(raw)
            self.free.move_to_end(raw.nbytes)
            self.bytes += raw.nbytes
            self.trim()

    def trim(self) -> None:
        """Drop the oldest free buffers until they fit in the limit."""
        with self.lock:
            while self.bytes > self.limit:
                size, stack = next(iter(self.free.items()))
                stack.pop(0)
                self.bytes -= size
                if not stack:
                    del self.free[size]


_buffers = _FreeBuffers()


def set_limit(megabytes: int) -> None:
    """Keep at most `megabytes` MiB of free buffers (0: none); the oldest beyond it are dropped now."""
    if isinstance(megabytes, bool) or not isinstance(megabytes, int) or megabytes < 0:
        raise ValueError(f"megabytes must be a whole number, 0 or more, got {megabytes!r}")
    with _buffers.lock:
        _buffers.limit = megabytes << 20
        _buffers.trim()


def release() -> None:
    """Drop every free buffer (their memory goes back to the operating system)."""
    with _buffers.lock:
        _buffers.free.clear()
        _buffers.bytes = 0


def cached_bytes() -> int:
    """Bytes held in free buffers now."""
    return _buffers.bytes


def empty(shape: tuple, like: torch.Tensor) -> torch.Tensor:
    """An uninitialised contiguous tensor of `shape` with `like`'s dtype and device: from a freed
    buffer of the same size where it is a CPU request of `MIN_BYTES` or more, else `new_empty`."""
    nbytes = math.prod(shape) * like.element_size()
    if _buffers.limit is None:
        _buffers.limit = _limit_from_env()
    if like.device.type != "cpu" or like.dtype not in _NUMPY or nbytes < MIN_BYTES or _buffers.limit == 0:
        return like.new_empty(shape)
    raw = _buffers.take(nbytes)
    if raw is None:
        raw = numpy.empty(nbytes, numpy.uint8)
    array = raw.view(_NUMPY[like.dtype]).reshape(shape)
    weakref.finalize(array, _buffers.give_back, raw).atexit = False
    return torch.from_numpy(array)
