"""The time-stepping engine: what a scheme needs to know of a problem, and the step loop.

`fdeint` ([spikede.solvers.fdeint][]) and its discrete adjoint ([spikede.solvers.adjoint][])
both march through time with these helpers: `begin` stores `u_0`, `march` runs a stretch of
steps (read the history, step, event, store), `integrate` runs a whole solve and keeps the
states.  The spiking layers ([spikede.neurons][]) build their schemes from a `Problem` and run
their eager path on `march` too.  This module imports neither
`fdeint` nor the adjoint, so the two never import each other.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import torch

from .newton import ConvergenceError

__all__ = ["Problem", "begin", "march", "integrate", "check_finite", "not_finite", "step_threads", "block_threads",
           "PARALLEL_STEP_MIN", "PARALLEL_WORK_MIN"]

PARALLEL_STEP_MIN = 1 << 18  # state elements per step below which one step's operations run on one thread


class step_threads:
    """Run a time loop over states like `template` on one intra-op CPU thread when a step is small.

    A step of a time loop is a dozen small operations on the state.  Spread over several
    threads, each of them waits for the slowest thread; on a machine whose cores are busy
    with other work that wait is a whole scheduling slice, and a loop of thousands of steps
    became 3.6-8.8x slower with 2 threads than with one (`benchmarks/neurons.py --compete`).
    For states of fewer than `PARALLEL_STEP_MIN` elements on the CPU the loop therefore runs
    with `torch.set_num_threads(1)`, and the previous setting is restored afterwards (also on
    an error).  Large operations inside the loop take the threads back (`block_threads`).
    The setting is process-wide: other threads of the process that run torch operations
    meanwhile get one intra-op thread too.  Loops may nest (a training batch around a layer's
    loop); the innermost large operation still gets the threads of the outermost loop.
    A context manager (a class, not a generator: a single-step layer enters it every call).
    """

    __slots__ = ("_previous", "_outer")

    def __init__(self, template: torch.Tensor):
        small = template.device.type == "cpu" and template.numel() < PARALLEL_STEP_MIN
        self._previous = torch.get_num_threads() if small else 1

    def __enter__(self) -> None:
        global _outer_threads
        if self._previous > 1:
            self._outer, _outer_threads = _outer_threads, self._previous
            torch.set_num_threads(1)

    def __exit__(self, *exc) -> None:
        global _outer_threads
        if self._previous > 1:
            _outer_threads = self._outer
            torch.set_num_threads(self._previous)


_outer_threads: int | None = None  # the thread count a `step_threads` loop replaced, while it runs
PARALLEL_WORK_MIN = 1 << 22  # multiply-adds above which one operation inside such a loop uses those threads


class ThreadChoice:
    """Whether the large operations of `step_threads` loops run faster on the threads the loop set
    aside or on its one thread, learnt from their own timings.

    On an idle machine a matrix product of 3e7 or more multiply-adds ran about twice as fast on
    two cores (of 8e6 to 3e7, slower); while another process holds one of them, each product
    waits for the thread that lost its core, and the products of a T = 1000 run of
    `benchmarks/reference_workload.py --compete` (4e6 to 3e8 multiply-adds) took 3.2x longer on
    two threads than on one, in all.  Which case holds is not known in
    advance and changes while a program runs, so for each size class (powers of 4 of the
    multiply-adds) both options are timed: alternately until each has `SAMPLES` timings, then
    the one with the lower median time per multiply-add over its last `SAMPLES` runs, with the
    other tried once every `EXPLORE` operations of the class.
    """

    SAMPLES = 3
    EXPLORE = 16

    def __init__(self):
        self._rates: dict = {}  # (size class, threads) -> the latest seconds per multiply-add
        self._calls: dict = {}  # size class -> operations so far

    def pick(self, work: int, threads: int) -> int:
        """The thread count for the next operation of `work` multiply-adds: 1 or `threads`."""
        size = work.bit_length() // 2
        calls = self._calls[size] = self._calls.get(size, 0) + 1
        one, many = self._rates.get((size, 1), ()), self._rates.get((size, threads), ())
        if min(len(one), len(many)) < self.SAMPLES:
            return threads if len(many) < len(one) else 1
        best, other = (1, threads) if statistics.median(one) <= statistics.median(many) else (threads, 1)
        return other if calls % self.EXPLORE == 0 else best

    def record(self, work: int, threads: int, seconds: float) -> None:
        rates = self._rates.setdefault((work.bit_length() // 2, threads), deque(maxlen=self.SAMPLES))
        rates.append(seconds / work)


thread_choice = ThreadChoice()


@contextmanager
def block_threads(work: int):
    """Inside a `step_threads` loop, give one large operation (`work` multiply-adds, e.g. the far
    history of a block of steps as one matrix product) the threads the loop set aside, where
    they have been faster for operations of its size (`ThreadChoice`).

    Only that operation belongs inside: its operands are prepared before (a gathered Toeplitz
    matrix spread over two threads took 11x longer while another process held a core)."""
    if _outer_threads is None or work < PARALLEL_WORK_MIN:
        yield
        return
    threads = thread_choice.pick(work, _outer_threads)
    if threads > 1:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        yield
    finally:
        thread_choice.record(work, threads, time.perf_counter() - start)
        if threads > 1:
            torch.set_num_threads(1)


@dataclass
class Problem:
    """What a scheme needs to know of the problem being solved (built once by `fdeint`)."""

    func: Callable
    y0: torch.Tensor
    t: tuple
    h: float
    n_steps: int
    window: int | None
    corrector_iters: int
    newton_tol: float
    newton_max_iters: int
    dy0: torch.Tensor | None = None  # y'(t_0), for 1 < alpha <= 2
    jacobian: str = "dense"  # or "blockwise": func couples only the state's last axis
    block_jacobian: Callable | None = None  # (t, y) -> [..., C, C] blocks of df/dy in closed form (blockwise)

    def initial(self, n: int) -> torch.Tensor:
        """The Taylor polynomial of the initial values at `t_n`: `y0`, or `y0 + (t_n - t_0) y'(t_0)`."""
        if self.dy0 is None:
            return self.y0
        return self.y0 + (self.t[n] - self.t[0]) * self.dy0

    @property
    def dtype(self) -> torch.dtype:
        return self.y0.dtype

    @property
    def device(self) -> torch.device:
        return self.y0.device

    def rhs(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.func(t, y)


def begin(problem: Problem, scheme, kernel, f0: torch.Tensor | None = None):
    """Store `u_0` and return `(y_0, f_0)` (`f_0` where the scheme uses it, else `None`; `f0`:
    `f(t_0, y_0)` if the caller has it already)."""
    y0 = problem.y0
    f = None
    if scheme.stores_rhs or scheme.needs_f_prev:
        f = problem.rhs(problem.t[0], y0) if f0 is None else f0
    kernel.append(scheme.first_stored(y0, f))
    return y0, f


def march(problem: Problem, scheme, kernel, y, f, first: int, last: int, visit, event=None, rhs=None):
    """Steps `first .. last` from `y = y_{first-1}` (and `f = f_{first-1}` where used), the
    kernel holding rows `0 .. first-1`; `visit(n, y_n, H_n)` sees every step.  `event(t_n, y_n)`,
    where given, returns the state after the step's event (a reset); an `event` with a
    `step_failed(t_n, y_prev, error)` method supplies the state of an implicit step whose Newton
    iteration failed (a hybrid solve: the spiking variable crossed within it).  `rhs(t_n, y_n)`
    replaces `problem.rhs` (a spiking layer's drive reads its input sequence).  Returns the last
    `(y, f)`; the kernel then holds rows `0 .. last` (but for the final step of the grid).

    This is the one step loop of the library: `fdeint`, its discrete adjoint, the hybrid solves
    and the spiking layers' eager path ([spikede.neurons][]) all run it."""
    ts = problem.t
    needs_f = scheme.stores_rhs or scheme.needs_f_prev
    recover = getattr(event, "step_failed", None)
    rhs = problem.rhs if rhs is None else rhs
    for n in range(first, last + 1):
        history = kernel.read(n)
        y_prev = y
        try:
            y = scheme.step(n, y, history, f)
        except ConvergenceError as error:
            if recover is None:
                raise
            y = recover(ts[n], y_prev, error)
        if event is not None:
            y = event(ts[n], y)
        visit(n, y, history)
        if n == problem.n_steps:
            break
        if needs_f:
            f = rhs(ts[n], y)
        kernel.append(scheme.stored(y, y_prev, f))
    return y, f


def integrate(problem: Problem, scheme, kernel, save_every: int, event=None, f0: torch.Tensor | None = None):
    """The eager loop of a whole solve: the states at steps `0, k, 2k, ...` and the last (`k = save_every`)."""
    y, f = begin(problem, scheme, kernel, f0)
    n_steps = problem.n_steps
    trajectory = _Trajectory(y, n_steps // save_every + 1 + (n_steps % save_every != 0))

    def keep(n, y, history):
        if n % save_every == 0 or n == n_steps:
            trajectory.append(y)

    with step_threads(y):
        march(problem, scheme, kernel, y, f, 1, n_steps, keep, event)
    out = trajectory.result()
    check_finite(out, save_every, n_steps)
    return out


class _Trajectory:
    """The saved states: written into one preallocated tensor while nothing needs a gradient,
    else kept as a list and stacked once at the end (autograd cannot track in-place writes)."""

    def __init__(self, y0: torch.Tensor, size: int):
        self._list: list[torch.Tensor] | None = None
        self._buffer = y0.new_empty(size, *y0.shape)
        self._count = 0
        self.append(y0)

    def append(self, y: torch.Tensor) -> None:
        if self._list is None and y.requires_grad:
            self._list = list(self._buffer[: self._count].unbind(0))
        if self._list is None:
            self._buffer[self._count].copy_(y)
        else:
            self._list.append(y)
        self._count += 1

    def result(self) -> torch.Tensor:
        return self._buffer if self._list is None else torch.stack(self._list)


def check_finite(out: torch.Tensor, save_every: int, n_steps: int) -> None:
    """Raise `not_finite` at the first saved state of `out` that is not finite."""
    finite = torch.isfinite(out.detach()).reshape(out.shape[0], -1).all(1)
    if not bool(finite.all()):
        raise not_finite(min(int(torch.nonzero(~finite)[0]) * save_every, n_steps), save_every)


def not_finite(step: int, save_every: int = 1) -> FloatingPointError:
    """The error for a solution that is not finite at `step` (seen at a state saved every `save_every`)."""
    where = f"from step {step} on" if save_every == 1 else f"by step {step} (states are saved every {save_every})"
    return FloatingPointError(
        f"the solution is not finite {where} (t index {step}); the problem may be stiff "
        "for this step size: reduce h or use implicit=True"
    )
