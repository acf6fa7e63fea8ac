r"""The reference fractional-SNN library's calling conventions (PhysAGI spikeDE) on spikede's engine.

`SNNWrapper(base, integrator='fdeint', alpha=..., ...)` takes a model written with `LIFNeuron`
(or `IFNeuron`) layers and runs it as a fractional SNN, called as `net(x, x_time)` with `x` of
shape `[T, B, ...]` and the time points `x_time` (`[T]`, uniform):

```python
net = SNNWrapper(base=model, integrator='fdeint', alpha=0.7, method='gl', learn_alpha=False)
net._set_neuron_shapes(input_shape=(1, 10))   # accepted; spikede needs no shape pass
out = net(x, x_time)                           # [T, B, out]
```

Each `LIFNeuron`/`IFNeuron` of `base` becomes a `FractionalLIF`/`FractionalIF` of the order its
layer is given (keeping tau, threshold, surrogate and reset), and the model runs one time step at
a time: step `k` feeds `x[k]` to `base` (so `nn.BatchNorm1d` and other per-sample layers see
`[B, ...]`, as in the reference) and the neurons keep their fractional history between steps.
The step is `dt = x_time[1] - x_time[0]`.  The orders are laid out as in the reference
(`alpha_mode`):

- a number: one order for every layer;
- a flat list with `alpha_mode='per_layer'`: one order per layer;
- a flat list with `alpha_mode='multiterm'`: the same multi-term orders
  $\sum_j w_j D^{\alpha_j}$ in every layer, with `multi_coefficient` (flat: shared; nested:
  per layer; default: ones);
- a nested list: per layer, an order or a list of orders (`multi_coefficient` nested alike);
- `alpha_mode='auto'`: a flat `multi_coefficient` or a nested one means multi-term; without
  one, a list as long as the number of layers means per layer, otherwise multi-term (each of
  these two guesses with a `UserWarning`, as in the reference).

spikede's neuron follows the Caputo equation
$\tau D^\alpha v = -(v - v_{rest}) + I$ with the spike decided on the potential the scheme
computes, where the reference decides it on an integer-order look-ahead; the differences are
listed, with formulas, in the docs page "Coming from spikeDE".  `reference_rule=True` runs the
reference's own rule instead (`ReferenceLIF`), to re-run its checkpoints and results.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import torch
from torch import nn

from .neurons import NEURON_METHODS, FractionalIF, FractionalLIF, IFNeuron, LIFNeuron
from .network import _neuron_kwargs
from .solvers.fdeint import _check_grid
from .surrogate import describe
from .solvers.memory import check_memory
from .surrogate import check_scale

__all__ = ["SNNWrapper", "ReferenceLIF", "ReferenceIF", "layer_orders"]

INTEGRATORS = ("fdeint", "odeint")
ALPHA_MODES = ("auto", "per_layer", "multiterm")


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or (isinstance(value, torch.Tensor) and value.dim() > 0)


def _as_list(value: Any) -> list:
    return value.tolist() if isinstance(value, torch.Tensor) else list(value)


def _flags(value: Any, layers: int, name: str) -> list[bool]:
    if isinstance(value, bool):
        return [value] * layers
    if isinstance(value, (list, tuple)) and len(value) == layers and all(isinstance(v, bool) for v in value):
        return list(value)
    raise ValueError(f"{name} must be a bool or a list of {layers} bools (one per neuron layer), got {value!r}")


def _terms(orders: Any, coefficients: Any, where: str) -> tuple[list[float], list[float] | None]:
    """One layer's orders and (multi-term only) weights."""
    if isinstance(orders, numbers.Real) and not isinstance(orders, bool):
        if coefficients is not None and not (isinstance(coefficients, numbers.Real) and coefficients == 1.0):
            raise ValueError(f"{where}: a single order takes no multi_coefficient (got {coefficients!r})")
        return [float(orders)], None
    orders = [float(a) for a in _as_list(orders)]
    if not orders:
        raise ValueError(f"{where}: the list of orders is empty")
    if coefficients is None:
        return orders, [1.0] * len(orders)
    if isinstance(coefficients, numbers.Real):
        return orders, [float(coefficients)] * len(orders)
    coefficients = [float(c) for c in _as_list(coefficients)]
    if len(coefficients) != len(orders):
        raise ValueError(f"{where}: multi_coefficient has {len(coefficients)} weights for {len(orders)} orders")
    return orders, coefficients


def layer_orders(alpha: Any, layers: int, multi_coefficient: Any = None,
                 alpha_mode: str = "auto") -> tuple[str, list[tuple[list[float], list[float] | None]]]:
    """The reference's order layouts as `(case, [(orders, weights or None) per layer])`.

    `case`: `'A_scalar'` (one order everywhere), `'A'` (one order per layer), `'B'` (multi-term,
    the same orders in every layer) or `'C'` (per-layer orders, nested); see the module.
    """
    if alpha_mode not in ALPHA_MODES:
        raise ValueError(f"alpha_mode must be one of {', '.join(map(repr, ALPHA_MODES))}, got {alpha_mode!r}")
    if isinstance(alpha, torch.Tensor) and alpha.numel() == 1:
        alpha = alpha.item()
    nested_coefficients = _is_list(multi_coefficient) and any(_is_list(c) for c in _as_list(multi_coefficient))
    if isinstance(alpha, numbers.Real) and not isinstance(alpha, bool):
        return "A_scalar", [_terms(float(alpha), None, f"layer {i}") for i in range(layers)]
    if not _is_list(alpha):
        raise TypeError(f"alpha must be a number, a list or a tensor, got {type(alpha).__name__}: {alpha!r}")
    alpha = _as_list(alpha)
    if not alpha:
        raise ValueError("alpha must not be an empty list")

    def per_layer_coefficients():
        coefficients = _as_list(multi_coefficient) if multi_coefficient is not None else [None] * layers
        if len(coefficients) != layers:
            raise ValueError(f"a nested multi_coefficient needs one entry per neuron layer ({layers}), "
                             f"got {len(coefficients)}")
        return coefficients

    if any(_is_list(a) for a in alpha):  # nested: per layer, each an order or a list of orders
        if len(alpha) != layers:
            raise ValueError(f"a nested alpha needs one entry per neuron layer ({layers}), got {len(alpha)}")
        return "C", [_terms(a, c, f"layer {i}") for i, (a, c) in enumerate(zip(alpha, per_layer_coefficients()))]
    mode = alpha_mode
    if mode == "auto":
        if multi_coefficient is not None:
            mode = "multiterm"
        elif len(alpha) == layers:
            warnings.warn(f"alpha has {len(alpha)} entries and the model {layers} neuron layers: read as one order "
                          "per layer; pass alpha_mode='per_layer' (or 'multiterm') to say so", UserWarning,
                          stacklevel=3)
            mode = "per_layer"
        else:
            warnings.warn(f"alpha has {len(alpha)} entries and the model {layers} neuron layers: read as the orders "
                          "of a multi-term neuron in every layer; pass alpha_mode='multiterm' to say so",
                          UserWarning, stacklevel=3)
            mode = "multiterm"
    if mode == "per_layer":
        if len(alpha) != layers:
            raise ValueError(f"alpha_mode='per_layer' needs one order per neuron layer ({layers}), got {len(alpha)}")
        return "A", [_terms(float(a), None, f"layer {i}") for i, a in enumerate(alpha)]
    if nested_coefficients:
        return "B", [_terms(alpha, c, f"layer {i}") for i, c in enumerate(per_layer_coefficients())]
    return "B", [_terms(alpha, multi_coefficient, f"layer {i}") for i in range(layers)]


class _ReferenceRule:
    r"""The reference's firing rule on a fractional neuron (Grünwald–Letnikov, subtractive reset).

    With the state $v_k$ and the input $I_k$ of step $k$ ($v_0 = v_{rest}$; the reference
    starts at 0), the spike is decided on a unit-step, integer-order Euler look-ahead, whatever
    `dt` and alpha, and the reset enters the right-hand side:

    $$
    s_k = H\bigl(v_k + F_k - \theta\bigr), \quad F_k = \frac{I_k - (v_k - v_{rest})}{\tau}, \quad
    v_{k+1} = v_{rest} + h^\alpha \Bigl(F_k - \frac{\theta\, s_k}{\tau}\Bigr) - \sum_{j=1}^{k+1} g_j (v_{k+1-j} - v_{rest}),
    $$

    so a spike removes $h^\alpha \theta / \tau$ instead of $\theta$ (for the IF neuron
    $F_k = I_k / \tau$).  The spike's surrogate gradient reaches $v_k$ and $I_k$; the reset
    term is detached, as in the reference.  Runs the eager loop (no compiled engine); with
    `adjoint=True` (multi-step) a training call is differentiated by the generic discrete adjoint
    (`spikede.layer_loop.replay_adjoint`: the same gradients without a graph of every step).
    """

    def __init__(self, *args, adjoint: bool = False, **kwargs):
        if not isinstance(adjoint, bool):
            raise TypeError(f"adjoint must be True or False for the reference's rule, got {adjoint!r}")
        super().__init__(*args, adjoint=adjoint, **kwargs)
        if self.method != "gl" or self.events.reset != "subtract":
            raise ValueError(f"the reference's rule is defined for method='gl' and reset='subtract', got "
                             f"method={self.method!r}, reset={self.events.reset!r}")
        if self.history != "reset":
            raise ValueError(f"the reference's rule keeps the resets in the history (history='reset'), got "
                             f"history={self.history!r}")

    def _closed_form(self) -> bool:
        return False  # the spike is decided inside the right-hand side

    def _rhs(self, v, current, tau, threshold):
        drive = self.drive(v, current, tau)
        self._decided = self.surrogate(v + drive - threshold)  # the spike of the step this drive makes
        return drive - self._decided.detach() * threshold / tau

    def _event(self, proposed, threshold):
        return self._decided, proposed


class ReferenceLIF(_ReferenceRule, FractionalLIF):
    """`FractionalLIF` firing by the reference library's rule (see `_ReferenceRule`); `method='gl'`,
    `reset='subtract'` only."""


class ReferenceIF(_ReferenceRule, FractionalIF):
    """`FractionalIF` firing by the reference library's rule (see `_ReferenceRule`)."""


class SNNWrapper(nn.Module):
    """A model of `LIFNeuron`/`IFNeuron` layers run as a fractional SNN, called like the reference's.

    Args:
        base: the model; its `LIFNeuron`/`IFNeuron` layers (spikede's, also `spikeDE.LIFNeuron`)
            are replaced in a copy.
        integrator: `'fdeint'` (fractional neurons) or `'odeint'` (the integer-order neurons
            as they are, one Euler step per time point; `alpha` is not used).
        interpolation_method: `'linear'`, the reference's default: step `k` of the grid
            `x_time` reads `x[k]`, which linear interpolation gives at the grid points.
        alpha: the order(s) of each layer (see `layer_orders`).
        multi_coefficient: the weights of multi-term layers (see `layer_orders`).
        learn_alpha: learn the orders: a bool, or one per layer.
        learn_coefficient: learn the multi-term weights: a bool, or one per layer.
        alpha_mode: how a flat list `alpha` is read: `'auto'`, `'per_layer'` or `'multiterm'`.
        method: the default scheme of `forward` (`'gl'` or `'l1'`); the reference's README
            passes it here.
        memory: the default memory kernel (`None` full, an int window, `'soe'`); `forward`'s
            `options['memory']` (`-1`: full) overrides it.
        reference_rule: fire by the reference's rule (`ReferenceLIF`: integer-order look-ahead
            spike, reset of `h^alpha theta / tau` through the right-hand side; `method='gl'`)
            instead of spikede's, to re-run the reference's checkpoints and results.

    Parameters live in the neurons (`alpha_logit`, `log_coefficients`) and reach
    `net.parameters()`; `get_per_layer_alpha()` gives each layer's orders as tensors.
    """

    def __init__(self, base: nn.Module, integrator: str = "fdeint", interpolation_method: str = "linear",
                 alpha: Any = 0.5, multi_coefficient: Any = None, learn_alpha: Any = False,
                 learn_coefficient: Any = False, alpha_mode: str = "auto", method: str = "gl",
                 memory: int | str | None = None, reference_rule: bool = False):
        super().__init__()
        if not isinstance(base, nn.Module):
            raise TypeError(f"base must be an nn.Module, got {type(base).__name__}")
        if integrator not in INTEGRATORS:
            raise ValueError(f"integrator must be one of {', '.join(map(repr, INTEGRATORS))}, got {integrator!r}")
        if interpolation_method != "linear":
            raise ValueError(f"interpolation_method must be 'linear' (step k reads x[k]), got {interpolation_method!r}")
        if not isinstance(reference_rule, bool):
            raise TypeError(f"reference_rule must be a bool, got {reference_rule!r}")
        if reference_rule and integrator != "fdeint":
            raise ValueError("reference_rule=True is the reference's fractional rule: use integrator='fdeint'")
        self.integrator = integrator
        self.reference_rule = reference_rule
        self.method = _check_method(method)
        self.memory = check_memory(memory)
        self.base, self._alpha_case = _copy_with_fractional_neurons(
            base, integrator, alpha, multi_coefficient, learn_alpha, learn_coefficient, alpha_mode, self.method,
            self.memory, reference_rule)
        self.neurons = [m for m in self.base.modules() if isinstance(m, (LIFNeuron, FractionalLIF))]

    def _set_neuron_shapes(self, input_shape=None) -> None:
        """Accepted for the reference's code, and checked; spikede needs no shape pass."""
        if input_shape is None or not all(isinstance(s, int) and s > 0 for s in input_shape):
            raise ValueError(f"input_shape must be a tuple of positive ints, e.g. (1, 10), got {input_shape!r}")

    def get_per_layer_alpha(self) -> list[torch.Tensor]:
        """Each neuron layer's order(s), as tensors (differentiable where learned)."""
        return [n.alpha if isinstance(n, FractionalLIF) else torch.ones((), dtype=torch.float64) for n in self.neurons]

    def get_per_layer_coefficient(self) -> list[torch.Tensor]:
        """Each layer's multi-term weights (`[1.0]` for a single order)."""
        return [n.coefficients if isinstance(n, FractionalLIF) and n.coefficients is not None
                else torch.ones(1, dtype=torch.float64) for n in self.neurons]

    @property
    def per_layer_alpha_params(self) -> list[torch.Tensor]:
        return self.get_per_layer_alpha()

    @property
    def per_layer_coefficient_params(self) -> list[torch.Tensor]:
        return self.get_per_layer_coefficient()

    def forward(self, x: torch.Tensor, x_time: torch.Tensor, output_time: torch.Tensor | None = None,
                method: str | None = None, options: dict | None = None) -> torch.Tensor:
        """Run `base` over `x` (`[T, B, ...]`) on the uniform grid `x_time` (`[T]`); returns the
        outputs of every step, `[T, B, ...]`.  `options`: `'step_size'` (the step when `T = 1`,
        as in the reference), `'memory'` (`-1` or `None`: full history, an int window, `'soe'`)."""
        if output_time is not None:
            raise ValueError("output_time is not used (the reference ignores it too): outputs are those of the "
                             "steps of x_time; pass output_time=None")
        options = {} if options is None else dict(options)
        unknown = set(options) - {"step_size", "memory"}
        if unknown:
            raise ValueError(f"options takes 'step_size' and 'memory', got {sorted(unknown)}")
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            raise ValueError(f"x must be a tensor [T, B, ...], got {getattr(x, 'shape', x)!r}")
        dt = _step(x_time, x.shape[0], options.get("step_size", 1.0))
        method = self.method if method is None else _check_method(method)
        if self.reference_rule and method != "gl":
            raise ValueError(f"reference_rule=True is defined for method='gl', got method={method!r}")
        memory = options.get("memory", self.memory)
        memory = check_memory(None if memory == -1 else memory)
        for neuron in self.neurons:
            neuron.reset()
            neuron.dt = dt
            if isinstance(neuron, FractionalLIF):
                neuron.method, neuron.memory = method, memory
        return torch.stack([self.base(x_k) for x_k in x.unbind(0)])


def _check_method(method: object) -> str:
    if not isinstance(method, str) or method.lower() not in NEURON_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, NEURON_METHODS))} (the schemes whose history "
                         f"is the potential, so that resets are remembered), got {method!r}")
    return method.lower()


def _step(x_time: object, steps: int, step_size: object) -> float:
    """`dt` from the time points of `x` (one per step, uniform)."""
    if not isinstance(x_time, torch.Tensor) or x_time.dim() != 1 or not x_time.is_floating_point():
        raise ValueError(f"x_time must be a 1-D floating-point tensor of time points, got {describe(x_time)}")
    if x_time.numel() != steps:
        raise ValueError(f"x_time has {x_time.numel()} time points but x has {steps} steps; give one per step")
    if steps == 1:
        return check_scale(step_size, "options['step_size']")
    _, dt, uneven = _check_grid(x_time, x_time.device)
    if uneven is not None:
        raise ValueError(f"x_time must be uniform (spikede steps with one dt): its {uneven}")
    return dt


def _copy_with_fractional_neurons(base, integrator, alpha, multi_coefficient, learn_alpha, learn_coefficient,
                                  alpha_mode, method, memory, reference_rule) -> tuple[nn.Module, str]:
    """A copy of `base` whose neuron layers run one step per call (and, for `'fdeint'`, are fractional),
    and the case of the order layout (`layer_orders`)."""
    import copy

    model = copy.deepcopy(base)
    targets = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
               if type(child) in (LIFNeuron, IFNeuron)]
    if not targets:
        raise ValueError("base has no LIFNeuron or IFNeuron layer to run (spikede.LIFNeuron, also spikeDE.LIFNeuron)")
    if integrator == "odeint":
        for _, _, child in targets:
            child.step_mode = "single"
        return model, "A_scalar"
    case, layers = layer_orders(alpha, len(targets), multi_coefficient, alpha_mode)
    learn_alphas = _flags(learn_alpha, len(targets), "learn_alpha")
    learn_weights = _flags(learn_coefficient, len(targets), "learn_coefficient")
    for (parent, name, child), (orders, weights), learn_a, learn_w in zip(targets, layers, learn_alphas, learn_weights):
        if reference_rule:
            kind = ReferenceIF if type(child) is IFNeuron else ReferenceLIF
        else:
            kind = FractionalIF if type(child) is IFNeuron else FractionalLIF
        options = {**_neuron_kwargs(child), "step_mode": "single", "method": method, "memory": memory}
        layer_alpha = orders[0] if weights is None else orders
        neuron = kind(alpha=layer_alpha, coefficients=weights, learn_alpha=learn_a,
                      learn_coefficients=learn_w and weights is not None, **options)
        setattr(parent, name, neuron.to(device=child.threshold.device))
    return model, case
