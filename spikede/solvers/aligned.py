r"""Hybrid solves whose steps end at the spikes: `solve_hybrid(..., restart_at_spikes=True)`.

The step in which a neuron's spiking variable crosses its threshold is shortened to end at the
spike, and that neuron's next steps start there (`t_s + h`, `t_s + 2h`, ...), as in pycaputo's
integrate-and-fire solvers.  Every neuron of a batch so has its own grid, and the L1 scheme runs on
it, with `y^-_k` the state at the end of step `k` before a reset and `y^+_k` after it:

$$
\sum_{k=1}^{n} a_{n,k}\, \frac{y^-_k - y^+_{k-1}}{t_k - t_{k-1}} = f(t_n, y^-_n), \qquad
a_{n,k} = \frac{(t_n - t_{k-1})^{1-\alpha} - (t_n - t_k)^{1-\alpha}}{\Gamma(2-\alpha)}
$$

(explicit: `f(t_{n-1}, y^+_{n-1})`), so the memory holds the continuous part of the solution, as
with `history='continuous'`.  The spike time is the linear interpolation of the spiking variable
inside the step; where an implicit step has no solution (an upstroke that runs away), it is the
end of the longest step that has one, found by bisection.  At the spike the spiking variable is
the threshold and the other variables take the shortened step with it held there (implicit), or
the shortened explicit step.

This path runs without a graph (its outputs carry no gradient) and keeps the full history (`O(n)`
work per step and neuron); `func` receives `t` as a tensor of the neurons' own times `[*batch]`.
"""

from __future__ import annotations

import math

import torch

from .newton import ConvergenceError, solve_at
from .newton import default_tolerance as error_tolerance

__all__ = ["solve_aligned"]

_BISECTIONS = 40  # halvings of the step while searching for the last step with a solution (2^-40 of h)
_BISECTION_ITERS = 20  # Newton iterations per trial step (a solvable step converges in a few)


class _Grids:
    """Each neuron's times `t_0 .. t_m` and L1 slopes `(y^-_{k+1} - y^+_k) / (t_{k+1} - t_k)`, `k < m`,
    in buffers that double when full."""

    def __init__(self, y0: torch.Tensor, t0: torch.Tensor, capacity: int):
        self.times = y0.new_empty(capacity + 1, *y0.shape[:-1])
        self.times[0] = t0
        self.slopes = y0.new_empty(capacity, *y0.shape)
        self.m = 0

    def append(self, slope: torch.Tensor, t: torch.Tensor) -> None:
        if self.m == self.slopes.shape[0]:
            self.times = torch.cat([self.times, torch.empty_like(self.times[1:])])
            self.slopes = torch.cat([self.slopes, torch.empty_like(self.slopes)])
        self.slopes[self.m] = slope
        self.times[self.m + 1] = t
        self.m += 1

    @property
    def now(self) -> torch.Tensor:
        return self.times[self.m]


class _L1Step:
    """One L1 step of each neuron's own length `tau` from the grids' last time: `y = base + coef f`."""

    def __init__(self, alpha: torch.Tensor):
        self.alpha = alpha  # a number, or one order per component
        self.gamma = torch.exp(torch.lgamma(2.0 - alpha))

    def system(self, grids: _Grids, y: torch.Tensor, tau: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        times = grids.times[: grids.m + 1]
        powers = (grids.now + tau - times).unsqueeze(-1) ** (1.0 - self.alpha)  # [m + 1, *batch, 1 or C]
        weights = powers[:-1] - powers[1:]  # a_{n,k} Gamma(2 - alpha), k < m; the last is powers[-1]
        coef = tau.unsqueeze(-1) * self.gamma / powers[-1]
        history = (weights * grids.slopes[: grids.m]).sum(0) / self.gamma if grids.m else torch.zeros_like(y)
        return y - coef * history, coef


def solve_aligned(func, y0: torch.Tensor, grid: torch.Tensor, alpha, rule, *, implicit: bool, newton_tol,
                  newton_max_iters: int, save_every: int, save_spikes: bool):
    """The hybrid solve of `spikede.solvers.hybrid.solve_hybrid` with steps that end at the spikes (see the
    module docstring); `grid` is the uniform grid whose step `h` and end the neurons' own grids keep."""
    from .hybrid import HybridSolution

    with torch.no_grad():
        y0 = y0.detach()
        h, end = (grid[-1] - grid[0]) / (grid.numel() - 1), grid[-1]
        batch, c = y0.shape[:-1], rule.component
        threshold = torch.as_tensor(rule.threshold, dtype=y0.dtype, device=y0.device).expand(batch)
        orders = torch.as_tensor(alpha.detach() if isinstance(alpha, torch.Tensor) else alpha, dtype=y0.dtype,
                                 device=y0.device)
        scheme = _L1Step(orders)
        grids = _Grids(y0, torch.zeros(batch, dtype=y0.dtype, device=y0.device) + grid[0], grid.numel())
        closed_form = getattr(func, "block_jacobian", None)
        tol = error_tolerance(y0.dtype) if newton_tol is None else newton_tol
        slack = 1e-9 * float(h)

        def attempt(y, tau, pin=None, max_iters=newton_max_iters):
            """`(y_new, exists)`: the step of length `tau` from `y`, and where it has a solution; `pin` holds
            the spiking variable at the threshold."""
            base, coef = scheme.system(grids, y, tau)
            coef = coef.expand(y.shape).clone()
            if pin is not None:
                base = base.clone()
                base[..., c] = torch.where(pin, threshold, base[..., c])
                coef[..., c] = torch.where(pin, torch.zeros_like(threshold), coef[..., c])
            if not implicit:
                step = base + coef * func(grids.now, y)
                return step, torch.isfinite(step).all(-1)
            try:
                step = solve_at(func, grids.now + tau, base, coef, y, tol=tol, max_iters=max_iters,
                                step=grids.m + 1, blockwise=True, block_jacobian=closed_form)
                return step, torch.isfinite(step).all(-1)
            except ConvergenceError as error:
                exists = ~error.unconverged & torch.isfinite(error.iterate).all(-1)
                return torch.where(exists.unsqueeze(-1), error.iterate, y), exists

        y = y0
        states, saved_times = [y0], [grids.now.clone()]
        raster = [torch.zeros(batch, dtype=y0.dtype, device=y0.device)] * save_spikes
        spike_times, neurons = [], []
        count = torch.zeros(batch, dtype=torch.long, device=y0.device)
        step = 0
        while True:
            active = grids.now < end - slack
            if not bool(active.any()):
                break
            step += 1
            tau = torch.where(active, torch.minimum(h.expand(batch), end - grids.now), h.expand(batch))
            proposed, exists = attempt(y, tau)
            below = y[..., c] < threshold
            fired = active & below & (~exists | (proposed[..., c] >= threshold))
            if bool(fired.any()):
                rise = torch.where(fired & exists, proposed[..., c] - y[..., c], torch.ones_like(tau))
                fraction = torch.where(fired & exists, (threshold - y[..., c]) / rise, torch.ones_like(tau))
                runaway = fired & ~exists
                if bool(runaway.any()):
                    fraction = torch.where(runaway, _longest_step(attempt, y, tau, runaway, threshold, c), fraction)
                tau = torch.where(fired, fraction * tau, tau)
                before, _ = attempt(y, tau, pin=fired)
                after = torch.where(fired.unsqueeze(-1), rule.reset(before), before)
                spike_times.append((grids.now + tau)[fired])
                neurons.append(torch.nonzero(fired))
                count = count + fired
            else:
                before = after = proposed
            keep = active.unsqueeze(-1)
            before, after = torch.where(keep, before, y), torch.where(keep, after, y)
            grids.append((before - y) / tau.unsqueeze(-1), grids.now + tau)
            y = after
            if save_spikes:
                raster.append(fired.to(y0.dtype))
            if step % save_every == 0:
                states.append(y)
                saved_times.append(torch.minimum(grids.now, end))
        if step % save_every:
            states.append(y)
            saved_times.append(torch.minimum(grids.now, end))
        stacked = torch.stack(states)
        if not bool(torch.isfinite(stacked).all()):
            raise FloatingPointError("the solution is not finite; the problem may be stiff for this step size: "
                                     "reduce h or use implicit=True")
        return HybridSolution(
            t=torch.stack(saved_times), y=stacked, spikes=torch.stack(raster) if save_spikes else None,
            spike_times=torch.cat(spike_times) if spike_times else y0.new_zeros(0),
            spike_index=torch.cat(neurons) if neurons else torch.zeros(0, len(batch), dtype=torch.long,
                                                                       device=y0.device),
            spike_count=count, batch_shape=batch,
        )


def _longest_step(attempt, y, tau, runaway, threshold, c) -> torch.Tensor:
    """Per neuron of `runaway`, the largest fraction of `tau` (to `2^-40`) whose step has a solution below the
    threshold: where the upstroke runs away, the spike."""
    low, high = torch.zeros_like(tau), torch.ones_like(tau)
    for _ in range(_BISECTIONS):
        middle = 0.5 * (low + high)
        step, exists = attempt(y, torch.where(runaway, middle * tau, tau), max_iters=_BISECTION_ITERS)
        good = exists & (step[..., c] < threshold)
        low, high = torch.where(good, middle, low), torch.where(good, high, middle)
    return low.clamp(min=math.ldexp(1.0, -_BISECTIONS))
