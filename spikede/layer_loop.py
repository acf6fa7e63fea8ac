r"""A spiking layer on the solver's step loop: its state, its steps and its generic adjoint.

A layer ([spikede.neurons][]) is a problem for the loop of `fdeint` and the hybrid solves
(`spikede.solvers.engine.march`) whose "times" are the step numbers.  The right-hand side of
the step that produces $v_{n+1}$ is the layer's drive at $v_n$ with that step's input,
$f_n = F(v_n, I_{n+1})$, and the event after each step is the layer's spike and reset:

$$
p_{n+1} = \mathrm{step}(v_n, H_{n+1}, f_n), \qquad (s_{n+1}, v_{n+1}) = \mathrm{event}(p_{n+1}).
$$

What the history keeps is the layer's choice (`history=`, as for the hybrid solves of
[spikede.solvers.hybrid][]).  With `'reset'` the loop's state is the post-reset potential, so the
memory remembers every reset.  With `'continuous'` it is the continuous part $z = v - J$, $J$
the sum of the jumps so far: the drive reads $z + J$, a step that fires ends its continuous part at
the threshold, and the reset adds its jump to $J$:

$$
p = z_p + J, \quad \bar p = p + s (\theta - p), \quad v = \mathrm{reset}(\bar p, s), \quad
z = \bar p - J, \quad J \leftarrow J + (v - \bar p).
$$

The same description, replayed one step at a time with autograd, is the generic discrete
adjoint ([DiscreteAdjoint][spikede.solvers.adjoint.DiscreteAdjoint], `replay_adjoint`): exact
gradients for a layer whatever its drive and event.  The closed-form reverse sweep of
[spikede.neuron_adjoint][] (and its compiled kernels) is the fast path for the drives and
resets whose derivatives it writes out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .solvers.adjoint import DiscreteAdjoint, ReplayableEvent, StepInputs
from .solvers.engine import Problem
from .solvers.memory import make_kernel

__all__ = ["STEP_INDEX", "LayerState", "LayerSteps", "NoHistory", "ForwardEuler", "layer_problem", "skip",
           "replay_adjoint"]

STEP_INDEX = range(1 << 62)  # a layer's "times" on the step loop are the step numbers


def layer_problem(v0: torch.Tensor, dt: float, horizon: int, window: int | None = None, func=None) -> Problem:
    """The `Problem` of a layer's scheme: explicit steps of `dt` over `horizon` step numbers from `v0`."""
    return Problem(func=func, y0=v0, t=STEP_INDEX, h=dt, n_steps=horizon, window=window, corrector_iters=1,
                   newton_tol=0.0, newton_max_iters=1)


@dataclass
class LayerState:
    """State of a layer between steps: the loop's state (the potential, or its continuous part), the
    step count, the history (memory kernel), the scheme that steps it and, for a layer whose
    history keeps the continuous part, the sum of the jumps so far (else `None`)."""

    v: torch.Tensor
    n: int
    kernel: object
    scheme: object
    jump: torch.Tensor | None = None

    @property
    def shape(self) -> torch.Size:
        return self.v.shape

    @property
    def potential(self) -> torch.Tensor:
        """The potential after the last step: the loop's state, plus `J` where there is one."""
        return self.v if self.jump is None else self.v + self.jump


class NoHistory:
    """The memory kernel of an integer-order layer: nothing to remember."""

    n_steps = STEP_INDEX.stop

    def read(self, n: int) -> None:
        return None

    def append(self, row) -> None:
        pass


class ForwardEuler:
    """The scheme of an integer-order layer: `v_n = v_{n-1} + dt F_{n-1}` (no history)."""

    stores_rhs = False
    needs_f_prev = True

    def __init__(self, problem: Problem):
        self.problem, self.h = problem, problem.h

    def step(self, n, y_prev, history, f_prev):
        return y_prev + self.h * f_prev

    def stored(self, y, y_prev, f) -> None:
        return None


class LayerSteps:
    """One call of a layer on the step loop: the right-hand side `rhs(n, y_n)`, the drive of step
    `n + 1` (which reads its input `currents[n + 1 - first]`), and the event after step `n`,
    `self(n, y_p)`, which fires, resets (the layer's `_event`) and hands `(i, p, s, v)` to `keep`
    (`i = n - first` counts this call's steps from 0; `p` and `v` are the potentials before and
    after the reset).  `jump` is `J` of a history that keeps the continuous part (`None`: it keeps
    the resets, and the loop's state `y` is the potential itself)."""

    def __init__(self, neuron, currents, first: int, tau, threshold, keep, jump: torch.Tensor | None = None):
        self.neuron, self.currents, self.first = neuron, currents, first
        self.tau, self.threshold, self.keep = tau, threshold, keep
        self.jump = jump

    def rhs(self, n: int, y: torch.Tensor) -> torch.Tensor | None:
        """`F(v_n, I_{n+1})`; `None` past this call's inputs (a single step's next input is not
        known yet, and the layers' schemes store no `f`)."""
        i = n + 1 - self.first
        if i >= len(self.currents):
            return None
        return self.neuron._rhs(y if self.jump is None else y + self.jump, self.currents[i], self.tau, self.threshold)

    def __call__(self, n: int, proposed: torch.Tensor) -> torch.Tensor:
        if self.jump is None:
            s, v = self.neuron._event(proposed, self.threshold)
            self.keep(n - self.first, proposed, s, v)
            return v
        p = proposed + self.jump
        s, _ = self.neuron._event(p, self.threshold)
        capped = p + s * (self.threshold - p)  # a step that fires ends its continuous part at the threshold
        v = self.neuron.events.after(capped, s, self.threshold)
        self.keep(n - self.first, p, s, v)
        kept = capped - self.jump
        self.jump = self.jump + (v - capped)
        return kept


def skip(n, y, history) -> None:
    """A step visitor that keeps nothing."""


class _Replayed(LayerSteps, ReplayableEvent):
    """`LayerSteps` over a whole sequence as a `ReplayableEvent` of the discrete adjoint: it keeps
    the spikes of the forward pass as its output (and, for a continuous history, the potentials,
    which are not the loop's state) and, while a step is replayed, that step's.  Between steps it
    carries `J` where there is one: with the `'reset'` history the reset acts within the step and
    nothing is carried."""

    def __init__(self, neuron, inputs: StepInputs, tau, threshold, continuous: bool):
        super().__init__(neuron, inputs, 1, tau, threshold, self._keep)
        self.continuous = continuous
        self.start(None)

    def _keep(self, i, proposed, s, v) -> None:
        self.last = (s, v) if self.continuous else (s,)
        if not self.replaying:
            self.kept.append(self.last)

    def start(self, y0) -> None:
        self.kept, self.replaying, self.received = [], False, None
        self.rewind(y0)

    def rewind(self, y0) -> None:
        self.jump = torch.zeros_like(y0) if self.continuous and y0 is not None else None

    def carry(self) -> tuple:
        return () if self.jump is None else (self.jump,)

    def load(self, n: int, carry: tuple) -> None:
        self.replaying = True
        if self.continuous:
            (self.jump,) = carry

    def outputs(self) -> tuple:
        return tuple(torch.stack(rows) for rows in zip(*self.kept))

    def step_outputs(self, n: int, grads: tuple) -> tuple[list, list]:
        if n == 0:
            return [], []
        return list(self.last), [g[n - 1] for g in grads]

    def receive(self, outputs: list) -> None:
        self.received = outputs


def replay_adjoint(neuron, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The spikes `[T, ...]` and post-reset potentials `[T, ...]` of a multi-step call of the fractional
    layer `neuron` on `x`, differentiated by the generic discrete adjoint: the forward keeps
    no graph, only each step's potential and history sum, and the backward replays one step at a
    time ([spikede.solvers.adjoint][]).  The input (row by row), the threshold, tau, and the
    order receive their gradients; both outputs carry them."""
    if neuron.coefficients is not None and neuron.coefficients.requires_grad:
        raise ValueError("the replayed adjoint does not learn multi-term coefficients (learn_coefficients=True); "
                         "use adjoint=False")
    steps = x.shape[0]
    inputs = StepInputs(x)
    continuous = neuron.history == "continuous"
    layer = _Replayed(neuron, inputs, neuron.tau.to(x.dtype), neuron.threshold.to(x.dtype), continuous)
    options = neuron._kernel_options()
    coefficients = None if neuron.coefficients is None else neuron.coefficients.detach()

    def build(start: torch.Tensor, orders: list, kernel: bool = True):
        scheme = neuron._scheme_for_alpha(start, steps, orders[0], coefficients, func=layer.rhs)
        return scheme.problem, scheme, make_kernel(scheme, steps, start, neuron.memory, **options) if kernel else None

    params = [p for p in (neuron.threshold, neuron.log_tau) if p is not None and p.requires_grad]
    v0 = x.new_full(x.shape[1:], neuron.v_rest)
    states = DiscreteAdjoint(params=params, inputs=inputs).solve(layer.rhs, build, v0, [neuron.alpha], neuron.memory,
                                                                 options, 1, event=layer)
    return layer.received[0], (layer.received[1] if continuous else states[1:])
