r"""Implicit steps `y = b + c f(t, y)` solved by Newton's method.

The iterations run without a graph and keep the matrix `M = I - c df/dy` of their starting point
for as long as it serves (the simplified, or chord, Newton method): each iteration costs one
evaluation of `f` and one product with `M^{-1}`, and `M` is formed again, at the current iterate,
only when an update shrank by less than `REFRESH_RATIO` against the one before.  For an `f` linear in `y` the
first matrix is exact; near a smooth solution with a small step the chord iterations contract by
about `c |df/dy(y) - df/dy(y_0)|`, far below the ratio.  One last Newton update
`y = y* - M^{-1} (y* - b - c f(t, y*))`, with `y*` and `M` held constant, is taken with autograd
on.  Its value is `y*` to the solver tolerance.  Where a gradient flows through it, `M` is formed
at `y*`, so that the derivatives with respect to `b`, `c` and the parameters of `f` are exactly
those of the implicit-function theorem, `dy = M^{-1} (db + dc f + c df)`.
The Jacobian is dense (`S x S` for a state of `S` elements), or, for a right-hand side that
couples only the state's last axis (a batch of independent systems), `[..., C, C]` blocks; either
is one reverse pass with a batch of cotangents.

A sequence of steps with one step coefficient (a solve on a uniform grid) may hand its steps a
`ChordMemo`: each step then starts from the matrix the step before ended with, and forms its own
only where that one does not serve (a non-finite update, or an update that did not shrink to
`REFRESH_RATIO` of the one before), starting over from its guess as if there had been none.  The
matrix of the last step is usually as good a chord as one formed at this step's guess, and
forming it (a reverse pass and an inversion) costs several evaluations of `f` for a small state
and far more for a large dense one.
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["ChordMemo", "ConvergenceError", "newton_solve", "solve_at", "default_tolerance", "REFRESH_RATIO"]

REFRESH_RATIO = 0.125  # an update larger than this times the last one: the chord matrix is formed again
# A step that kept an earlier matrix (ChordMemo) but whose updates shrank by less than this leaves the next
# step a matrix formed at its solution.  For a small system (fewer than LARGE_SYSTEM unknowns per matrix) a
# matrix costs a few evaluations of f, and a fresher one saves more than that over the following steps;
# for a large dense one (an inversion of S^3 operations) only a failing chord (REFRESH_RATIO) pays for it.
MEMO_REFRESH_RATIO = REFRESH_RATIO / 64
LARGE_SYSTEM = 64


class ConvergenceError(RuntimeError):
    """An implicit step did not converge; the message names the step and the iteration count.

    `system` is the equation that failed, `(f, b, c, jacobian)` of `y = b + c f(y)` (`jacobian`
    the closed-form blocks of `df/dy` or `None`; `system` is `None` if unknown),
    `iterate` Newton's last iterate and `unconverged` a mask over the state's leading axes of the
    systems that did not converge (all of them for a dense Jacobian), so that a caller can solve a
    related equation (e.g. a hybrid solve pinning the spiking variable where a neuron ran away).
    """

    def __init__(self, message: str, system: tuple | None = None, iterate: torch.Tensor | None = None,
                 unconverged: torch.Tensor | None = None):
        super().__init__(message)
        self.system = system
        self.iterate = iterate
        self.unconverged = unconverged


class ChordMemo:
    """The chord matrix `(I - c df/dy)^{-1}` the last step of a sequence ended with, for the next step
    to start from (see the module docstring); it serves only a step with the same `c`, state shape
    and Jacobian structure."""

    __slots__ = ("_inverse", "_key", "_c")

    def __init__(self):
        self._inverse = self._key = self._c = None

    def lookup(self, c: torch.Tensor, shape: torch.Size, blockwise: bool) -> torch.Tensor | None:
        if self._inverse is None or self._key != (shape, blockwise, c.shape, c.dtype, c.device):
            return None
        return self._inverse if torch.equal(self._c, c) else None  # the same coefficient, or none of it

    def keep(self, inverse: torch.Tensor, c: torch.Tensor, shape: torch.Size, blockwise: bool) -> None:
        self._inverse, self._c = inverse, c
        self._key = (shape, blockwise, c.shape, c.dtype, c.device)


def default_tolerance(dtype: torch.dtype) -> float:
    """Relative step tolerance `256 * eps` of `dtype` (5.7e-14 for float64, 3.1e-5 for float32)."""
    return 256.0 * torch.finfo(dtype).eps


def _pullbacks(f: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, cotangents_for: Callable) -> tuple:
    """`f(y)` and the gradients at `y` of its products with the cotangents `cotangents_for(f(y))`
    (`[B, *f(y).shape]`), `[B, *y.shape]` in one reverse pass; `None` where `f` does not depend on `y`."""
    with torch.enable_grad():
        point = y.detach().requires_grad_(True)
        value = f(point)
        if not value.requires_grad:
            return value, None
        cotangents = cotangents_for(value)
        if cotangents.shape[0] == 1:  # a batch of one needs no vmap
            (grad,) = torch.autograd.grad(value, point, cotangents[0], allow_unused=True)
            return value, None if grad is None else grad.unsqueeze(0)
        (grad,) = torch.autograd.grad(value, point, cotangents, is_grads_batched=True, allow_unused=True)
    return value, grad


def _jacobian(f: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    """The dense Jacobian `[V, S]` of `f` (`V` values) at `y` (`S` elements): the rows of the
    identity as cotangents (zeros where `f` does not depend on `y`)."""

    def rows_of_identity(value):
        return torch.eye(value.numel(), dtype=value.dtype, device=value.device).reshape(-1, *value.shape)

    value, grad = _pullbacks(f, y, rows_of_identity)
    if grad is None:
        return value.new_zeros(value.numel(), y.numel())
    return grad.reshape(value.numel(), y.numel())


def _block_jacobian(f: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    """`[..., C, C]`: the Jacobian blocks of an `f` that couples only the last axis of `y`.  Cotangent
    `i` is 1 at component `i` of every block, so its gradient is row `i` of every block at once
    (zeros where `f` does not depend on `y`)."""
    size = y.shape[-1]

    def components(value):
        eye = torch.eye(size, dtype=value.dtype, device=value.device)
        return eye.reshape(size, *[1] * (value.dim() - 1), size).expand(size, *value.shape)

    value, grad = _pullbacks(f, y, components)
    if grad is None:
        return value.new_zeros(*y.shape, size)
    return grad.movedim(0, -2)


class _Linearisation:
    """`(I - c df/dy)^{-1}` and its product with a residual: dense over the whole state, or blockwise
    over its last axis.  The chord iterations apply one matrix many times, so it is inverted once
    (a product then costs a tenth of a solve for the small systems of a step)."""

    def __init__(self, f, c: torch.Tensor, shape: torch.Size, blockwise: bool, dtype, device, jacobian=None):
        self.f, self.blockwise, self.shape = f, blockwise, shape
        self.jacobian = jacobian if blockwise else None
        size = shape[-1] if blockwise else shape.numel()
        self.eye = torch.eye(size, dtype=dtype, device=device)
        if blockwise:
            self.rows = (c if c.dim() == 0 else c.expand(shape)).unsqueeze(-1)  # c of each block row
        else:
            self.rows = c if c.dim() == 0 else c.expand(shape).reshape(-1, 1)  # c of each Jacobian row

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        if self.jacobian is not None:
            jacobian = self.jacobian(y)
        elif self.blockwise:
            jacobian = _block_jacobian(self.f, y)
        else:
            jacobian = _jacobian(self.f, y)
        return torch.linalg.inv(self.eye - self.rows * jacobian)

    def apply(self, inverse: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        if self.blockwise:
            return (inverse @ residual.unsqueeze(-1)).squeeze(-1)
        return (inverse @ residual.reshape(-1)).reshape(self.shape)


def solve_at(func: Callable, t: torch.Tensor, b: torch.Tensor, c: torch.Tensor, y_guess: torch.Tensor, *,
             tol: float, max_iters: int, step: int, blockwise: bool = False,
             block_jacobian: Callable | None = None, memo: ChordMemo | None = None) -> torch.Tensor:
    """`newton_solve` for `y = b + c func(t, y)` at the time `t`, blockwise with the closed-form blocks
    `block_jacobian(t, y)` where given (a right-hand side `func(t, y)` of the solvers)."""
    closed_form = None
    if blockwise and block_jacobian is not None:
        def closed_form(y):
            return block_jacobian(t, y)
    return newton_solve(lambda v: func(t, v), b, c, y_guess, tol=tol, max_iters=max_iters, step=step,
                        blockwise=blockwise, jacobian=closed_form, memo=memo)


def _sizes(delta: torch.Tensor, y: torch.Tensor, blockwise: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The size of an update and the scale it is measured against: per system (blockwise) or overall."""
    if blockwise:
        return delta.abs().amax(-1), 1.0 + y.abs().amax(-1)
    return delta.abs().max(), 1.0 + y.abs().max()


def _inherited_chord(f, b, c, y, inverse, linear, tol: float, max_iters: int, blockwise: bool):
    """Chord iterations from `y` with a matrix from an earlier step: `(solution, worst ratio of
    successive updates)`, or `None` where the matrix does not serve (an update not finite, or not
    shrinking to `REFRESH_RATIO` of the last).  Convergence is taken from an update below the
    tolerance only once the updates have been seen to shrink so, since a matrix far from this
    step's can make small updates of a large error; or from a residual at rounding level, which
    bounds the error whatever the matrix."""
    rounding = 4.0 * torch.finfo(y.dtype).eps
    last, worst = None, 0.0
    for _ in range(max_iters):
        residual = y - b - c * f(y)
        misfit, scale = _sizes(residual, y, blockwise)
        if bool((misfit <= rounding * scale).all()):
            return y, worst
        delta = linear.apply(inverse, residual)
        if not bool(torch.isfinite(delta).all()):
            return None
        y = y - delta
        size, scale = _sizes(delta, y, blockwise)
        if last is not None:
            ratio = (size / last.clamp(min=torch.finfo(y.dtype).tiny)).max().item()
            if not ratio <= REFRESH_RATIO:
                return None
            worst = max(worst, ratio)
            if bool((size <= tol * scale).all()):
                return y, worst
        last = size
    return None


def newton_solve(
    f: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    c: torch.Tensor,
    y_guess: torch.Tensor,
    *,
    tol: float,
    max_iters: int,
    step: int,
    blockwise: bool = False,
    jacobian: Callable[[torch.Tensor], torch.Tensor] | None = None,
    memo: ChordMemo | None = None,
) -> torch.Tensor:
    """Solve `y = b + c f(y)` starting from `y_guess`; differentiable in `b`, `c` and `f`.
    `c` is a scalar or broadcasts against `y` (per-component orders: one `c` per component).
    `blockwise=True`: `f` couples only the last axis of `y` (each leading index an independent
    system, e.g. a batch of neurons), so its Jacobian is `[..., C, C]` blocks instead of one dense
    `S x S` matrix; `jacobian(y)` gives those blocks in closed form (else `C` reverse passes do).
    `memo`: the step starts from the matrix the previous step of its sequence ended with, and
    leaves its own there (see the module docstring)."""
    b_, c_ = b.detach(), c.detach()
    linear = _Linearisation(f, c_, y_guess.shape, blockwise, y_guess.dtype, y_guess.device, jacobian)
    y = y_guess.detach()
    with torch.no_grad():
        inverse = None if memo is None else memo.lookup(c_, y.shape, blockwise)
        solved = None if inverse is None else _inherited_chord(f, b_, c_, y, inverse, linear, tol, max_iters,
                                                               blockwise)
        if solved is None:
            y, inverse, unconverged, delta = _newton_iterations(f, b_, c_, y, linear, tol, max_iters, blockwise)
        else:
            (y, worst), unconverged = solved, torch.zeros((), dtype=torch.bool, device=y.device)
            if worst > MEMO_REFRESH_RATIO and linear.eye.shape[0] < LARGE_SYSTEM:  # it served, slowly:
                inverse = linear.inverse(y)  # the next step gets a matrix formed here
    if bool(unconverged.any()) or not bool(torch.isfinite(y).all()):
        raise ConvergenceError(
            f"implicit step {step}: Newton's method did not converge in {max_iters} iterations "
            f"(last update {delta.abs().max().item():.3e}, tolerance {tol:.1e}); "
            "reduce the step size or raise newton_max_iters",
            system=(f, b, c, jacobian),
            iterate=y,
            unconverged=unconverged.expand(y.shape[:-1]) if not blockwise else unconverged,
        )
    residual = y - b - c * f(y)
    if residual.requires_grad:  # the implicit-function theorem's derivatives need M at the solution
        with torch.no_grad():
            inverse = linear.inverse(y)
    if memo is not None:
        memo.keep(inverse, c_, y.shape, blockwise)
    return y - linear.apply(inverse, residual)


def _newton_iterations(f, b, c, y, linear, tol: float, max_iters: int, blockwise: bool):
    """Chord iterations from `y` with the matrix formed there, formed again wherever an update shrank
    by less than `REFRESH_RATIO`: `(y, inverse, unconverged, last update)`.  Per system (blockwise:
    each leading index; dense: the whole state) an iteration has converged, or given up because its
    update stopped being finite (the others go on)."""
    systems = y.shape[:-1] if blockwise else ()
    failed = torch.zeros(systems, dtype=torch.bool, device=y.device)
    last_size = None
    inverse = linear.inverse(y)
    for _ in range(max_iters):
        delta = linear.apply(inverse, y - b - c * f(y))
        if blockwise:
            failed = failed | ~torch.isfinite(delta).all(-1)
            delta = torch.where(failed.unsqueeze(-1), torch.zeros_like(delta), delta)
        else:
            failed = failed | ~torch.isfinite(delta).all()
        y = y - delta
        size, scale = _sizes(delta, y, blockwise)
        unconverged = failed | ~(size <= tol * scale)
        going = unconverged & ~failed
        if not bool(going.any()):  # every system converged or failed
            break
        if last_size is not None and bool((going & (size > REFRESH_RATIO * last_size)).any()):
            inverse = linear.inverse(y)  # the chord contracts too slowly (or not at all): a Newton step
        last_size = size
    return y, inverse, unconverged, delta
