r"""Spiking neurons: fractional and integer-order leaky integrate-and-fire layers.

A fractional LIF neuron obeys (Teka, Marinov & Santamaria, PLoS Comput. Biol. 10(3) e1003526, 2014)

$$
\tau\, D^\alpha v = -(v - v_{rest}) + I(t), \qquad v(0) = v_{rest},
$$

with the event layer ([spikede.events][]) after every step.  In the discrete-time SNN
convention the step that produces $v_n$ uses the input $I_n$.  With Grünwald–Letnikov
(`method='gl'`) that is

$$
v_n = v_{rest} + \frac{dt^\alpha}{\tau}\bigl(-(v_{n-1} - v_{rest}) + I_n\bigr)
      - \sum_{j=1}^{n} g_j (v_{n-j} - v_{rest}),
$$

then $s_n = H(v_n - \theta)$ and the reset; the post-reset potential enters the
history, so the kernel remembers every reset.  For $\alpha = 1$ this is
$v_n = v_{n-1} + \frac{dt}{\tau}(-(v_{n-1} - v_{rest}) + I_n)$:
[LIFNeuron][spikede.neurons.LIFNeuron], which keeps no history.  The IF variants drop the leak,
$\tau D^\alpha v = I$.

The step is the solver's own ([spikede.solvers.schemes][]) over the solver's memory
kernel ([HistoryKernel][spikede.solvers.memory.HistoryKernel]); no weights or history sums are
duplicated here.  Parameters follow `nn.Linear`'s factory convention: `device=` and
`dtype=` place them, and a float64 neuron holds exactly the float64 numbers it was given.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import nn

from . import fused
from .events import EventParams, apply_events
from .membrane import LeakyDrive
from .layer_loop import ForwardEuler, LayerState, LayerSteps, NoHistory, layer_problem, replay_adjoint, skip
from .neuron_adjoint import SequenceAdjoint
from .solvers.engine import march, step_threads
from .solvers.hybrid import HISTORY_MODES
from .solvers.memory import check_memory, make_kernel
from .solvers.schemes import SCHEMES
from .surrogate import Surrogate, check_dtype, check_scale, describe

__all__ = ["LIFNeuron", "IFNeuron", "FractionalLIF", "FractionalIF", "SpikingNeuron", "NEURON_METHODS"]

NEURON_METHODS = ("gl", "l1")
STEP_MODES = ("multi", "single")
_STEP_MODE_ALIASES = {"multi": "multi", "m": "multi", "single": "single", "s": "single"}
_INITIAL_CAPACITY = 64
_SOE_SINGLE_STEP_HORIZON = 2**20
_SOE_KERNEL_OPTIONS = {"soe_first_lag": 16, "block": 16}


def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _orders(alpha, coefficients, learn_coefficients: bool) -> tuple[list[float], list[float] | None]:
    """`alpha` (a number or a list of numbers in (0, 1]) and the multi-term weights as lists; the weights
    are `None` for a single order."""
    def order(value, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a number in (0, 1], got {type(value).__name__}: {value!r}")
        if not 0.0 < float(value) <= 1.0:
            raise ValueError(f"{name} must satisfy 0 < {name} <= 1, got {value}")
        return float(value)

    if isinstance(alpha, numbers.Real) and not isinstance(alpha, bool):
        if coefficients is not None or learn_coefficients:
            raise ValueError("coefficients= and learn_coefficients= go with a list of orders, e.g. alpha=[0.3, 0.7]")
        return [order(alpha, "alpha")], None
    if not isinstance(alpha, Sequence) or isinstance(alpha, str) or not alpha:
        raise TypeError(f"alpha must be a number in (0, 1] or a non-empty list of them, got {alpha!r}")
    alphas = [order(a, f"alpha[{i}]") for i, a in enumerate(alpha)]
    if coefficients is None:
        return alphas, [1.0 / len(alphas)] * len(alphas)
    if isinstance(coefficients, (str, bytes)) or not isinstance(coefficients, Sequence) or len(coefficients) != len(alphas):
        raise ValueError(f"coefficients must be a list of {len(alphas)} numbers (one per order), got {coefficients!r}")
    weights = [_real(c, f"coefficients[{i}]") for i, c in enumerate(coefficients)]
    if min(weights) <= 0.0:
        raise ValueError(f"coefficients must be > 0 (the weights of the orders), got {list(coefficients)}")
    return alphas, weights


def _check_step_mode(step_mode) -> str:
    if not isinstance(step_mode, str) or step_mode.lower() not in _STEP_MODE_ALIASES:
        raise ValueError(
            f"unknown step_mode {step_mode!r}; valid step modes are 'multi' (or 'm') and 'single' (or 's')"
        )
    return _STEP_MODE_ALIASES[step_mode.lower()]


class SpikingNeuron(nn.Module, ABC):
    """Shared machinery of the neuron layers: parameters, event layer, step modes, state.

    The membrane equation is the layer's `drive` ([Drive][spikede.membrane.Drive]; the LIF and
    IF layers' [LeakyDrive][spikede.membrane.LeakyDrive]); a subclass with other dynamics sets
    its own, and the discrete adjoint follows it.  The steps run on the solver's step loop
    (`spikede.solvers.engine.march`, the loop of `fdeint` and the hybrid solves): per step the
    scheme's update from the history and the drive, then the event layer ([spikede.events][]).
    Subclasses implement `_start`, a state at rest (`LayerState`: the potential, the
    memory kernel and the scheme that steps it).

    `step_mode='multi'` (or `'m'`): input `[T, B, ...]`, output spikes `[T, B, ...]`; each
    call is a new sequence starting at rest (`T = 0` gives empty spikes).
    `step_mode='single'` (or `'s'`): input `[B, ...]`; the state (potential and, for
    fractional neurons, the history) is kept between calls until `reset()` (or
    [spikede.reset][spikede.network.reset]).  `record=True` keeps the post-reset potential of the last call in
    `self.membrane`; `return_membrane=True` makes every call return `(spikes, membrane)`
    (snnTorch's `(spk, mem)`).  `v` (alias `mem`) is the potential after the last step.
    A `NaN` potential gives `NaN` spikes from that step on (it is never silently read as
    "no spike").
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
        return_membrane: bool,
        leak: bool,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ):
        super().__init__()
        factory = {"device": device, "dtype": check_dtype(dtype)}
        self.step_mode = _check_step_mode(step_mode)
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
        self.drive = LeakyDrive(self.v_rest, leak)
        self.record = bool(record)
        self.return_membrane = bool(return_membrane)
        tau = check_scale(tau, "tau")
        if learn_tau:
            self.log_tau = nn.Parameter(torch.tensor(math.log(tau), **factory))
        else:
            self.register_buffer("log_tau", None)
            self.register_buffer("tau_fixed", torch.tensor(tau, **factory))
        threshold = _real(threshold, "threshold")
        if learn_threshold:
            self.threshold = nn.Parameter(torch.tensor(threshold, **factory))
        else:
            self.register_buffer("threshold", torch.tensor(threshold, **factory))
        self.membrane: torch.Tensor | None = None
        self._state = None
        self._last_v: torch.Tensor | None = None

    @property
    def tau(self) -> torch.Tensor:
        """The time constant: the value given, or $\\exp(b)$ for a learnable `log_tau = b` (`learn_tau=True`)."""
        if self.log_tau is not None:
            return self.log_tau.exp()
        return self.tau_fixed

    @property
    def v(self) -> torch.Tensor | None:
        """The post-reset potential after the last step of the last call, detached (`None` before any call or
        after `reset()`); for a membrane that carries gradients use `return_membrane=True`."""
        return self._last_v

    mem = v  # snnTorch's name

    def reset(self) -> None:
        """Forget the single-step state (potential, history) and the recorded membrane."""
        self._state = None
        self._last_v = None
        self.membrane = None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints written before tau was stored as given hold a `log_tau` buffer for a fixed tau.
        old, new = prefix + "log_tau", prefix + "tau_fixed"
        if self.log_tau is None and old in state_dict and new not in state_dict:
            state_dict[new] = state_dict.pop(old).exp()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @staticmethod
    def _check_input(x) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"input must be a floating-point tensor, got {describe(x)}; use .float() or .double()")

    def _output(self, spikes: torch.Tensor, membrane: torch.Tensor | None):
        return (spikes, membrane) if self.return_membrane else spikes

    def forward(self, x: torch.Tensor):
        self._check_input(x)
        if self.step_mode == "multi":
            if x.dim() < 2:
                raise ValueError(
                    f"step_mode='multi' expects input [T, B, ...] (at least 2-D), got shape {tuple(x.shape)}; "
                    "use step_mode='single' for one time step [B, ...]"
                )
            if x.shape[0] == 0:
                self.membrane = torch.zeros_like(x) if self.record else None
                return self._output(torch.zeros_like(x), torch.zeros_like(x))
            state = self._start(x[0], x.shape[0])
            spikes, trace, state = self._run(x.unbind(0), state)
            return self._output(torch.stack(spikes), torch.stack(trace) if trace else None)
        if x.dim() < 1:
            raise ValueError("step_mode='single' expects input [B, ...] (at least 1-D), got a 0-d tensor")
        if self._state is not None and self._state.shape != x.shape:
            raise ValueError(
                f"input shape {tuple(x.shape)} differs from the state shape {tuple(self._state.shape)} kept "
                "from earlier single steps; call spikede.reset(model) (or neuron.reset()) between sequences"
            )
        state = self._state if self._state is not None else self._start(x, _INITIAL_CAPACITY)
        spikes, trace, self._state = self._run((x,), state, keep_membrane=self.membrane)
        return self._output(spikes[0], trace[0] if trace else None)

    def _run(self, currents, state, keep_membrane=None):
        tau, threshold = self.tau.to(state.v.dtype), self.threshold.to(state.v.dtype)
        keep_trace = self.record or self.return_membrane
        spikes, trace = [], []

        def keep(i, proposed, s, v):
            spikes.append(s)
            if keep_trace:
                trace.append(v)

        state = self._march(state, currents, tau, threshold, keep)
        if self.record:
            new = torch.stack(trace)
            self.membrane = new if keep_membrane is None else torch.cat([keep_membrane, new])
        self._last_v = state.potential.detach()
        return spikes, trace, state

    def _march(self, state: LayerState, currents, tau: torch.Tensor, threshold: torch.Tensor, keep) -> LayerState:
        """Run the steps of `currents` (one input per step) from `state` on the solver's step loop
        (`spikede.solvers.engine.march`); `keep(i, proposed, spikes, v)` sees each step."""
        first, last = state.n + 1, state.n + len(currents)
        state = self._reserve(state, last)
        steps = LayerSteps(self, currents, first, tau, threshold, keep, state.jump)
        with step_threads(state.v):
            v, _ = march(state.scheme.problem, state.scheme, state.kernel, state.v, steps.rhs(state.n, state.v),
                         first, last, skip, steps, rhs=steps.rhs)
        return LayerState(v, last, state.kernel, state.scheme, steps.jump)

    def _reserve(self, state: LayerState, last: int) -> LayerState:
        """`state` with room for steps up to `last` (a growing history is extended here)."""
        return state

    def _rhs(self, v: torch.Tensor, current: torch.Tensor, tau: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
        """The right-hand side of the step from `v` with input `current`: the membrane drive."""
        return self.drive(v, current, tau)

    def _event(self, proposed: torch.Tensor, threshold: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The spikes and the post-reset potential of a step that proposed `proposed` (the event layer)."""
        return apply_events(proposed, threshold, self.surrogate, self.events)

    @abstractmethod
    def _start(self, template: torch.Tensor, horizon: int) -> LayerState:
        """A state at rest shaped like `template`, for `horizon` steps (a hint for single steps)."""

    def extra_repr(self) -> str:
        return (
            f"tau={self.tau.item():.4g}, threshold={self.threshold.item():.4g}, v_rest={self.v_rest}, "
            f"dt={self.dt}, reset={self.events.reset!r}, surrogate={self.surrogate.name!r}, step_mode={self.step_mode!r}"
        )


class LIFNeuron(SpikingNeuron):
    r"""Integer-order leaky integrate-and-fire: $v_n = v_{n-1} + \frac{dt}{\tau}(-(v_{n-1} - v_{rest}) + I_n)$.

    No history is kept (forward Euler; SpikingJelly's `LIFNode` with `decay_input=True`).  The
    keywords are those of [FractionalLIF][spikede.neurons.FractionalLIF] without `alpha`,
    `coefficients`, `method`, `memory`, `learn_alpha`, `learn_coefficients` and `adjoint`.
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
        return_membrane: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ):
        super().__init__(
            tau, threshold, v_rest, surrogate, surrogate_scale, dt, reset, v_reset, detach_reset,
            learn_tau, learn_threshold, step_mode, record, return_membrane, leak=self._leaky,
            device=device, dtype=dtype,
        )

    _leaky = True

    def _start(self, template, horizon):
        v0 = torch.full_like(template, self.v_rest)
        return LayerState(v0, 0, NoHistory(), ForwardEuler(layer_problem(v0, self.dt, horizon)))


class IFNeuron(LIFNeuron):
    """Integer-order integrate-and-fire (no leak): $v_n = v_{n-1} + \\frac{dt}{\\tau} I_n$ (`tau` defaults to 1).

    Takes the keywords of [LIFNeuron][spikede.neurons.LIFNeuron].
    """

    _leaky = False

    def __init__(self, tau: float = 1.0, threshold: float = 1.0, **kwargs):
        super().__init__(tau=tau, threshold=threshold, **kwargs)


class FractionalLIF(SpikingNeuron):
    r"""Fractional-order leaky integrate-and-fire: $\tau D^\alpha v = -(v - v_{rest}) + I$ (Caputo).

    Multi-term (distributed-order) neurons take a list of orders and their weights:
    $\tau \sum_i c_i D^{\alpha_i} v = -(v - v_{rest}) + I$.

    Args:
        alpha: order in $(0, 1]$; `alpha = 1` reproduces [LIFNeuron][spikede.neurons.LIFNeuron].
            A list `[a1, a2, ...]` makes a multi-term neuron (`gl` or `l1`, any memory kernel).
        coefficients: the weights $c_i$ of a multi-term neuron, each > 0 (default: `1 / K` each
            for `K` orders, so that equal orders give the single-term neuron).
        learn_coefficients: learn the weights as $c_i = \exp(b_i)$ (parameter `log_coefficients`).
        tau: time constant (units of $\mathrm{time}^\alpha$), > 0.
        threshold: firing threshold $\theta$.
        v_rest: resting potential, also the initial potential.
        surrogate: spike function by name, or a [Surrogate][spikede.surrogate.Surrogate] module.
        surrogate_scale: the surrogate's hyper-parameter (`None`: its default).
        dt: time step.
        reset: `'subtract'`, `'zero'` or `'none'` (see [spikede.events][]).
        v_reset: the potential after a `'zero'` reset.
        detach_reset: stop gradients through the reset path.
        learn_tau: learn $\tau = \exp(b)$ (parameter `log_tau`).
        learn_threshold: learn the threshold.
        step_mode: `'multi'`/`'m'` (`[T, B, ...]` per call) or `'single'`/`'s'` (`[B, ...]`, stateful).
        record: keep the post-reset potential in `self.membrane`.
        return_membrane: return `(spikes, membrane)` instead of the spikes alone.
        device: where the parameters live (`nn.Linear`'s factory keyword).
        dtype: the parameters' dtype (`nn.Linear`'s factory keyword; default: torch's default dtype).
        method: `'gl'` (Grünwald–Letnikov) or `'l1'` (any case): the schemes whose history is
            the potential itself, so that resets are remembered.
        memory: `None` (full history), an int window of lags, or `'soe'` (sum of
            exponentials, O(1) per step; single-step runs up to $2^{20}$ steps).
        learn_alpha: learn $\alpha = \mathrm{sigmoid}(a)$ (parameter `alpha_logit`; stays in
            $(0, 1)$; needs `alpha < 1`).
        history: what the fractional memory keeps: `'reset'` (default) the post-reset
            potential, so that the kernel remembers every reset (the discrete-time SNN
            convention); `'continuous'` the potential without its jumps: the drive reads
            $v = z + J$, a step that fires ends its continuous part $z$ at the threshold and
            the reset's jump goes to $J$, as `history='continuous'` of the hybrid solves
            ([spikede.solvers.hybrid][]), whose spike times converge as `dt` shrinks.  A
            continuous history runs the eager loop; its `adjoint` is the generic one
            ([spikede.layer_loop][]: `True` to use it; `None` means autograd here).
        adjoint: train through the discrete adjoint (one autograd Function over the sequence:
            the forward keeps no graph, the backward is a hand-written reverse sweep through
            the transposed history): the same gradients as autograd; per layer it keeps the
            history rows and the spikes as bits, about 0.6 of autograd's live tensors and a
            third of its resident memory on CPU (`benchmarks/adjoint.py`).  `None`
            (default): the adjoint wherever it applies, i.e. in `'multi'` step mode with a
            deterministic spike and neither `record` nor `return_membrane` (a membrane that is
            handed out keeps its autograd graph); `True`: always (errors where it cannot apply;
            a recorded membrane is then detached); `False`: plain autograd.

    The order is kept in float64 whatever `dtype` is (the weights are computed in float64).
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
        return_membrane: bool = False,
        adjoint: bool | None = None,
        coefficients: Sequence[float] | None = None,
        learn_coefficients: bool = False,
        history: str = "reset",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ):
        super().__init__(
            tau, threshold, v_rest, surrogate, surrogate_scale, dt, reset, v_reset, detach_reset,
            learn_tau, learn_threshold, step_mode, record, return_membrane, leak=self._leaky,
            device=device, dtype=dtype,
        )
        if history not in HISTORY_MODES:
            raise ValueError(f"history must be one of {', '.join(map(repr, HISTORY_MODES))}, got {history!r}")
        self.history = history
        if adjoint is not None and not isinstance(adjoint, bool):
            raise TypeError(f"adjoint must be None (automatic), True or False, got {adjoint!r}")
        if adjoint and self.step_mode != "multi":
            raise ValueError("adjoint=True needs step_mode='multi' (the reverse sweep runs over a whole sequence)")
        self.adjoint = adjoint
        alphas, weights = _orders(alpha, coefficients, learn_coefficients)
        if not isinstance(method, str) or method.lower() not in NEURON_METHODS:
            raise ValueError(
                f"unknown method {method!r} for a spiking neuron; valid methods are "
                f"{', '.join(map(repr, NEURON_METHODS))} (any case; schemes whose history is the potential, "
                "so that resets are remembered)"
            )
        self.method = method.lower()
        self.memory = check_memory(memory)
        if learn_alpha and self.memory == "soe":
            raise ValueError(
                "memory='soe' compresses the weights of a fixed alpha and cannot learn it; "
                "use learn_alpha=False, or memory=None / an int window"
            )
        shape = () if weights is None else (len(alphas),)
        if learn_alpha:
            if max(alphas) >= 1.0:
                raise ValueError(
                    f"learn_alpha=True needs alpha < 1 (alpha is parametrised as sigmoid(a) in (0, 1)); got alpha={alpha}"
                )
            logits = [math.log(a / (1.0 - a)) for a in alphas]
            self.alpha_logit = nn.Parameter(torch.tensor(logits, device=device, dtype=dtype).reshape(shape))
        else:
            self.register_buffer("alpha_logit", None)
            self.register_buffer("alpha_fixed", torch.tensor(alphas, dtype=torch.float64, device=device).reshape(shape))
        if weights is None:
            self.register_buffer("log_coefficients", None)
            self.register_buffer("coefficients_fixed", None)
        elif learn_coefficients:
            self.log_coefficients = nn.Parameter(torch.tensor([math.log(c) for c in weights], device=device, dtype=dtype))
            self.register_buffer("coefficients_fixed", None)
        else:
            self.register_buffer("log_coefficients", None)
            self.register_buffer("coefficients_fixed", torch.tensor(weights, dtype=torch.float64, device=device))

    @property
    def alpha(self) -> torch.Tensor:
        r"""The order: $\mathrm{sigmoid}(a)$ if learnable, else the fixed value (0-d tensor; `[K]` for K terms)."""
        if self.alpha_logit is not None:
            return torch.sigmoid(self.alpha_logit)
        return self.alpha_fixed

    @property
    def coefficients(self) -> torch.Tensor | None:
        r"""The weights $c_i$ of a multi-term neuron (`[K]`), `None` for a single order."""
        if self.log_coefficients is not None:
            return self.log_coefficients.exp()
        return self.coefficients_fixed

    def uses_adjoint(self) -> bool:
        """Whether a multi-step call with autograd on runs through the discrete adjoint."""
        if self.adjoint is not None:
            return self.adjoint
        if not self._closed_form():
            return False
        random_spike = self.surrogate.spec.stochastic and self.surrogate.training
        return self.step_mode == "multi" and not (self.record or self.return_membrane or random_spike)

    def forward(self, x: torch.Tensor):
        sequence = self.step_mode == "multi" and isinstance(x, torch.Tensor) and x.dim() >= 2 and x.shape[0] > 0
        if sequence and not torch.is_grad_enabled() and fused.applies(self, x):  # inference, compiled
            self._check_input(x)
            spikes, membrane = SequenceAdjoint.apply(x, self.threshold, self.tau, self.alpha, self.coefficients, self)
            return self._output(spikes, membrane)
        if not (sequence and self.uses_adjoint() and torch.is_grad_enabled()):
            return super().forward(x)
        if self.surrogate.spec.stochastic and self.surrogate.training:
            raise ValueError("adjoint=True needs a deterministic spike; the 'noisy' surrogate is random in training")
        self._check_input(x)
        if not self._closed_form():
            return self._replayed(x)
        spikes, membrane = SequenceAdjoint.apply(x, self.threshold, self.tau, self.alpha, self.coefficients, self)
        return self._output(spikes, membrane)

    def _closed_form(self) -> bool:
        """Whether the closed-form adjoint (`SequenceAdjoint`, and the compiled kernels) covers this
        layer's steps: the leaky drive's event after the step, with the resets in the history.  Else a
        training call takes the generic adjoint (`adjoint=True`) or autograd."""
        return self.history == "reset"

    def _replayed(self, x: torch.Tensor):
        """A multi-step call through the generic discrete adjoint (`spikede.layer_loop.replay_adjoint`)."""
        spikes, membrane = replay_adjoint(self, x)
        self._last_v = membrane[-1].detach()
        if self.record:
            self.membrane = membrane
        return self._output(spikes, membrane)

    def _scheme(self, v0: torch.Tensor, horizon: int):
        return self._scheme_for_alpha(v0, horizon, self.alpha, self.coefficients)

    def _scheme_for_alpha(self, v0: torch.Tensor, horizon: int, alpha: torch.Tensor,
                          coefficients: torch.Tensor | None = None, func=None):
        problem = layer_problem(v0, self.dt, horizon, self.memory if isinstance(self.memory, int) else None, func)
        if coefficients is None:
            return SCHEMES[self.method](problem, [alpha], [1.0], implicit=False)
        return SCHEMES[self.method](problem, list(alpha.unbind(0)), list(coefficients.unbind(0)), implicit=False)

    def _kernel_options(self) -> dict:
        """For `'soe'`: 16 exact lags and blocks of 16 steps.  A layer's state is wide (batch x
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
        return LayerState(v0, 0, kernel, scheme, torch.zeros_like(v0) if self.history == "continuous" else None)

    def _reserve(self, state, last):
        # The step loop stores no row after the horizon's last step, so single steps keep one step
        # spare in a history that can grow ('soe' cannot: it fails at the step past its horizon).
        spare = self.step_mode == "single" and self.memory != "soe"
        if last + spare > state.kernel.n_steps:
            horizon = 2 * state.kernel.n_steps
            scheme = self._scheme(state.scheme.problem.y0, horizon)
            state.kernel.extend(scheme.weights, horizon)
            state = LayerState(state.v, state.n, state.kernel, scheme, state.jump)
        return state

    def extra_repr(self) -> str:
        alpha = ", ".join(f"{a:.4g}" for a in self.alpha.reshape(-1).tolist())
        text = f"alpha={alpha if self.alpha.dim() == 0 else '[' + alpha + ']'}, "
        if self.coefficients is not None:
            text += f"coefficients=[{', '.join(f'{c:.4g}' for c in self.coefficients.tolist())}], "
        if self.history != "reset":
            text += f"history={self.history!r}, "
        return text + f"method={self.method!r}, memory={self.memory}, " + super().extra_repr()


class FractionalIF(FractionalLIF):
    """Fractional integrate-and-fire (no leak): $\\tau D^\\alpha v = I$ (`tau` defaults to 1).

    Takes the keywords of [FractionalLIF][spikede.neurons.FractionalLIF].
    """

    _leaky = False

    def __init__(self, alpha: float = 0.8, tau: float = 1.0, threshold: float = 1.0, **kwargs):
        super().__init__(alpha=alpha, tau=tau, threshold=threshold, **kwargs)
