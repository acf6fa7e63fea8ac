r"""Discrete adjoint of `fdeint`: exact gradients of the discrete scheme.

Every scheme is a step `y_n = step(y_{n-1}, H_n)` with `H_n = sum_j W_j u_{n-j}`
and a stored `u_n = stored(y_n, y_{n-1}, f_n)`.  The forward pass runs without a graph
and keeps the states `y_n` and history sums `H_n` (or, with `checkpoint_every=k`, the
state, `f` and a snapshot of the memory kernel every `k` steps, from which the backward
pass solves each stretch again before sweeping it).  The backward pass runs
`n = N .. 1` and, with autograd on *one* step at a time, takes the vector-Jacobian
product of `(y_{n-1}, H_n) -> (y_n, u_n)` with the cotangents

$$
\bar y_n = \partial L/\partial y_n + (\text{from step } n+1), \qquad
\bar u_n = \sum_c \sum_{j \ge 1} W_{c,j}\, \bar H_c(n + j),
$$

the second being the history convolution transposed: the same memory kernel (full,
window or soe) fed with `\bar H` in reverse time.  `y0`, `f_0 = f(t_0, y_0)` (PECE),
the parameters of `func` and `alpha` (through the step coefficients, and through the
weights by `\bar W_{c,j} = sum_n <\bar H_c(n), u_{n-j}>`) collect their gradients along
the way.  No graph of the whole solve is ever built.

An event (the threshold-and-reset layer of a hybrid solve, [spikede.solvers.hybrid][]) joins
the step: `y_n = event(step(y_{n-1}, H_n); e_{n-1})` with `e_n` the event's own state between
steps (e.g. the jumps so far and the last value of the spiking variable).  The forward pass
keeps every `e_n`; the reverse pass replays each step with the event loaded at `e_{n-1}`, so
the cotangents of `e_n`, of the event's outputs (spikes, spike times, post-reset states) and
of `y_n` flow through one vector-Jacobian product per step, as for the scheme alone.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, runtime_checkable

import torch

from .convolution import lag_correlation
from .engine import begin, check_finite, march, step_threads
from .memory import make_kernel

__all__ = ["DiscreteAdjoint", "ReplayableEvent", "StepInputs", "lag_gradient"]

LAG_FFT_MIN_STEPS = 1024  # from here on the weights' gradient is an FFT correlation (it overtook the product near 800)


@runtime_checkable
class ReplayableEvent(Protocol):
    """An event of the step loop that the discrete adjoint can replay: the one seam of the spiking
    models.  The step loop (`spikede.solvers.engine.march`) calls `event(t_n, y_n)` after every step
    and keeps what it returns; the adjoint's forward records `carry()` after every step, and its
    reverse sweep replays step `n` with the state after step `n - 1` loaded (`load`), so that one
    vector-Jacobian product per step covers the event too.  The hybrid solves' event
    (`spikede.solvers.hybrid`) and the layers' steps (`spikede.layer_loop`) implement it.
    """

    def __call__(self, t_n: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loop's state after step `n`'s event, from the state the scheme proposed."""

    def start(self, y0: torch.Tensor) -> None:
        """Begin a solve from `y0`: nothing recorded yet."""

    def rewind(self, y0: torch.Tensor) -> None:
        """The event's state at `t_0` from `y0` (what it recorded is kept)."""

    def carry(self) -> tuple:
        """The event's state between steps (tensors or `None`; floating ones are differentiated)."""

    def load(self, n: int, carry: tuple) -> None:
        """Set the event to its state after step `n` (to replay step `n + 1` without recording it)."""

    def outputs(self) -> tuple:
        """What the solve recorded, as tensors (the adjoint returns them with its backward)."""

    def step_outputs(self, n: int, grads: tuple) -> tuple[list, list]:
        """The outputs the latest (replayed) step `n` gave, and their cotangents taken from `grads`."""

    def receive(self, outputs: list) -> None:
        """The recorded outputs as the adjoint hands them back, with its backward attached."""


class StepInputs:
    """A sequence `[T, ...]` that `func` reads one row at a time, `inputs[k]` (the input currents
    of a layer, say), and whose gradient the discrete adjoint gives row by row.

    Named in `DiscreteAdjoint(inputs=...)`, each replayed step differentiates only the rows it
    read: `O(1)` rows per step, where the whole sequence in `params` would cost `O(T)` per step.
    Outside that replay `inputs[k]` is row `k` of `sequence.unbind(0)`, so autograd through a
    solve that reads it also stays `O(T)` in all.

    Args:
        sequence: the rows, `[T, ...]`, a tensor of at least one dimension.
    """

    def __init__(self, sequence: torch.Tensor):
        if not isinstance(sequence, torch.Tensor) or sequence.dim() < 1:
            raise TypeError(f"sequence must be a tensor [T, ...] of at least one dimension, got {sequence!r}")
        self.sequence = sequence
        self._rows = sequence.unbind(0)
        self._leaves: dict | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, k: int) -> torch.Tensor:
        if self._leaves is None:
            return self._rows[k]
        leaf = self._leaves.get(k)
        if leaf is None:
            leaf = self._leaves[k] = self._rows[k].detach().requires_grad_(True)
        return leaf

    @contextmanager
    def recording(self):
        """Inside, each row read is a fresh leaf; yields the dict `{k: leaf}` of the rows read."""
        self._leaves = {}
        try:
            yield self._leaves
        finally:
            self._leaves = None


class _ChannelWeights:
    """One weight channel of a scheme, one lag longer (a zero: that lag meets `x_0 = 0`),
    as `make_kernel` wants it for the reverse sweep."""

    def __init__(self, scheme, channel: int):
        row = scheme.weights[channel : channel + 1].detach()
        self.weights = torch.cat([row, row.new_zeros(*row.shape[:-1], 1)], -1)
        self._scheme, self._channel = scheme, channel

    def sequence_terms(self):  # asked for by memory='soe' only (one order for the whole state)
        return [self._scheme.sequence_terms()[self._channel]]


class _Adjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, setup, y0, *inputs):
        with step_threads(y0):
            return _Adjoint._forward(ctx, setup, y0, *inputs)

    @staticmethod
    def backward(ctx, grad_states, *grad_events):
        with step_threads(grad_states[0]):
            return _Adjoint._backward(ctx, grad_states, grad_events)

    @staticmethod
    def _forward(ctx, setup, y0, *inputs):
        every, save_every, event = setup.checkpoint_every, setup.save_every, setup.event
        with torch.no_grad():
            problem, scheme, kernel = setup.build(y0.detach(), [a.detach() if isinstance(a, torch.Tensor) else a
                                                                   for a in setup.alphas])
            n_steps = problem.n_steps
            if event is not None:
                event.start(y0.detach())
            carries = None if event is None else [event.carry()]
            y, f = begin(problem, scheme, kernel)
            # written in place as the steps come: a list stacked at the end would hold both at once
            states = y.new_empty(n_steps // save_every + 1 + (n_steps % save_every != 0), *y.shape)
            states[0] = y
            histories = []  # becomes one tensor [n_steps, ...] at the first step (without checkpoints)

            def keep(n, y_n, history):  # every history sum, or (checkpointing) what restarts the solve
                if every is None:
                    if not histories:
                        histories.append(history.new_empty(n_steps, *history.shape))
                    histories[0][n - 1] = history
                if n % save_every == 0 or n == n_steps:
                    states[-(-n // save_every)] = y_n
                if carries is not None:
                    carries.append(event.carry())

            checkpoints = None if every is None else [(0, kernel.snapshot(), y, f)]
            stretch = every or n_steps
            for a in range(0, n_steps, stretch):
                b = min(a + stretch, n_steps)
                y, f = march(problem, scheme, kernel, y, f, a + 1, b, keep, event)
                if checkpoints is not None and b < n_steps:
                    checkpoints.append((b, kernel.snapshot(), y, f))
            ctx.checkpoints = checkpoints
            ctx.solver = None if checkpoints is None else (problem, scheme, kernel)  # the kernel restarts stretches
            outputs = () if event is None else event.outputs()
        check_finite(states, save_every, n_steps)
        ctx.setup, ctx.carries = setup, carries
        ctx.save_for_backward(y0, states, histories[0] if histories else None, *inputs)
        return (states, *outputs) if event is not None else states

    @staticmethod
    def _segments(ctx, states, histories):
        """`(a, b, [y_a .. y_b], [H_{a+1} .. H_b])` for the stretches of steps, last first;
        with checkpoints each stretch is solved again from its checkpoint."""
        if ctx.checkpoints is None:
            yield 0, states.shape[0] - 1, states, histories
            return
        problem, scheme, kernel = ctx.solver
        ends = [c[0] for c in ctx.checkpoints[1:]] + [problem.n_steps]
        for (a, snapshot, y, f), b in reversed(list(zip(ctx.checkpoints, ends))):
            kernel.restore(snapshot)
            ys, hs = [y], []

            def keep(n, y_n, history):
                ys.append(y_n)
                hs.append(history)

            with torch.no_grad():
                march(problem, scheme, kernel, y, f, a + 1, b, keep)
            yield a, b, ys, hs

    @staticmethod
    def _backward(ctx, grad_states, grad_events):
        setup, event = ctx.setup, ctx.setup.event
        y0, states, histories, *inputs = ctx.saved_tensors
        save_every = setup.save_every
        n_alpha = setup.n_alpha_inputs
        alpha_inputs, params = inputs[:n_alpha], inputs[n_alpha:]
        with torch.enable_grad():
            y0_leaf = y0.detach().requires_grad_(True)
            alpha_leaves = [a.detach().requires_grad_(True) for a in alpha_inputs]
            it = iter(alpha_leaves)
            alphas = [next(it) if isinstance(a, torch.Tensor) and a.requires_grad else a for a in setup.alphas]
            problem, scheme, _ = setup.build(y0_leaf, alphas, kernel=False)
            f0 = f0_leaf = None
            f0_reads: dict = {}
            if scheme.stores_rhs:
                with _reading(setup) as f0_reads:
                    f0 = problem.rhs(problem.t[0], y0_leaf)
                f0_leaf = f0.detach().requires_grad_(True)
                scheme.first_stored(y0_leaf, f0_leaf)
        n_steps = problem.n_steps

        def grad_at(n: int) -> torch.Tensor | None:
            if n % save_every == 0:
                return grad_states[n // save_every]
            return grad_states[-1] if n == n_steps else None

        channels = scheme.weights.shape[0]
        reverse = [make_kernel(_ChannelWeights(scheme, c), n_steps + 1, y0, setup.memory, **setup.kernel_options)
                   for c in range(channels)]
        for k in reverse:
            k.append(torch.zeros_like(y0))
        g_sequence = None  # the gradient of the StepInputs' sequence, if the solve reads one
        if setup.step_inputs is not None:
            params, sequence = params[:-1], params[-1]
            g_sequence = torch.zeros_like(sequence)
        leaves = [y0_leaf] + ([f0_leaf] if f0_leaf is not None else []) + alpha_leaves + list(params)
        totals = [torch.zeros_like(x) for x in leaves]
        carry = torch.zeros_like(y0)
        g_event = None  # the cotangent of the event's state after the step being swept
        grad_hist, stored = [], []  # for alpha's weights only
        for a, b, ys, hs in _Adjoint._segments(ctx, states, histories):
            for n in range(b, a, -1):
                g_u = sum(k.read(n_steps + 1 - n)[0] for k in reverse)
                given = grad_at(n)
                with torch.enable_grad(), _reading(setup) as reads:
                    y_prev = ys[n - 1 - a].detach().requires_grad_(True)
                    history = hs[n - 1 - a].detach().requires_grad_(True)
                    event_leaves = [] if event is None else _event_leaves(event, n - 1, ctx.carries[n - 1])
                    f_prev = problem.rhs(problem.t[n - 1], y_prev) if scheme.needs_f_prev else None
                    y = scheme.step(n, y_prev, history, f_prev)
                    if event is not None:
                        y = event(problem.t[n], y)
                    outputs, cotangents = [y], [carry if given is None else given + carry]
                    if n < n_steps:
                        f = problem.rhs(problem.t[n], y) if scheme.stores_rhs else None
                        u = scheme.stored(y, y_prev, f)
                        outputs.append(u)
                        cotangents.append(g_u)
                        if alpha_leaves:
                            stored.append(u.detach())
                    if event is not None:
                        _add_event_terms(event, n, grad_events, g_event, outputs, cotangents)
                    outputs, cotangents = _differentiable(outputs, cotangents)
                    rows_read = list(reads.items())
                    grads = torch.autograd.grad(outputs, [y_prev, history] + event_leaves + leaves +
                                                [leaf for _, leaf in rows_read], cotangents,
                                                allow_unused=True, retain_graph=True)  # alpha's coefficients are shared
                carry = grads[0] if grads[0] is not None else torch.zeros_like(y0)
                g_history = grads[1] if grads[1] is not None else torch.zeros_like(history)
                g_event = grads[2 : 2 + len(event_leaves)]
                first_leaf = 2 + len(event_leaves)
                for i, g in enumerate(grads[first_leaf : first_leaf + len(leaves)]):
                    if g is not None:
                        totals[i] = totals[i] + g
                _add_rows(g_sequence, rows_read, grads[first_leaf + len(leaves) :])
                if alpha_leaves:
                    grad_hist.append(g_history)
                for c, k in enumerate(reverse):
                    k.append(g_history[c])
        g_u0 = sum(k.read(n_steps + 1)[0] for k in reverse)
        g_y0 = totals[0] + carry + grad_states[0]
        if event is not None:  # the event's state and outputs at t_0 come from y_0
            with torch.enable_grad():
                event.rewind(y0_leaf)
                outputs, cotangents = [], []
                _add_event_terms(event, 0, grad_events, g_event, outputs, cotangents)
                outputs, cotangents = _differentiable(outputs, cotangents)
                if outputs:
                    g_start = torch.autograd.grad(outputs, y0_leaf, cotangents, allow_unused=True)[0]
                    g_y0 = g_y0 + (g_start if g_start is not None else 0)
        offset = 1
        with torch.enable_grad():
            u0 = scheme.first_stored(y0_leaf, f0_leaf)
        if f0_leaf is not None:
            g_f0 = totals[1]
            if u0.requires_grad:  # u_0 = f_0 for the schemes that store f (0 for implicit pred)
                g_f0 = g_f0 + torch.autograd.grad(u0, f0_leaf, g_u0)[0]
            offset = 2
            rows_read = list(f0_reads.items())
            targets = [y0_leaf] + list(params) + [leaf for _, leaf in rows_read]
            extra = torch.autograd.grad(f0, targets, g_f0, allow_unused=True)
            g_y0 = g_y0 + (extra[0] if extra[0] is not None else 0)
            for i, g in enumerate(extra[1 : 1 + len(params)]):
                if g is not None:
                    totals[offset + len(alpha_leaves) + i] = totals[offset + len(alpha_leaves) + i] + g
            _add_rows(g_sequence, rows_read, extra[1 + len(params) :])
        g_alphas = totals[offset : offset + len(alpha_leaves)]
        if alpha_leaves:
            g_alphas = _add_weight_gradient(scheme, alpha_leaves, g_alphas, grad_hist[::-1],
                                            [u0.detach()] + stored[::-1], setup.window)
        g_params = totals[offset + len(alpha_leaves) :]
        if g_sequence is not None:
            g_params = [*g_params, g_sequence]
        return (None, g_y0, *g_alphas, *g_params)


def _reading(setup):
    """While a step is replayed: the rows of the solve's `StepInputs` it reads, as fresh leaves."""
    return setup.step_inputs.recording() if setup.step_inputs is not None else nullcontext({})


def _add_rows(g_sequence: torch.Tensor, rows_read: list, grads) -> None:
    """Add the gradients of the rows a step read (`(k, leaf)` pairs, in order) into their rows."""
    for (k, _), g in zip(rows_read, grads):
        if g is not None:
            g_sequence[k] += g


def _event_leaves(event, n: int, carry: tuple) -> list[torch.Tensor]:
    """Load the event's state after step `n` as fresh leaves; the leaves of its differentiable entries."""
    leaves = [c.detach().requires_grad_(True) if c is not None and c.is_floating_point() else c for c in carry]
    event.load(n, tuple(leaves))
    return [c for c in leaves if c is not None and c.requires_grad]


def _add_event_terms(event, n: int, grad_events: tuple, g_event, outputs: list, cotangents: list) -> None:
    """Append the event's state after step `n` (with the cotangent `g_event` swept back from step
    `n + 1`) and the event's outputs at step `n` (with their cotangents) to the step's VJP."""
    if g_event is not None:
        state = [c for c in event.carry() if c is not None and c.is_floating_point()]
        for value, g in zip(state, g_event):
            if g is not None:
                outputs.append(value)
                cotangents.append(g)
    more, more_cotangents = event.step_outputs(n, grad_events)
    outputs.extend(more)
    cotangents.extend(more_cotangents)


def _differentiable(outputs: list, cotangents: list) -> tuple[list, list]:
    """The `(output, cotangent)` pairs whose output carries a graph."""
    pairs = [(o, c) for o, c in zip(outputs, cotangents) if o.requires_grad]
    return [o for o, _ in pairs], [c for _, c in pairs]


def lag_gradient(grad_history: torch.Tensor, rows: torch.Tensor, n_weights: int, window: int | None) -> torch.Tensor:
    """`gW[c, j] = sum_n <gH_c(n), u_{n-j}>` for lags `j = 1 ..` (0 beyond `window`): `[C, n_weights]`.

    `grad_history`: `[N, C, S]` gradients of the history sums `H_1 .. H_N`;
    `rows`: `[N, S]` the stored `u_0 .. u_{N-1}`.  From `LAG_FFT_MIN_STEPS` steps on, one FFT
    correlation per channel (`spikede.solvers.convolution.lag_correlation`, `O(S N log N)`);
    below, one matrix product per channel."""
    steps, channels = grad_history.shape[:2]
    g_weights = rows.new_zeros(channels, n_weights)
    lags = min(steps, n_weights - 1)
    if steps >= LAG_FFT_MIN_STEPS:
        for c in range(channels):  # gH_c(n) is row n - 1: lag j = 1 + (row shift)
            g_weights[c, 1 : lags + 1] = lag_correlation(grad_history[:, c].reshape(steps, -1), rows)[:lags]
    else:
        n = torch.arange(1, steps + 1, device=rows.device)[:, None]
        k = torch.arange(steps, device=rows.device)[None, :]
        lag = (n - k).expand(steps, steps)
        keep = (lag >= 1) & (lag < n_weights)
        for c in range(channels):
            correlation = grad_history[:, c].reshape(steps, -1) @ rows.t()  # [n - 1, k] = <gH_c(n), u_k>
            g_weights[c].index_add_(0, lag[keep], correlation[keep])
    if window is not None:
        g_weights[:, window + 1 :] = 0
    return g_weights


def _add_weight_gradient(scheme, alpha_leaves, g_alphas, grad_hist, stored, window):
    """Add `sum_{c,j} gW_{c,j} dW_{c,j}/dalpha` (see `lag_gradient`); per-component weights
    (`[C, d, N + 1]`, one order per entry of the state's last axis) pair each entry only with itself."""
    steps, weights = len(grad_hist), scheme.weights
    g_h, rows = torch.stack(grad_hist), torch.stack(stored[:steps])  # [N, C, *shape], [N, *shape]
    if weights.dim() == 2:
        g_weights = lag_gradient(g_h.reshape(steps, weights.shape[0], -1), rows.reshape(steps, -1), weights.shape[1],
                                 window)
    else:
        g_weights = torch.stack([lag_gradient(g_h[..., q].reshape(steps, weights.shape[0], -1),
                                              rows[..., q].reshape(steps, -1), weights.shape[-1], window)
                                 for q in range(weights.shape[1])], 1)
    g_weights = g_weights.to(weights.dtype)
    extra = torch.autograd.grad(scheme.weights, alpha_leaves, g_weights, allow_unused=True)
    return [a + (e if e is not None else 0) for a, e in zip(g_alphas, extra)]


@dataclass(frozen=True)
class _Solve:
    """What the adjoint Function needs of one `fdeint` call (built by `DiscreteAdjoint.solve`)."""

    build: Callable
    alphas: list
    memory: int | str | None
    kernel_options: dict
    save_every: int
    checkpoint_every: int | None
    n_alpha_inputs: int
    event: object | None = None
    step_inputs: StepInputs | None = None  # its sequence is the last input of the Function

    @property
    def window(self) -> int | None:
        return self.memory if isinstance(self.memory, int) else None


@dataclass(frozen=True)
class DiscreteAdjoint:
    """Gradients of [fdeint][spikede.solvers.fdeint.fdeint] by the discrete adjoint: pass
    `fdeint(..., adjoint=DiscreteAdjoint(...))` (`adjoint=True` is `DiscreteAdjoint()`).

    Args:
        checkpoint_every: keep the solver's state only every `k` steps (the state, `f` and a
            snapshot of the memory kernel) instead of every history sum; the backward pass
            solves each stretch again from its checkpoint before sweeping it in reverse (about
            one more forward solve in time).  `None`: keep every history sum.
        params: the tensors `func` depends on that should receive gradients (default: the
            parameters of `func` if it is an `nn.Module`, else none).
        inputs: a [StepInputs][spikede.solvers.adjoint.StepInputs] that `func` reads a row at a
            time; its sequence receives its gradient row by row.
    """

    checkpoint_every: int | None = None
    params: Sequence[torch.Tensor] | None = None
    inputs: StepInputs | None = None

    def __post_init__(self) -> None:
        every = self.checkpoint_every
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ValueError(f"checkpoint_every must be None or a positive int, got {every!r}")
        if self.inputs is not None and not isinstance(self.inputs, StepInputs):
            raise TypeError(f"inputs must be a StepInputs (the rows func reads one at a time), got "
                            f"{type(self.inputs).__name__}")

    def solve(self, func, build, y0: torch.Tensor, alphas: list, memory, kernel_options: dict,
              save_every: int, event=None) -> torch.Tensor:
        """The states of the solve that `build(y0, alphas)` sets up, with this adjoint's backward.

        An `event` must be a [ReplayableEvent][spikede.solvers.adjoint.ReplayableEvent]; its
        `receive(outputs)` is handed the event's outputs with this adjoint's backward."""
        if event is not None and not isinstance(event, ReplayableEvent):
            raise TypeError(f"event must be a ReplayableEvent (start, rewind, carry, load, outputs, step_outputs, "
                            f"receive) for the discrete adjoint, got {type(event).__name__}")
        if event is not None and self.checkpoint_every is not None:
            raise ValueError("checkpoint_every= is not available with events (a hybrid solve keeps every step's "
                             "state for the reverse sweep); use DiscreteAdjoint() without it")
        if save_every != 1 and self.checkpoint_every is None:
            raise ValueError(
                f"the adjoint with save_every={save_every} needs checkpoint_every= (the states between the saved "
                "ones are then recomputed); without it the reverse sweep uses every state, so save_every must be 1"
            )
        params = self.params
        if params is None:
            params = list(func.parameters()) if isinstance(func, torch.nn.Module) else []
        params = [p for p in params if isinstance(p, torch.Tensor) and p.requires_grad]
        alpha_inputs = [a for a in alphas if isinstance(a, torch.Tensor) and a.requires_grad]
        step_inputs = self.inputs if self.inputs is not None and self.inputs.sequence.requires_grad else None
        setup = _Solve(build, alphas, memory, kernel_options, save_every, self.checkpoint_every, len(alpha_inputs),
                       event, step_inputs)
        sequence = [] if step_inputs is None else [step_inputs.sequence]
        result = _Adjoint.apply(setup, y0, *alpha_inputs, *params, *sequence)
        if event is None:
            return result
        states, *outputs = result
        event.receive(outputs)
        return states
