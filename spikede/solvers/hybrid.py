r"""Hybrid (event-driven) solves: a fractional ODE whose state jumps when a component crosses a threshold.

The problem is

$$
D^{\alpha} y = f(t, y), \qquad
\text{if } y_c(t^-) \ge \theta \text{ (crossing from below)}: \quad y(t^+) = R(y(t^-)),
$$

with `c` the spiking component (`SpikeRule.component`), `theta` its threshold and `R` the
reset map (`None`: the crossing is only recorded, as for Hodgkin–Huxley or FitzHugh–Nagumo,
whose spikes are a trajectory of the smooth dynamics).  After every step of a state-storing
scheme (`gl`, `l1`) the crossing test runs on the new state; where it fires, the reset
is applied and the spike time is placed inside the step by linear interpolation,

$$
t_s = t_{n-1} + h \frac{\theta - y_{c,n-1}}{y_{c,n} - y_{c,n-1}}.
$$

What the fractional memory keeps after a jump is the model's choice (`SpikeRule.history`):

- `'continuous'` (default): the history keeps only the continuous part `z = y - J` (`J` the sum
  of the jumps so far) and the dynamics read `f(t, z + J)`; the derivative sees no jump.  The
  continuous part of a spiking variable ends its spike step at the threshold (`y^- = theta`),
  not at the step's overshoot, whose memory would otherwise linger.  This is the convention of
  pycaputo's integrate-and-fire solvers, whose L1 sums use `y^-_{k+1} - y^+_k` with
  `y^- = V_peak` (Fikl, pycaputo documentation).  Spike times converge as the step shrinks.
- `'reset'`: the post-reset state enters the history, as in the spiking layers of
  [spikede.neurons][].  This is a discrete-time model without a continuous-time limit: a
  Caputo solution `y = y0 + I^alpha f` is continuous, and the exact derivative of a jump,
  `Delta (t - t_s)^(-alpha) / Gamma(1 - alpha)`, integrates back to the jump itself, so the
  memory undoes a reset at a rate set by the step.  For alpha < 1 the spike times after the
  first keep moving as `h` shrinks (about a step per halving at alpha 0.8, measured in
  docs/tutorials/models.md).  Use it for the discrete-time semantics of an SNN layer and
  `'continuous'` for simulations meant to converge.

Gradients: with `surrogate=None` the spikes are hard (no gradient through the crossing
decision; gradients still reach the reset values and the dynamics).  With a surrogate name
the spike raster carries the surrogate gradient `sigma'(y_c - theta)` (gated by the
crossing-from-below condition, which has no gradient), and so does the reset.  Spike times
are differentiable through the interpolation above.  Gradients come by autograd, or with
`adjoint=True` (explicit `l1`/`gl`) by the discrete adjoint of [spikede.solvers.adjoint][]:
the forward keeps no graph, only each step's state, history sum and event state, and the
reverse sweep replays one step at a time, events included; the gradients are the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..surrogate import describe, get_surrogate, spike
from .engine import not_finite
from .adjoint import ReplayableEvent
from .aligned import solve_aligned
from .fdeint import _check_grid, fdeint
from .newton import ConvergenceError, newton_solve
from .newton import default_tolerance as error_tolerance

__all__ = ["SpikeRule", "HybridSolution", "solve_hybrid", "HISTORY_MODES"]

HISTORY_MODES = ("reset", "continuous")


@dataclass(frozen=True)
class SpikeRule:
    """When a state spikes and what a spike does to it (an immutable record).

    Attributes:
        component: index on the state's last axis of the variable that spikes (e.g. `0` for `v`).
        threshold: the spike is the crossing of `threshold` from below; a float or a tensor
            broadcastable to the batch shape (one threshold per neuron).
        reset: `reset(y)` maps the whole state `[..., C]` at the spike to the state after it
            (e.g. `v <- v_r, w <- w + b`); `None` records spikes without changing the state.
        refractory: time after a spike during which the spiking component is held at its
            post-reset value and cannot spike (units of `t`; `0` for none).
        history: `'continuous'` (default) or `'reset'`, what the fractional memory keeps after a
            jump (see the module docstring).
    """

    component: int = 0
    threshold: float | torch.Tensor = 0.0
    reset: Callable[[torch.Tensor], torch.Tensor] | None = None
    refractory: float = 0.0
    history: str = "continuous"

    def __post_init__(self) -> None:
        if isinstance(self.component, bool) or not isinstance(self.component, int):
            raise TypeError(f"component must be an int index on the state's last axis, got {self.component!r}")
        if not isinstance(self.threshold, (int, float, torch.Tensor)) or isinstance(self.threshold, bool):
            raise TypeError(f"threshold must be a float or a tensor, got {type(self.threshold).__name__}")
        if self.reset is not None and not callable(self.reset):
            raise TypeError(f"reset must be callable as reset(y) or None, got {type(self.reset).__name__}")
        if not isinstance(self.refractory, (int, float)) or isinstance(self.refractory, bool) or not (
                self.refractory >= 0.0):
            raise ValueError(f"refractory must be a number >= 0 (time units of t), got {self.refractory!r}")
        if self.history not in HISTORY_MODES:
            raise ValueError(f"history must be one of {', '.join(map(repr, HISTORY_MODES))}, got {self.history!r}")


@dataclass
class HybridSolution:
    """The result of [solve_hybrid][spikede.solvers.hybrid.solve_hybrid].

    Attributes:
        t: the times of the saved states, `[S]` (`[S, *batch]` with `restart_at_spikes=True`: each
            neuron's own times).
        y: the states after the events at those times, `[S, *batch, C]`.
        spikes: the spike raster `[N + 1, *batch]` (0/1, row 0 is zero), carrying the surrogate
            gradient when one was given; `None` with `save_spikes=False`.
        spike_times: the interpolated time of every spike, in the order they happened, `[K]`.
        spike_index: for each spike, the index of its neuron in the batch, `[K, len(batch)]`.
        spike_count: spikes per neuron, `[*batch]` (integer).
    """

    t: torch.Tensor
    y: torch.Tensor
    spikes: torch.Tensor | None
    spike_times: torch.Tensor
    spike_index: torch.Tensor
    spike_count: torch.Tensor
    batch_shape: torch.Size = field(default=torch.Size())

    def times_of(self, *index: int) -> torch.Tensor:
        """The spike times of the neuron at `index` in the batch (no index for an unbatched solve)."""
        if len(index) != len(self.batch_shape):
            raise ValueError(f"index must name one neuron of the batch shape {tuple(self.batch_shape)}, "
                             f"got {index!r}")
        target = torch.tensor(index, dtype=torch.long, device=self.spike_index.device)
        mine = (self.spike_index == target).all(1) if index else torch.ones_like(self.spike_times, dtype=torch.bool)
        return self.spike_times[mine]


class _WithJacobian:
    """A right-hand side `f(t, y)` with the closed-form blocks `block_jacobian(t, y)` of `df/dy`."""

    def __init__(self, rhs, block_jacobian):
        self.rhs, self.block_jacobian = rhs, block_jacobian

    def __call__(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.rhs(t, y)


class _Events(ReplayableEvent):
    """The per-step event logic of one hybrid solve (called by the solver after every step), a
    [ReplayableEvent][spikede.solvers.adjoint.ReplayableEvent]."""

    def __init__(self, func, y0, grid, rule: SpikeRule, surrogate, surrogate_scale, save_every: int,
                 save_spikes: bool, integer_order: bool = False, blockwise: bool = False):
        self.func, self.grid, self.rule = func, grid, rule
        self.surrogate, self.surrogate_scale = surrogate, surrogate_scale
        self.save_every, self.save_spikes = save_every, save_spikes
        self.n_steps = len(grid) - 1
        self.integer_order = integer_order
        self.blockwise = blockwise  # Newton per neuron in step_failed, as fdeint's jacobian='blockwise'
        self.start(y0)

    def start(self, y0: torch.Tensor) -> None:
        """Begin a solve from `y0`: no jumps, no spikes, nothing recorded."""
        self.rewind(y0)
        self.replaying = False
        batch = y0.shape[:-1]
        self.states, self.saved_steps = [y0], [0]
        self.raster = [torch.zeros(batch, dtype=y0.dtype, device=y0.device)] if self.save_spikes else None
        self.times, self.neurons, self.spike_slices, self.spike_total = [], [], {}, 0
        self.count = torch.zeros(batch, dtype=torch.long, device=y0.device)
        self.received = None

    def rewind(self, y0: torch.Tensor) -> None:
        """The event's state at `t_0` from `y0` (what it records is kept)."""
        rule, batch = self.rule, y0.shape[:-1]
        self.n = 0
        self.jump = torch.zeros_like(y0) if rule.history == "continuous" and not self.integer_order else None
        self.previous = y0[..., rule.component]
        refractory = rule.refractory > 0.0  # else neither is read
        self.refractory_until = torch.full(batch, -torch.inf, dtype=y0.dtype, device=y0.device) if refractory else None
        self.held = torch.zeros(batch, dtype=y0.dtype, device=y0.device) if refractory else None
        self.last = (y0, None, None)  # the post-event state, spikes and spike times of the latest step

    # --- the replay protocol of the discrete adjoint (spikede.solvers.adjoint) -------------------

    def carry(self) -> tuple:
        """What the event keeps between steps: the jumps so far, the spiking variable's last value,
        the end of each neuron's refractory period and the value it is held at."""
        return self.jump, self.previous, self.refractory_until, self.held

    def load(self, n: int, carry: tuple) -> None:
        """Set the event to its state after step `n` (to replay step `n + 1` without recording it)."""
        self.n, self.replaying = n, True
        self.jump, self.previous, self.refractory_until, self.held = carry

    def outputs(self) -> tuple:
        """The recorded solve as tensors: saved states, spike raster (empty without `save_spikes`), spike times."""
        y0 = self.states[0]
        raster = torch.stack(self.raster) if self.raster is not None else y0.new_zeros(0)
        times = torch.cat(self.times) if self.times else y0.new_zeros(0)
        return torch.stack(self.states), raster, times

    def step_outputs(self, n: int, grads: tuple) -> tuple[list, list]:
        """The outputs the latest (replayed) step `n` contributed, and their cotangents in `grads`."""
        grad_states, grad_raster, grad_times = grads
        after, s, times = self.last
        outputs, cotangents = [], []
        if n % self.save_every == 0 or n == self.n_steps:
            outputs.append(after)
            cotangents.append(grad_states[n // self.save_every if n % self.save_every == 0 else -1])
        if s is not None and self.raster is not None:
            outputs.append(s)
            cotangents.append(grad_raster[n])
        if times is not None:
            first, count = self.spike_slices[n]
            outputs.append(times)
            cotangents.append(grad_times[first : first + count])
        return outputs, cotangents

    def receive(self, outputs: list) -> None:
        """The outputs of `outputs()` as the adjoint hands them back, with its backward attached."""
        self.received = outputs

    def _state(self, z: torch.Tensor) -> torch.Tensor:
        """The state `y = z + J` from its continuous part `z` (the same under the `'reset'` history)."""
        return z if self.jump is None else z + self.jump

    def rhs(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.func(t, self._state(z))

    def solver_rhs(self):
        """`rhs` as the solver sees it: with `block_jacobian(t, z)`, `func`'s blocks at `z + J`, where
        `func` has that method."""
        closed_form = getattr(self.func, "block_jacobian", None)
        if closed_form is None:
            return self.rhs
        return _WithJacobian(self.rhs, lambda t, z: closed_form(t, self._state(z)))

    def __call__(self, t_n: torch.Tensor, z: torch.Tensor, y_prev: torch.Tensor | None = None) -> torch.Tensor:
        self.n += 1
        rule = self.rule
        y = self._state(z)
        v = y[..., rule.component]
        gate = self.previous < rule.threshold
        if rule.refractory > 0.0:
            resting = t_n < self.refractory_until
            gate = gate & ~resting
        fired = gate & (v >= rule.threshold)
        if self.surrogate is None:
            s = fired.to(y.dtype)
        else:
            s = spike(v - rule.threshold, self.surrogate, self.surrogate_scale) * gate.to(y.dtype)
        any_fired = bool(fired.any())
        fraction = self._crossing_fraction(v, fired) if any_fired else None
        spike_time = self.grid[self.n - 1] + (t_n - self.grid[self.n - 1]) * fraction if any_fired else None
        reset_value = None
        if rule.reset is None or (self.surrogate is None and not any_fired):
            after = y
        elif self.integer_order:  # reset at the spike time, then the rest of the step from there
            target, reset_value = self._restart(t_n, y, y_prev, v, fraction)
            after = y + s.unsqueeze(-1) * (target - y)
        else:
            if self.jump is not None:  # the continuous part ends at the threshold, not at the step's overshoot
                y = self._replace_component(y, v + s * (rule.threshold - v))
            after = y + s.unsqueeze(-1) * (rule.reset(y) - y)
        if rule.refractory > 0.0 and any_fired:
            post = after[..., rule.component] if reset_value is None else reset_value
            self.held = torch.where(fired, post.detach(), self.held)
            self.refractory_until = torch.where(fired, spike_time.detach() + rule.refractory, self.refractory_until)
        if rule.refractory > 0.0:
            after = self._replace_component(after, torch.where(resting, self.held, after[..., rule.component]))
        self.previous = after[..., rule.component]
        self._record(fired, any_fired, spike_time, s, after)
        if self.jump is None:
            return after
        kept = y - self.jump
        self.jump = self.jump + (after - y)
        return kept

    def _restart(self, t_n, y, y_prev, v, fraction):
        """Integer order: the state at the spike time (linear in the step, the spiking variable at
        its threshold), reset there, then advanced over the rest of the step by the midpoint rule
        (with the input sampled at `t_n`).  Returns the state at `t_n` and the reset value."""
        rule = self.rule
        h = t_n - self.grid[self.n - 1]
        fraction = fraction.unsqueeze(-1)
        at_spike = y_prev + fraction * (y - y_prev)
        at_spike = self._replace_component(at_spike, torch.zeros_like(v) + rule.threshold)
        post = rule.reset(at_spike)
        rest = (1.0 - fraction) * h
        middle = post + 0.5 * rest * self.func(t_n, post)
        return post + rest * self.func(t_n, middle), post[..., rule.component]

    def _replace_component(self, y: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        c = self.rule.component
        return torch.cat([y[..., :c], value.unsqueeze(-1), y[..., c + 1:]], -1)

    def step_failed(self, t_n: torch.Tensor, z_prev: torch.Tensor, error: ConvergenceError) -> torch.Tensor:
        """An implicit step without a solution: the spiking variable blew up within it (the
        exponential or quadratic runaway of EIF, AdEx, Izhikevich).  Where the step has
        crossed, the variable is pinned at the threshold and the other variables solve their
        own implicit equations; the event then fires there.  Other failures are raised."""
        if error.system is None:
            raise error
        f, b, c, jacobian = error.system
        rule, component = self.rule, self.rule.component
        offset = 0.0 if self.jump is None else self.jump[..., component]
        level = torch.as_tensor(rule.threshold, dtype=z_prev.dtype, device=z_prev.device) - offset
        last = error.iterate[..., component]
        runaway = ~torch.isfinite(last) | (last >= level)
        if self.blockwise or last.numel() == 1:  # a dense Newton's failure does not say which neuron ran away
            runaway = runaway | error.unconverged
        pin = torch.zeros_like(z_prev, dtype=torch.bool)
        pin[..., component] = runaway
        pinned_b = torch.where(pin, torch.zeros_like(z_prev) + level.unsqueeze(-1), b)
        pinned_c = torch.where(pin, torch.zeros_like(z_prev), torch.as_tensor(c).expand_as(z_prev))
        guess = torch.where(pin, pinned_b, z_prev)
        try:
            return newton_solve(f, pinned_b, pinned_c, guess, tol=error_tolerance(z_prev.dtype),
                                max_iters=50, step=self.n + 1, blockwise=self.blockwise, jacobian=jacobian)
        except ConvergenceError:
            raise error from None

    def _crossing_fraction(self, v: torch.Tensor, fired: torch.Tensor) -> torch.Tensor:
        """Where in step n the spiking variable crossed its threshold, in (0, 1], by linear
        interpolation; 1 where it did not fire (the step's end)."""
        rise = torch.where(fired, v - self.previous, torch.ones_like(v))  # > 0 where fired
        return torch.where(fired, (self.rule.threshold - self.previous) / rise, torch.ones_like(v))

    def _record(self, fired, any_fired: bool, spike_time, s, after) -> None:
        self.last = (after, s, spike_time[fired] if any_fired else None)
        if self.replaying:
            return
        if any_fired:
            recorded = spike_time[fired]
            self.spike_slices[self.n] = (self.spike_total, recorded.numel())
            self.spike_total += recorded.numel()
            self.times.append(recorded)
            self.neurons.append(torch.nonzero(fired))
            self.count = self.count + fired
        if self.raster is not None:
            self.raster.append(s)
        if self.n % self.save_every == 0 or self.n == self.n_steps:
            self.states.append(after)
            self.saved_steps.append(self.n)

    def check_finite(self, states: torch.Tensor) -> None:
        finite = torch.isfinite(states.detach()).reshape(states.shape[0], -1).all(1)
        if not bool(finite.all()):
            raise not_finite(self.saved_steps[int(torch.nonzero(~finite)[0])], self.save_every)

    def solution(self, t: torch.Tensor) -> HybridSolution:
        states, raster, times = self.received if self.received is not None else self.outputs()
        self.check_finite(states)
        batch = states.shape[1:-1]
        neurons = torch.cat(self.neurons) if self.neurons else torch.zeros(0, len(batch), dtype=torch.long,
                                                                           device=states.device)
        return HybridSolution(
            t=t[self.saved_steps], y=states, spikes=raster if self.raster is not None else None,
            spike_times=times, spike_index=neurons, spike_count=self.count, batch_shape=batch,
        )


def solve_hybrid(
    func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y0: torch.Tensor,
    t: torch.Tensor,
    alpha: float | torch.Tensor,
    rule: SpikeRule,
    *,
    method: str = "l1",
    memory: int | str | None = None,
    surrogate: str | None = None,
    surrogate_scale: float | None = None,
    save_every: int = 1,
    save_spikes: bool = True,
    restart_at_spikes: bool = False,
    **solver_options: object,
) -> HybridSolution:
    r"""Solve `D^alpha y = f(t, y)` with threshold events on the grid `t`.

    Args:
        func: `func(t, y)`, the right-hand side for states `y` of shape `[*batch, C]`; with a
            `block_jacobian(t, y)` method (the `[*batch, C, C]` blocks of `df/dy`), implicit steps
            with `jacobian='blockwise'` use it instead of `C` reverse passes.
        y0: the initial state `[*batch, C]`; the last axis holds the model's variables.
        t: the grid: uniform (`torch.linspace`), or with `method='l1'` any increasing grid (full
            memory).
        alpha: the order in (0, 1], or a 1-D tensor with one order per variable (`[C]`, e.g.
            `torch.tensor([0.8, 1.0])` for a fractional `v` and an integer-order `w`).
        rule: the [SpikeRule][spikede.solvers.hybrid.SpikeRule]: component, threshold, reset,
            refractory period and history convention.
        method: `'l1'` (default) or `'gl'`, the schemes whose history is the state;
            `implicit=True` (in `solver_options`) solves each step by Newton's method.  For
            integer-order models (alpha = 1 for every variable) `'rk4'`: classical Runge-Kutta
            steps, and a neuron that fires is reset at its interpolated spike time and advanced
            over the rest of the step (spike times within a fraction of a step of an adaptive
            reference, see docs/tutorials/models.md).
        memory: `None` (full history), a window `M`, or `'soe'` (constant `alpha` only).
        surrogate: `None` for hard spikes, or a surrogate name (`'sigmoid'`, `'gaussian'`, ...) whose
            gradient the spikes and resets carry.
        save_every: keep the states at steps `0, k, 2k, ...` and the last.
        save_spikes: keep the dense spike raster (`[N + 1, *batch]`); spike times and counts are kept
            either way.
        restart_at_spikes: shorten the step in which a neuron fires so that it ends at the spike,
            and start that neuron's next steps there, as pycaputo's integrate-and-fire solvers do
            ([spikede.solvers.aligned][]): each neuron gets its own grid (the solution's `t` is
            `[S, *batch]`).  For `method='l1'` on a uniform `t` with full memory, a reset rule,
            `history='continuous'`, no refractory period and hard spikes; no gradients.
        **solver_options: passed on to [fdeint][spikede.solvers.fdeint.fdeint] (`implicit`,
            `newton_tol`, `block`, `soe_tol`, ...).  `adjoint=True` (or a
            [DiscreteAdjoint][spikede.solvers.adjoint.DiscreteAdjoint]) with explicit `l1`/`gl`
            steps: gradients by the discrete adjoint, the tensors `func` reads named in
            `adjoint_params=`.

    Returns:
        A [HybridSolution][spikede.solvers.hybrid.HybridSolution].

    Raises:
        ValueError: bad input (the message names the parameter), or a method whose history is not
            the state.
        FloatingPointError: the state stopped being finite (the message names the step).
    """
    if not isinstance(rule, SpikeRule):
        raise TypeError(f"rule must be a SpikeRule, got {type(rule).__name__}")
    if not isinstance(y0, torch.Tensor) or not y0.is_floating_point() or y0.dim() < 1:
        raise TypeError("y0 must be a floating-point tensor of shape [*batch, C] (C variables on the last axis), "
                        f"got {y0!r}" if not isinstance(y0, torch.Tensor) else
                        f"y0 must be a floating-point tensor of shape [*batch, C], got dtype {y0.dtype} "
                        f"and shape {tuple(y0.shape)}")
    size = y0.shape[-1]
    if not -size <= rule.component < size:
        raise ValueError(f"rule.component={rule.component} names no variable: the state has {size} "
                         f"(y0 has shape {tuple(y0.shape)})")
    if isinstance(rule.threshold, torch.Tensor):
        try:
            torch.broadcast_shapes(rule.threshold.shape, y0.shape[:-1])
        except RuntimeError:
            raise ValueError(f"rule.threshold of shape {tuple(rule.threshold.shape)} does not broadcast with the "
                             f"batch shape {tuple(y0.shape[:-1])} of y0") from None
    adjoint = solver_options.get("adjoint", False)
    if adjoint is not False and (method == "rk4" or solver_options.get("implicit")):
        raise ValueError("adjoint= differentiates explicit 'l1' and 'gl' hybrid solves (the reverse sweep replays "
                         f"each step); got method={method!r}, implicit={solver_options.get('implicit', False)!r}. "
                         "Use adjoint=False (autograd) here")
    if adjoint is not False and surrogate is not None and get_surrogate(surrogate).stochastic:
        raise ValueError(f"adjoint= replays each step, and surrogate={surrogate!r} draws new noise every time; "
                         "use a deterministic surrogate or adjoint=False")
    for name in ("event", "save_every"):
        if name in solver_options:
            raise ValueError(f"{name}= is set by solve_hybrid itself")
    if not isinstance(save_every, int) or isinstance(save_every, bool) or save_every < 1:
        raise ValueError(f"save_every must be a positive int, got {save_every!r}")
    if not isinstance(save_spikes, bool):
        raise TypeError(f"save_spikes must be a bool, got {save_spikes!r}")
    if not isinstance(t, torch.Tensor) or t.dim() != 1 or t.numel() < 2:
        raise ValueError(f"t must be a 1-D tensor of at least 2 times, got {describe(t)}")
    component = rule.component % size
    if component != rule.component:
        rule = SpikeRule(component, rule.threshold, rule.reset, rule.refractory, rule.history)
    grid = t.to(device=y0.device, dtype=y0.dtype)
    if not isinstance(restart_at_spikes, bool):
        raise TypeError(f"restart_at_spikes must be a bool, got {restart_at_spikes!r}")
    if restart_at_spikes:
        _check_restart(grid, rule, method, memory, surrogate, solver_options)
        return solve_aligned(func, y0, grid, alpha, rule, implicit=bool(solver_options.get("implicit", False)),
                             newton_tol=solver_options.get("newton_tol"),
                             newton_max_iters=solver_options.get("newton_max_iters", 50), save_every=save_every,
                             save_spikes=save_spikes)
    if method == "rk4":
        _check_integer_order(alpha, memory, solver_options)
        events = _Events(func, y0, grid.unbind(0), rule, surrogate, surrogate_scale, save_every, save_spikes,
                         integer_order=True)
        _integrate_integer_order(func, y0, grid.unbind(0), events)
        return events.solution(grid)
    events = _Events(func, y0, grid.unbind(0), rule, surrogate, surrogate_scale, save_every, save_spikes,
                     blockwise=solver_options.get("jacobian") == "blockwise")
    try:
        fdeint(events.solver_rhs(), y0, grid, alpha, method=method, memory=memory, event=events,
               save_every=1 if adjoint is not False else grid.numel() - 1, **solver_options)
    except FloatingPointError:
        events.check_finite(torch.stack(events.states))  # names the first saved step that is not finite
        raise
    return events.solution(grid)


def _check_restart(grid: torch.Tensor, rule: SpikeRule, method: str, memory, surrogate, solver_options: dict) -> None:
    """What `restart_at_spikes=True` needs, with a message naming what is not so."""
    uneven = _check_grid(grid, grid.device)[2]
    unsupported = sorted(set(solver_options) - {"implicit", "newton_tol", "newton_max_iters", "jacobian"})
    problems = [
        (method != "l1", f"method={method!r} (it runs the L1 scheme on each neuron's grid)"),
        (memory is not None, f"memory={memory!r} (it keeps the full history)"),
        (uneven is not None, f"a non-uniform t ({uneven}; its step h is the one each neuron's grid keeps)"),
        (rule.reset is None, "a rule without a reset (nothing to restart from)"),
        (rule.history != "continuous", f"history={rule.history!r} (its memory holds the continuous part, "
         "'continuous')"),
        (rule.refractory > 0.0, f"refractory={rule.refractory!r}"),
        (surrogate is not None, f"surrogate={surrogate!r} (it computes no gradients)"),
        (bool(unsupported), f"the options {unsupported}"),
    ]
    for bad, what in problems:
        if bad:
            raise ValueError(f"restart_at_spikes=True does not take {what}; use restart_at_spikes=False for it")


def _check_integer_order(alpha, memory, solver_options) -> None:
    orders = torch.as_tensor(alpha.detach() if isinstance(alpha, torch.Tensor) else alpha)
    if not bool(torch.all(orders == 1.0)):
        raise ValueError(f"method='rk4' solves integer-order models (alpha = 1 for every variable), got alpha={alpha!r}; "
                         "use method='l1' or 'gl' for fractional orders")
    if memory is not None or solver_options:
        extra = ["memory"] * (memory is not None) + sorted(solver_options)
        raise ValueError(f"method='rk4' keeps no history and takes no solver options; got {', '.join(extra)}")


def _integrate_integer_order(func, y0: torch.Tensor, grid: tuple, events: _Events) -> None:
    """Classical fourth-order Runge-Kutta steps on the grid, the events after each.

    With a reset rule the stages see the spiking variable capped at its threshold: past the
    cut-off the model's runaway (the exponential of EIF and AdEx) would overflow within a
    step, and nothing beyond the threshold is kept (the step's result still crosses it and
    fires)."""
    rule = events.rule
    if rule.reset is None:
        def stage(t, y):
            return func(t, y)
    else:
        def stage(t, y):
            v = y[..., rule.component]
            return func(t, events._replace_component(y, torch.minimum(v, torch.zeros_like(v) + rule.threshold)))
    y = y0
    for n in range(1, len(grid)):
        t, h = grid[n - 1], grid[n] - grid[n - 1]
        k1 = func(t, y)
        k2 = stage(t + 0.5 * h, y + 0.5 * h * k1)
        k3 = stage(t + 0.5 * h, y + 0.5 * h * k2)
        k4 = stage(grid[n], y + h * k3)
        y = events(grid[n], y + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4), y)
