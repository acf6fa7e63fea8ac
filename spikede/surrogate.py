r"""Surrogate spike functions.

A spike is the Heaviside step of the distance to threshold, `S = H(x)` with
`x = U - theta` and `H(0) = 1`.  Its derivative is zero almost everywhere, so
the backward pass replaces `dS/dx` by a smooth unit-area bump `sigma'(x)`
(surrogate-gradient learning).  The built-in bumps are the ones of the spikeDE
surrogate-gradient document, each with one hyper-parameter (the *scale*):

| name | parameter | default | $\sigma'(x)$ |
|---|---|---|---|
| `sigmoid` | $\kappa$ | 5.0 | $\kappa\, \mathrm{sig}(\kappa x)(1 - \mathrm{sig}(\kappa x))$ |
| `arctan` | $\kappa$ | 2.0 | $\frac{\kappa}{2(1 + (\frac{\pi}{2} \kappa x)^2)}$ (unit area) |
| `linear` | $\gamma$ | 1.0 | $\frac{1}{2\gamma}$ on $\lvert x \rvert \le \gamma$, else 0 |
| `gaussian` | $\sigma$ | 1.0 | $\frac{1}{\sigma\sqrt{2\pi}} e^{-x^2 / (2\sigma^2)}$ |
| `noisy` | $\kappa$ | 5.0 | training forward $\mathrm{sig}(\kappa x + \epsilon)$, $\epsilon \sim \mathrm{Logistic}(0, 1)$ |

`noisy` is the one stochastic spike: in training its forward pass is the soft
spike itself and its gradient the true gradient of that expression; in evaluation
it is the hard step with the `sigmoid` bump as backward.

Use by name (`spike(x, 'gaussian', scale=0.5)`), as a module
(`Surrogate('arctan', scale=2.0)`, which follows `train()`/`eval()`), and
add your own with `register_surrogate`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

__all__ = [
    "SurrogateSpec",
    "Surrogate",
    "spike",
    "heaviside",
    "register_surrogate",
    "get_surrogate",
    "available_surrogates",
    "check_scale",
    "check_dtype",
]

Derivative = Callable[[torch.Tensor, float], torch.Tensor]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_HALF_PI = 0.5 * math.pi


@dataclass(frozen=True)
class SurrogateSpec:
    """A registered surrogate: the bump `derivative(x, scale)` and its default scale.

    `parameter` names the scale in the maths (`kappa`, `gamma`, `sigma`) and
    only appears in messages and docs.  `stochastic` marks surrogates whose
    training-mode forward is a soft random spike (`noisy`).  `native` numbers the
    built-in bumps that the compiled kernels ([spikede.fused][]) evaluate themselves
    (0: they call `derivative`).
    """

    name: str
    derivative: Derivative
    default_scale: float
    parameter: str = "scale"
    stochastic: bool = False
    native: int = 0  # 1 sigmoid, 2 arctan, 3 linear, 4 gaussian: the codes of csrc/lif_blocks_body.h


def _sigmoid_bump(x: torch.Tensor, kappa: float) -> torch.Tensor:
    s = torch.sigmoid(kappa * x)
    return kappa * s * (1.0 - s)


def _arctan_bump(x: torch.Tensor, kappa: float) -> torch.Tensor:
    return (0.5 * kappa) / (1.0 + (_HALF_PI * kappa * x) ** 2)


def _linear_bump(x: torch.Tensor, gamma: float) -> torch.Tensor:
    return (x.abs() <= gamma).to(x.dtype) * (0.5 / gamma)


def _gaussian_bump(x: torch.Tensor, sigma: float) -> torch.Tensor:
    return torch.exp(x * x * (-0.5 / (sigma * sigma))) * (_INV_SQRT_2PI / sigma)


_REGISTRY: dict[str, SurrogateSpec] = {}


def register_surrogate(
    name: str,
    derivative: Derivative,
    default_scale: float,
    *,
    parameter: str = "scale",
    overwrite: bool = False,
) -> SurrogateSpec:
    """Register a surrogate under `name` so that `surrogate=name` selects it everywhere.

    `derivative(x, scale)` must return `sigma'(x)` elementwise, as one tensor
    expression in `x`'s dtype and device; it is called in the backward pass only.
    Spikes of a registered surrogate are deterministic (forward: exact step).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}")
    if not callable(derivative):
        raise TypeError(f"derivative must be callable as derivative(x, scale), got {derivative!r}")
    scale = check_scale(default_scale, name="default_scale")
    if name in _REGISTRY and not overwrite:
        raise ValueError(
            f"a surrogate named {name!r} is already registered; pass overwrite=True to replace it"
        )
    spec = SurrogateSpec(name, derivative, scale, parameter)
    _REGISTRY[name] = spec
    return spec


def _register_builtins() -> None:
    _REGISTRY["sigmoid"] = SurrogateSpec("sigmoid", _sigmoid_bump, 5.0, "kappa", native=1)
    _REGISTRY["arctan"] = SurrogateSpec("arctan", _arctan_bump, 2.0, "kappa", native=2)
    _REGISTRY["linear"] = SurrogateSpec("linear", _linear_bump, 1.0, "gamma", native=3)
    _REGISTRY["gaussian"] = SurrogateSpec("gaussian", _gaussian_bump, 1.0, "sigma", native=4)
    _REGISTRY["noisy"] = SurrogateSpec("noisy", _sigmoid_bump, 5.0, "kappa", stochastic=True, native=1)


_register_builtins()


def available_surrogates() -> tuple[str, ...]:
    """Names accepted by `surrogate=`, built-in and registered."""
    return tuple(_REGISTRY)


def get_surrogate(name: str | SurrogateSpec) -> SurrogateSpec:
    """Look up a surrogate by name; a `SurrogateSpec` is returned unchanged."""
    if isinstance(name, SurrogateSpec):
        return name
    if not isinstance(name, str):
        raise TypeError(f"surrogate must be a name (str), got {type(name).__name__}: {name!r}")
    try:
        return _REGISTRY[name]
    except KeyError:
        valid = ", ".join(repr(n) for n in _REGISTRY)
        raise ValueError(f"unknown surrogate {name!r}; valid names are {valid}") from None


def check_scale(scale: object, name: str = "surrogate_scale") -> float:
    """Return `scale` as a float if it is a finite positive number, else raise (naming `name`)."""
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise TypeError(f"{name} must be a positive real number, got {type(scale).__name__}: {scale!r}")
    value = float(scale)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {scale!r}")
    return value


def check_dtype(dtype: object) -> torch.dtype | None:
    """Return a module's `dtype=` factory keyword if it is `None` or a floating-point dtype, else raise
    (an integer dtype would truncate tau and the threshold silently)."""
    if dtype is None:
        return None
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype or None, got {type(dtype).__name__}: {dtype!r}")
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype (e.g. torch.float32, torch.float64), got {dtype}")
    return dtype


def _resolve(surrogate: str | SurrogateSpec, scale: float | None) -> tuple[SurrogateSpec, float]:
    spec = get_surrogate(surrogate)
    return spec, spec.default_scale if scale is None else check_scale(scale)


class _StepWithSurrogate(torch.autograd.Function):
    """Forward `H(x)` (`H(0) = 1`); backward `grad * derivative(x, scale)`."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, derivative: Derivative, scale: float) -> torch.Tensor:
        return heaviside(x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, derivative, scale = inputs
        ctx.save_for_backward(x)
        ctx.derivative = derivative
        ctx.scale = scale

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_output * ctx.derivative(x, ctx.scale), None, None


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """The exact step $H(x)$ with $H(0) = 1$ in `x`'s dtype (no gradient).

    `NaN` stays `NaN` (a potential that is not a number neither fires nor stays silent:
    the spike train shows where the state broke).
    """
    return torch.where(torch.isnan(x), x, (x >= 0).to(x.dtype))


def _noisy_soft_spike(x: torch.Tensor, kappa: float, noise: bool) -> torch.Tensor:
    z = kappa * x
    if noise:
        u = torch.rand_like(x).clamp_(torch.finfo(x.dtype).tiny, 1.0)
        z = z + (torch.log(u) - torch.log1p(-u))
    return torch.sigmoid(z)


def spike(
    x: torch.Tensor,
    surrogate: str | SurrogateSpec = "sigmoid",
    scale: float | None = None,
    *,
    training: bool = True,
    noise: bool = True,
) -> torch.Tensor:
    """Spike `H(x)` of the distance to threshold `x = U - theta` with a surrogate gradient.

    `scale` is the surrogate's hyper-parameter (kappa, gamma or sigma); `None`
    takes its default.  `training` and `noise` only matter for `noisy`: in
    training it returns the soft spike `sigmoid(kappa x + eps)` with
    `eps ~ Logistic(0, 1)` (`noise=False`: the mean-field `sigmoid(kappa x)`)
    and its true gradient; in evaluation the hard step.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {describe(x)}")
    spec, value = _resolve(surrogate, scale)
    if spec.stochastic and training:
        return _noisy_soft_spike(x, value, noise)
    if not (x.requires_grad and torch.is_grad_enabled()):  # no graph: the step itself (Function.apply costs ~10 us)
        return heaviside(x)
    return _StepWithSurrogate.apply(x, spec.derivative, value)


def describe(x: object) -> str:
    """How an error message names an argument it refuses: a tensor by its dtype and shape (never its
    values), anything else by its type."""
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__


class Surrogate(nn.Module):
    """A surrogate spike function as a module: `Surrogate('gaussian', scale=0.5)(x)`.

    It follows the module's `train()`/`eval()` state (this matters for
    `noisy`, which is soft and random in training, hard in evaluation).
    `noise=False` makes `noisy` use the noise-free mean-field spike in training.
    """

    def __init__(self, name: str = "sigmoid", scale: float | None = None, *, noise: bool = True):
        super().__init__()
        self.spec, self.scale = _resolve(name, scale)
        self.noise = bool(noise)

    @property
    def name(self) -> str:
        return self.spec.name

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """The surrogate bump `sigma'(x)` at this scale."""
        return self.spec.derivative(x, self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return spike(x, self.spec, self.scale, training=self.training, noise=self.noise)

    def extra_repr(self) -> str:
        return f"{self.spec.name!r}, {self.spec.parameter}={self.scale}"
