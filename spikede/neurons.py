r"""Spiking neurons: fractional and integer-order leaky integrate-and-fire layers.

A fractional LIF neuron obeys (Teka, Marinov & Santamaria, PLoS Comput. Biol. 10(3) e1003526, 2014)

.. math::

    \tau\, D^\alpha v = -(v - v_{rest}) + I(t), \qquad v(0) = v_{rest},

with the event layer (:mod:`spikede.events`) after every step.  In the
discrete-time SNN convention the step that produces ``v_n`` uses the input
``I_n``.  With Grünwald–Letnikov (``method='gl'``) that is

.. math::

    v_n = v_{rest} + \frac{dt^\alpha}{\tau}\bigl(-(v_{n-1} - v_{rest}) + I_n\bigr)
          - \sum_{j=1}^{n} g_j (v_{n-j} - v_{rest}),

then ``s_n = H(v_n - theta)`` and the reset; the post-reset potential enters the
history, so the kernel remembers every reset.  For ``alpha = 1`` this is
``v_n = v_{n-1} + dt/tau (-(v_{n-1} - v_rest) + I_n)``: :class:`LIFNeuron`, which
keeps no history.  ``IF`` variants drop the leak: ``tau D^alpha v = I``.

The step is the solver's own (:mod:`spikede.solvers.schemes`) over the solver's
memory kernel (:class:`~spikede.solvers.HistoryKernel`); no weights or history sums
are duplicated here.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace

import torch
from torch import nn

from .events import EventParams, apply_events
from .solvers.adjoint import lag_gradient
from .solvers.fdeint import Problem
from .solvers.memory import HistoryKernel, check_memory, make_kernel
from .solvers.schemes import SCHEMES
from .surrogate import Surrogate, check_scale

__all__ = ["LIFNeuron", "IFNeuron", "FractionalLIF", "FractionalIF", "SpikingNeuron", "NEURON_METHODS"]

NEURON_METHODS = ("gl", "l1")
STEP_MODES = ("multi", "single")
_INITIAL_CAPACITY = 64
_SOE_SINGLE_STEP_HORIZON = 2**20
_SOE_KERNEL_OPTIONS = {"soe_first_lag": 16, "block": 16}


def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class LIFState:
    """State of an integer-order layer: the potential."""

    v: torch.Tensor

    @property
    def shape(self) -> torch.Size:
        return self.v.shape


@dataclass
class FractionalState:
    """State of a fractional layer: the potential, the step count and the solver's history."""

    v: torch.Tensor
    n: int
    kernel: HistoryKernel
    scheme: object

    @property
    def shape(self) -> torch.Size:
        return self.v.shape


class SpikingNeuron(nn.Module, ABC):
    """Shared machinery of the neuron layers: parameters, event layer, step modes, state.

    Subclasses implement :meth:`_start` (a fresh state for a given horizon) and
    :meth:`_step` (one time step: input current -> proposed potential).

    ``step_mode='multi'``: input ``[T, B, ...]``, output spikes ``[T, B, ...]``; each
    call is a new sequence starting at rest.  ``step_mode='single'``: input
    ``[B, ...]``; the state (potential and, for fractional neurons, the history) is
    kept between calls until :meth:`reset` (or :func:`spikede.reset`).
    ``record=True`` keeps the post-reset potential of the last call in ``self.membrane``.
    """

    def __init__(
        self,
        tau: float,
        threshold: float,
        v_rest: float,
        surrogate: str,
        surrogate_scale: float | None,
        dt: float,
        reset: str,
        v_reset: float,
        detach_reset: bool,
        learn_tau: bool,
        learn_threshold: bool,
        step_mode: str,
        record: bool,
        leak: bool,
    ):
        super().__init__()
        if step_mode not in STEP_MODES:
            raise ValueError(f"unknown step_mode {step_mode!r}; valid step modes are 'multi', 'single'")
        self.events = EventParams(reset=reset, v_reset=_real(v_reset, "v_reset"), detach_reset=detach_reset)
        if isinstance(surrogate, Surrogate):
            if surrogate_scale is not None:
                raise ValueError(
                    f"surrogate_scale must be None when surrogate is a Surrogate module (it has scale {surrogate.scale})"
                )
            self.surrogate = surrogate
        else:
            self.surrogate = Surrogate(surrogate, surrogate_scale)
        self.dt = check_scale(dt, "dt")
        self.v_rest = _real(v_rest, "v_rest")
        self.leak = leak
        self.step_mode = step_mode
        self.record = bool(record)
        tau = check_scale(tau, "tau")
        if learn_tau:
            self.log_tau = nn.Parameter(torch.tensor(math.log(tau)))
        else:
            self.register_buffer("log_tau", torch.tensor(math.log(tau)))
        threshold = _real(threshold, "threshold")
        if learn_threshold:
            self.threshold = nn.Parameter(torch.tensor(threshold))
        else:
            self.register_buffer("threshold", torch.tensor(threshold))
        self.membrane: torch.Tensor | None = None
        self._state = None

    @property
    def tau(self) -> torch.Tensor:
        """``tau = exp(log_tau)`` (always > 0, learnable with ``learn_tau=True``)."""
        return self.log_tau.exp()

    def reset(self) -> None:
        """Forget the single-step state (potential, history) and the recorded membrane."""
        self._state = None
        self.membrane = None

    def _drive(self, v: torch.Tensor, current: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """``(-(v - v_rest) + I) / tau`` (leaky) or ``I / tau`` (IF)."""
        if self.leak:
            return (current - (v - self.v_rest)) / tau
        return current / tau

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"input must be a floating-point tensor, got {x!r:.80}")
        if self.step_mode == "multi":
            if x.dim() < 2:
                raise ValueError(
                    f"step_mode='multi' expects input [T, B, ...] (at least 2-D), got shape {tuple(x.shape)}; "
                    "use step_mode='single' for one time step [B, ...]"
                )
            state = self._start(x[0], x.shape[0])
            spikes, state = self._run(x.unbind(0), state)
            return torch.stack(spikes)
        if x.dim() < 1:
            raise ValueError(f"step_mode='single' expects input [B, ...] (at least 1-D), got a 0-d tensor")
        if self._state is not None and self._state.shape != x.shape:
            raise ValueError(
                f"input shape {tuple(x.shape)} differs from the state shape {tuple(self._state.shape)} kept "
                "from earlier single steps; call spikede.reset(model) (or neuron.reset()) between sequences"
            )
        state = self._state if self._state is not None else self._start(x, _INITIAL_CAPACITY)
        spikes, self._state = self._run((x,), state, keep_membrane=self.membrane)
        return spikes[0]

    def _run(self, currents, state, keep_membrane=None):
        tau, threshold = self.tau.to(state.v.dtype), self.threshold.to(state.v.dtype)
        spikes, trace = [], []
        for current in currents:
            proposed = self._step(state, current, tau)
            s, v = apply_events(proposed, threshold, self.surrogate, self.events)
            state = self._commit(state, v)
            spikes.append(s)
            if self.record:
                trace.append(v)
        if self.record:
            new = torch.stack(trace)
            self.membrane = new if keep_membrane is None else torch.cat([keep_membrane, new])
        return spikes, state

    @abstractmethod
    def _start(self, template: torch.Tensor, horizon: int):
        """A state at rest shaped like ``template``, for ``horizon`` steps (a hint for single steps)."""

    @abstractmethod
    def _step(self, state, current: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """The proposed potential of the next step, before the event layer."""

    @abstractmethod
    def _commit(self, state, v: torch.Tensor):
        """The state after the step, with the post-reset potential ``v``."""

    def extra_repr(self) -> str:
        return (
            f"tau={self.tau.item():.4g}, threshold={self.threshold.item():.4g}, v_rest={self.v_rest}, "
            f"dt={self.dt}, reset={self.events.reset!r}, surrogate={self.surrogate.name!r}, step_mode={self.step_mode!r}"
        )


class LIFNeuron(SpikingNeuron):
    """Integer-order leaky integrate-and-fire: ``v_n = v_{n-1} + dt/tau (-(v_{n-1} - v_rest) + I_n)``.

    No history is kept (forward Euler; SpikingJelly's LIF with ``decay_input=True``).
    Parameters as in :class:`FractionalLIF` (there is no ``alpha``).
    """

    def __init__(
        self,
        tau: float = 2.0,
        threshold: float = 1.0,
        v_rest: float = 0.0,
        surrogate: str = "sigmoid",
        surrogate_scale: float | None = None,
        dt: float = 1.0,
        reset: str = "subtract",
        v_reset: float = 0.0,
        detach_reset: bool = False,
        learn_tau: bool = False,
        learn_threshold: bool = False,
        step_mode: str = "multi",
        record: bool = False,
    ):
        super().__init__(
            tau, threshold, v_rest, surrogate, surrogate_scale, dt, reset, v_reset, detach_reset,
            learn_tau, learn_threshold, step_mode, record, leak=self._leaky,
        )

    _leaky = True

    def _start(self, template, horizon):
        return LIFState(torch.full_like(template, self.v_rest))

    def _step(self, state, current, tau):
        return state.v + self.dt * self._drive(state.v, current, tau)

    def _commit(self, state, v):
        return LIFState(v)


class IFNeuron(LIFNeuron):
    """Integer-order integrate-and-fire (no leak): ``v_n = v_{n-1} + dt/tau I_n`` (``tau`` defaults to 1)."""

    _leaky = False

    def __init__(self, tau: float = 1.0, threshold: float = 1.0, **kwargs):
        super().__init__(tau=tau, threshold=threshold, **kwargs)


class FractionalLIF(SpikingNeuron):
    """Fractional-order leaky integrate-and-fire: ``tau D^alpha v = -(v - v_rest) + I`` (Caputo).

    Args:
        alpha: order in (0, 1]; ``alpha = 1`` reproduces :class:`LIFNeuron`.
        tau: time constant (units of time^alpha), > 0.
        threshold: firing threshold ``theta``.
        v_rest: resting potential, also the initial potential.
        surrogate: spike function by name, or a :class:`~spikede.surrogate.Surrogate` module.
        surrogate_scale: the surrogate's hyper-parameter (``None``: its default).
        method: ``'gl'`` (Grünwald–Letnikov) or ``'l1'``: the schemes whose history is the
            potential itself, so that resets are remembered.
        memory: ``None`` (full history), an int window of lags, or ``'soe'`` (sum of
            exponentials, O(1) per step; single-step runs up to 2^20 steps).
        dt: time step.
        reset: ``'subtract'``, ``'zero'`` or ``'none'`` (see :mod:`spikede.events`).
        v_reset: the potential after a ``'zero'`` reset.
        detach_reset: stop gradients through the reset path.
        learn_alpha: learn ``alpha = sigmoid(a)`` (stays in (0, 1); needs ``alpha < 1``).
        learn_tau: learn ``tau = exp(b)``.
        learn_threshold: learn the threshold.
        step_mode: ``'multi'`` (``[T, B, ...]`` per call) or ``'single'`` (``[B, ...]``, stateful).
        record: keep the post-reset potential in ``self.membrane``.
        adjoint: train through the discrete adjoint (one autograd Function over the sequence:
            the forward keeps no graph, the backward is a hand-written reverse sweep through
            the transposed history): the same gradients as autograd; per layer it keeps the
            history rows and the spikes as bits, about 0.6 of autograd's live tensors and a
            third of its resident memory on CPU (``benchmarks/adjoint.py``).  ``None``
            (default): the adjoint wherever it applies, i.e. in ``'multi'`` step mode with a
            deterministic spike and ``record=False`` (a recorded membrane keeps its autograd
            graph); ``True``: always (errors where it cannot apply; the recorded membrane is
            then detached); ``False``: plain autograd.
    """

    _leaky = True

    def __init__(
        self,
        alpha: float = 0.8,
        tau: float = 2.0,
        threshold: float = 1.0,
        v_rest: float = 0.0,
        surrogate: str = "sigmoid",
        surrogate_scale: float | None = None,
        method: str = "gl",
        memory: int | str | None = None,
        dt: float = 1.0,
        reset: str = "subtract",
        v_reset: float = 0.0,
        detach_reset: bool = False,
        learn_alpha: bool = False,
        learn_tau: bool = False,
        learn_threshold: bool = False,
        step_mode: str = "multi",
        record: bool = False,
        adjoint: bool | None = None,
    ):
        super().__init__(
            tau, threshold, v_rest, surrogate, surrogate_scale, dt, reset, v_reset, detach_reset,
            learn_tau, learn_threshold, step_mode, record, leak=self._leaky,
        )
        if adjoint is not None and not isinstance(adjoint, bool):
            raise TypeError(f"adjoint must be None (automatic), True or False, got {adjoint!r}")
        if adjoint and step_mode != "multi":
            raise ValueError("adjoint=True needs step_mode='multi' (the reverse sweep runs over a whole sequence)")
        self.adjoint = adjoint
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
            raise TypeError(f"alpha must be a number in (0, 1], got {type(alpha).__name__}: {alpha!r}")
        alpha = float(alpha)
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must satisfy 0 < alpha <= 1, got {alpha}")
        if method not in NEURON_METHODS:
            raise ValueError(
                f"unknown method {method!r} for a spiking neuron; valid methods are {', '.join(map(repr, NEURON_METHODS))} "
                "(schemes whose history is the potential, so that resets are remembered)"
            )
        self.method = method
        self.memory = check_memory(memory)
        if learn_alpha and self.memory == "soe":
            raise ValueError(
                "memory='soe' compresses the weights of a fixed alpha and cannot learn it; "
                "use learn_alpha=False, or memory=None / an int window"
            )
        if learn_alpha:
            if alpha >= 1.0:
                raise ValueError(
                    "learn_alpha=True needs alpha < 1 (alpha is parametrised as sigmoid(a) in (0, 1)); got alpha=1.0"
                )
            self.alpha_logit = nn.Parameter(torch.tensor(math.log(alpha / (1.0 - alpha))))
        else:
            self.register_buffer("alpha_logit", None)
            self.register_buffer("alpha_fixed", torch.tensor(alpha, dtype=torch.float64))

    @property
    def alpha(self) -> torch.Tensor:
        """The order: ``sigmoid(a)`` if learnable, else the fixed value (0-d tensor)."""
        if self.alpha_logit is not None:
            return torch.sigmoid(self.alpha_logit)
        return self.alpha_fixed

    def uses_adjoint(self) -> bool:
        """Whether a multi-step call with autograd on runs through the discrete adjoint."""
        if self.adjoint is not None:
            return self.adjoint
        random_spike = self.surrogate.spec.stochastic and self.surrogate.training
        return self.step_mode == "multi" and not self.record and not random_spike

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.uses_adjoint() and torch.is_grad_enabled() and isinstance(x, torch.Tensor) and x.dim() >= 2):
            return super().forward(x)
        if self.surrogate.spec.stochastic and self.surrogate.training:
            raise ValueError("adjoint=True needs a deterministic spike; the 'noisy' surrogate is random in training")
        if not x.is_floating_point():
            raise TypeError(f"input must be a floating-point tensor, got dtype {x.dtype}")
        return _AdjointSequence.apply(x, self.threshold, self.log_tau, self.alpha, self)

    def _scheme(self, v0: torch.Tensor, horizon: int):
        return self._scheme_for_alpha(v0, horizon, self.alpha)

    def _scheme_for_alpha(self, v0: torch.Tensor, horizon: int, alpha: torch.Tensor):
        problem = Problem(
            func=None, y0=v0, t=(), h=self.dt, n_steps=horizon,
            window=self.memory if isinstance(self.memory, int) else None,
            corrector_iters=1, newton_tol=0.0, newton_max_iters=1,
        )
        return SCHEMES[self.method](problem, [alpha], [1.0], implicit=False)

    def _kernel_options(self) -> dict:
        """For ``'soe'``: 16 exact lags and blocks of 16 steps.  A layer's state is wide (batch x
        neurons), so a step is bound by memory traffic; these read the fewest rows per step."""
        return _SOE_KERNEL_OPTIONS if self.memory == "soe" else {}

    def _start(self, template, horizon):
        v0 = torch.full_like(template, self.v_rest)
        if self.memory == "soe" and self.step_mode == "single":
            horizon = _SOE_SINGLE_STEP_HORIZON
        scheme = self._scheme(v0, horizon)
        # A single-step history outlives this call, and later steps may need gradients.
        differentiable = torch.is_grad_enabled() or self.step_mode == "single"
        kernel = make_kernel(scheme, horizon, v0, self.memory, differentiable=differentiable, **self._kernel_options())
        kernel.append(scheme.first_stored(v0, None))
        return FractionalState(v0, 0, kernel, scheme)

    def _step(self, state, current, tau):
        n = state.n + 1
        if n > state.kernel.n_steps:  # open-ended single-step run: double the horizon
            horizon = 2 * state.kernel.n_steps
            scheme = self._scheme(state.scheme.problem.y0, horizon)
            state.kernel.extend(scheme.weights, horizon)
            state.scheme = scheme
        history = state.kernel.read(n)
        return state.scheme.step(n, state.v, history, self._drive(state.v, current, tau))

    def _commit(self, state, v):
        state.kernel.append(state.scheme.stored(v, state.v, None))
        return replace(state, v=v, n=state.n + 1)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha.item():.4g}, method={self.method!r}, memory={self.memory}, " + super().extra_repr()


class _AdjointSequence(torch.autograd.Function):
    """Spikes of a multi-step :class:`FractionalLIF` with a discrete-adjoint backward.

    Forward: the ordinary loop without a graph.  Saved are the history's stored rows ``u_n``
    (for ``memory=None`` or a window the kernel's own buffer, so nothing is copied), the
    spikes as bits (:class:`_SpikeBits`), the last potential and, only where it cannot be rebuilt, more:
    the proposed potentials ``p_n`` for the ``'zero'`` reset, the input where ``tau`` or
    ``alpha`` needs the drive.  Backward, for ``n = T .. 1`` the potentials are rebuilt from
    the rows (:meth:`~spikede.solvers.schemes.GrunwaldLetnikov.previous`) and ``p_n`` from
    ``v_n`` and ``s_n`` (``v_n + theta s_n`` for ``'subtract'``, ``v_n`` for ``'none'``);
    with ``g`` the gradients, ``c`` the scheme's step coefficient, ``F_n = drive_n / tau``::

        g_v[n]    += sum_{j>=1} W_j g_H[n + j]            (transposed history, same kernel)
        g_p[n]     = g_s[n] sigma'(p_n - theta) + g_v[n] dv/dp      (p: proposed potential)
        g_theta   += -g_s[n] sigma' + g_v[n] dv/dtheta
        g_H[n]     = -g_p[n];  g_I[n] = c g_p[n] / tau;  g_v[n-1] += -c g_p[n] / tau (+ g_p[n] for l1)

    with ``dv/dp``, ``dv/dtheta`` of the reset (subtract, zero, none; the spike's part is
    dropped with ``detach_reset``), and for ``l1`` (``u_n = v_n - v_{n-1}``) the history term
    moves to ``g_v[n-1]`` with a minus sign.  Since ``g_H[n] = -(tau / c) g_I[n-1]``, the
    transposed history runs over the input gradient itself (a descending kernel writing
    into it), so the sweep keeps no second sequence.  Gradients of ``tau`` and ``c`` are sums
    of the local terms; ``alpha`` enters through ``c`` and the weights,
    ``g_W_j = sum_n <g_H[n], u_{n-j}>``.
    """

    @staticmethod
    def forward(ctx, x, threshold, log_tau, alpha, neuron):
        steps = x.shape[0]
        with torch.no_grad():
            tau, theta = log_tau.exp().to(x.dtype), threshold.to(x.dtype)
            state = neuron._start(x[0], steps)
            rows = None  # the kernel's own rows, unless it keeps only a few ('soe')
            if not isinstance(state.kernel, HistoryKernel):
                rows = x.new_empty(steps + 1, *x.shape[1:])
                rows[0] = state.scheme.first_stored(state.v, None)
            out, spiked = torch.empty_like(x), _SpikeBits(steps, x[0])
            proposed = torch.empty_like(x) if neuron.events.reset == "zero" else None
            membrane = torch.empty_like(x) if neuron.record else None
            for n, current in enumerate(x.unbind(0)):
                p = neuron._step(state, current, tau)
                s, v = apply_events(p, theta, neuron.surrogate, neuron.events)
                if rows is not None:
                    rows[n + 1] = state.scheme.stored(v, state.v, None)
                state = neuron._commit(state, v)
                out[n] = s
                spiked.write(n, s)
                if proposed is not None:
                    proposed[n] = p
                if membrane is not None:
                    membrane[n] = v
            if rows is None:
                rows = state.kernel.stored()
        if membrane is not None:
            neuron.membrane = membrane
        ctx.neuron = neuron
        needs_drive = log_tau.requires_grad or alpha.requires_grad
        drive_input = x if needs_drive else None
        ctx.save_for_backward(rows, spiked.bits, proposed, state.v, drive_input, threshold, log_tau, alpha)
        return out

    @staticmethod
    def backward(ctx, grad_spikes):
        rows, bits, proposed, v_last, x, threshold, log_tau, alpha = ctx.saved_tensors
        neuron = ctx.neuron
        steps, dtype = bits.shape[0], rows.dtype
        spiked = _SpikeBits(steps, rows[0], bits)
        rest = torch.full_like(rows[0], neuron.v_rest)
        with torch.enable_grad():
            alpha_ = alpha.detach().requires_grad_(alpha.requires_grad)
            scheme = neuron._scheme_for_alpha(rest, steps, alpha_)
            coef = scheme.step_coef
        tau = log_tau.detach().exp().to(dtype)
        theta = threshold.detach().to(dtype)
        c = coef.detach()
        to_history = -tau / c  # g_H[n] = to_history * g_I[n - 1]
        events, surrogate = neuron.events, neuron.surrogate
        needs_drive = ctx.needs_input_grad[2] or ctx.needs_input_grad[3]

        # g_I[n-1] is row n-1 of the input gradient; row `steps` is the zero the sweep starts from.
        g_rows = rows.new_empty(rows.shape)
        if neuron.memory == "soe":
            kernel = make_kernel(scheme, steps, rest, "soe", **neuron._kernel_options())
        else:
            kernel = HistoryKernel(scheme.weights, steps, rest, window=neuron.memory, storage=g_rows, descending=True)
        kernel.append(torch.zeros_like(rest))
        l1 = neuron.method == "l1"
        g_theta = torch.zeros((), dtype=dtype, device=rows.device)
        g_tau = torch.zeros_like(g_theta)
        g_coef = torch.zeros_like(g_theta)
        carry = torch.zeros_like(rest)  # gradient reaching v_n from later steps
        with torch.no_grad():
            v = v_last
            v_prev = scheme.previous(v, rows, steps)
            for n in range(steps, 0, -1):
                mu = to_history * kernel.read(steps + 1 - n)[0]  # sum_j W_j g_H[n + j]
                g_v = carry + mu
                carry = -mu if l1 else torch.zeros_like(mu)
                s = spiked.read(n - 1)
                if events.reset == "subtract":  # p: the proposed potential, rebuilt or (zero) kept
                    p = v + theta * s
                    dv_dp, dv_ds, dv_dtheta = 1.0, -theta, -s
                elif events.reset == "zero":
                    p = proposed[n - 1]
                    dv_dp, dv_ds, dv_dtheta = 1.0 - s, events.v_reset - p, 0.0
                else:
                    p = v
                    dv_dp, dv_ds, dv_dtheta = 1.0, 0.0, 0.0
                bump = surrogate.derivative(p - theta)
                g_s = grad_spikes[n - 1]
                g_spike = g_s if events.detach_reset else g_s + g_v * dv_ds
                g_p = g_v * dv_dp + g_spike * bump
                g_theta = g_theta - (g_spike * bump).sum() + (g_v * dv_dtheta).sum()
                g_f = c * g_p  # F = drive / tau
                g_input = g_f / tau
                if needs_drive:
                    drive = x[n - 1] - (v_prev - neuron.v_rest) if neuron.leak else x[n - 1]
                    g_tau = g_tau - (g_f * drive).sum() / tau**2
                    g_coef = g_coef + (g_p * drive).sum() / tau
                carry = carry + (g_p if l1 else 0.0) - (g_input if neuron.leak else 0.0)
                kernel.append(g_input)
                if neuron.memory == "soe":
                    g_rows[n - 1] = g_input
                if n > 1:
                    v, v_prev = v_prev, scheme.previous(v_prev, rows, n - 1)
        g_x = g_rows[:steps]
        g_log_tau = g_tau * tau if ctx.needs_input_grad[2] else None
        g_alpha = None
        if ctx.needs_input_grad[3]:
            g_alpha = _alpha_gradient(scheme, alpha_, coef, g_coef, to_history, g_x, rows[:steps], neuron.memory)
        g_threshold = g_theta.to(threshold.dtype) if ctx.needs_input_grad[1] else None
        return g_x, g_threshold, None if g_log_tau is None else g_log_tau.to(log_tau.dtype), g_alpha, None


class _SpikeBits:
    """Binary spike trains kept eight to a byte: ``[T, ceil(m / 8)]`` ``uint8`` for ``T`` steps of
    ``m`` neurons (1/32 of the float32 trains).  ``template``: one step's shape, dtype and device."""

    def __init__(self, steps: int, template: torch.Tensor, bits: torch.Tensor | None = None):
        self.shape, self.dtype, self.size = template.shape, template.dtype, template.numel()
        self.bits = template.new_empty(steps, -(-self.size // 8), dtype=torch.uint8) if bits is None else bits
        self._masks = 2 ** torch.arange(8, device=template.device, dtype=torch.uint8)
        self._weights = self._masks.to(template.dtype)

    def write(self, n: int, spikes: torch.Tensor) -> None:
        """Keep step ``n``'s spikes (exactly 0 or 1)."""
        flat = spikes.reshape(-1)
        if self.size % 8:
            flat = torch.cat([flat, flat.new_zeros(8 - self.size % 8)])
        self.bits[n] = flat.view(-1, 8) @ self._weights

    def read(self, n: int) -> torch.Tensor:
        """Step ``n``'s spikes, 0 or 1 in the template's dtype."""
        flat = (self.bits[n, :, None] & self._masks) != 0
        return flat.reshape(-1)[: self.size].view(self.shape).to(self.dtype)


def _alpha_gradient(scheme, alpha, coef, g_coef, to_history, g_input, rows, window) -> torch.Tensor:
    """``dL/dalpha`` through the step coefficient and the weights (:func:`~spikede.solvers.adjoint.lag_gradient`),
    with ``g_H[n] = to_history * g_input[n - 1]`` and ``rows`` the stored ``u_0 .. u_{T-1}``."""
    steps = g_input.shape[0]
    g_weights = lag_gradient(g_input.reshape(steps, 1, -1), rows.reshape(steps, -1), scheme.weights.shape[1],
                             window if isinstance(window, int) else None)[0]
    with torch.enable_grad():
        weights = scheme.weights[0]
    g_weights = (to_history * g_weights).to(weights.dtype)
    (g_alpha,) = torch.autograd.grad((weights, coef), alpha, (g_weights, g_coef.to(coef.dtype)))
    return g_alpha


class FractionalIF(FractionalLIF):
    """Fractional integrate-and-fire (no leak): ``tau D^alpha v = I`` (``tau`` defaults to 1)."""

    _leaky = False

    def __init__(self, alpha: float = 0.8, tau: float = 1.0, threshold: float = 1.0, **kwargs):
        super().__init__(alpha=alpha, tau=tau, threshold=threshold, **kwargs)
