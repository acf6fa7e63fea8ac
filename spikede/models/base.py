r"""The interface every scientific neuron model implements, and `simulate`, which runs one.

A model is a frozen dataclass of parameters (floats, or tensors that broadcast to a batch of
neurons with different parameters) with three pieces of maths:

- `rhs(t, y, current)`: the right-hand side of `D^alpha y = f(t, y)` for the state `y` of shape
  `[*batch, C]` (the variables `variables` on the last axis);
- `spike_rule(refractory, history)`: which variable spikes at which threshold, and the reset map;
- `initial_state(batch_shape)`: where a neuron starts (usually its rest).

[simulate][spikede.models.base.simulate] turns a model, an input current and an order into a
hybrid solve ([spikede.solvers.hybrid][]).
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
import numbers
from typing import Callable, ClassVar, Mapping, Sequence

import torch

from ..solvers.adjoint import DiscreteAdjoint
from ..solvers.hybrid import HybridSolution, SpikeRule, solve_hybrid
from ..surrogate import describe

__all__ = ["NeuronModel", "simulate", "Current"]

Current = float | torch.Tensor | Callable[[torch.Tensor], float | torch.Tensor]


class NeuronModel(ABC):
    """Base class of the scientific neuron models: parameter checks, batching and conversion.

    Subclasses are frozen dataclasses whose fields are the parameters; they set `variables`
    (names of the state's components, the spiking one first), `positive` (parameters that
    must be > 0) and implement `rhs`, `spike_rule` and `initial_state`.
    """

    variables: ClassVar[tuple[str, ...]] = ()
    positive: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        shapes = {}
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, torch.Tensor):
                if not value.is_floating_point():
                    raise TypeError(f"{type(self).__name__} parameter {spec.name} must be a float or a floating-point "
                                    f"tensor, got a tensor of dtype {value.dtype}")
                shapes[spec.name] = tuple(value.shape)
            elif isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{type(self).__name__} parameter {spec.name} must be a float or a tensor, "
                                f"got {type(value).__name__}: {value!r}")
            elif not math.isfinite(value):
                raise ValueError(f"{type(self).__name__} parameter {spec.name} must be finite, got {value!r}")
        self._batch_shape(shapes)
        for name in self.positive:
            value = getattr(self, name)
            if not bool(torch.all(torch.as_tensor(value) > 0)):
                raise ValueError(f"{type(self).__name__} parameter {name} must be > 0, got {value!r}")

    def _batch_shape(self, shapes: dict) -> torch.Size:
        def mismatch(name, shape, batch):
            others = {k: v for k, v in shapes.items() if k != name}
            return (f"{type(self).__name__} parameter {name} has shape {shape}, which does not broadcast "
                    f"with the other tensor parameters {others}")
        return _broadcast_named(shapes, mismatch)

    @property
    def batch_shape(self) -> torch.Size:
        """The broadcast shape of the tensor parameters (`()` when all are floats)."""
        return self._batch_shape({f.name: tuple(getattr(self, f.name).shape) for f in dataclasses.fields(self)
                                  if isinstance(getattr(self, f.name), torch.Tensor)})

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None):
        """A copy whose tensor parameters have `dtype` and live on `device` (floats stay floats)."""
        changes = {f.name: getattr(self, f.name).to(dtype=dtype, device=device) for f in dataclasses.fields(self)
                   if isinstance(getattr(self, f.name), torch.Tensor)}
        return dataclasses.replace(self, **changes)

    def replace(self, **changes):
        """A copy with some parameters changed (checked like the original)."""
        return dataclasses.replace(self, **changes)

    @abstractmethod
    def rhs(self, t: torch.Tensor, y: torch.Tensor, current: torch.Tensor | float) -> torch.Tensor:
        """`f(t, y)` for the state `y` of shape `[*batch, C]` driven by `current`."""

    jacobian: ClassVar[Callable | None] = None
    """Optional method `jacobian(t, y, current)`: the blocks `[*batch, C, C]` of `d rhs / dy` in
    closed form, which implicit steps then use instead of `C` reverse passes per Newton iteration."""

    @abstractmethod
    def spike_rule(self, refractory: float = 0.0, history: str = "continuous") -> SpikeRule:
        """The [SpikeRule][spikede.solvers.hybrid.SpikeRule]: spiking variable, threshold, reset."""

    @abstractmethod
    def initial_state(self, batch_shape: Sequence[int], dtype: torch.dtype, device=None) -> torch.Tensor:
        """The starting state `[*batch_shape, C]` (usually the resting state)."""

    def orders(self, alpha: float | Sequence[float] | Mapping[str, float] | torch.Tensor, dtype: torch.dtype,
               device=None) -> float | torch.Tensor:
        """The order(s) for `simulate`: a float for every variable, or a 1-D tensor of one order per variable.

        `alpha` is a number (all variables), a sequence or 1-D tensor over `variables`, or a
        mapping from variable names to orders (the others keep order 1), e.g. `{'v': 0.8}`.
        Every order must lie in (0, 1].
        """
        names = self.variables
        if isinstance(alpha, Mapping):
            unknown = [k for k in alpha if k not in names]
            if unknown:
                raise ValueError(f"alpha names variables {unknown} that {type(self).__name__} does not have; "
                                 f"its variables are {list(names)}")
            alpha = [float(alpha.get(k, 1.0)) for k in names]
        if isinstance(alpha, torch.Tensor) and alpha.dim() == 0:
            values = [alpha]
        elif isinstance(alpha, (torch.Tensor, Sequence)) and not isinstance(alpha, str):
            values = list(alpha.unbind(0)) if isinstance(alpha, torch.Tensor) else list(alpha)
            if len(values) != len(names):
                raise ValueError(f"alpha must give one order per variable of {type(self).__name__} {list(names)}, "
                                 f"got {len(values)} orders")
        elif isinstance(alpha, numbers.Real) and not isinstance(alpha, bool):
            values = [alpha]
        else:
            raise TypeError(f"alpha must be a number, a sequence, a 1-D tensor or a mapping of variable names, "
                            f"got {type(alpha).__name__}")
        for a in values:
            if not 0.0 < float(a.detach() if isinstance(a, torch.Tensor) else a) <= 1.0:
                raise ValueError(f"alpha must lie in (0, 1] for {type(self).__name__} (orders above 1 would need "
                                 f"initial derivatives of every variable), got {float(a)!r}")
        if len(values) == 1:
            return values[0]
        if all(not isinstance(a, torch.Tensor) for a in values) and len(set(map(float, values))) == 1:
            return float(values[0])
        return torch.stack([torch.as_tensor(a, dtype=dtype, device=device) for a in values])


def blocks(entries: Sequence[Sequence[torch.Tensor | float]], like: torch.Tensor) -> torch.Tensor:
    """The matrices `[*like.shape, C, C]` whose entry `(i, j)` is `entries[i][j]` (tensors or floats
    that broadcast to `like`): how the models write their Jacobians."""
    return torch.stack([torch.stack([torch.zeros_like(like) + e for e in row], -1) for row in entries], -2)


def _broadcast_named(shapes: dict, mismatch: Callable[[str, tuple, tuple], str]) -> torch.Size:
    """The broadcast of named shapes; `ValueError(mismatch(name, shape, batch so far))` at the first that does not fit."""
    batch: tuple = ()
    for name, shape in shapes.items():
        try:
            batch = torch.broadcast_shapes(batch, shape)
        except RuntimeError:
            raise ValueError(mismatch(name, shape, batch)) from None
    return torch.Size(batch)


class _Driven:
    """A model under its input current as `f(t, y)`, with its closed-form Jacobian blocks where it has them."""

    def __init__(self, model: NeuronModel, current: Current):
        self.model, self.current = model, current
        if model.jacobian is None:
            self.block_jacobian = None

    def _current(self, t: torch.Tensor):
        return self.current(t) if callable(self.current) else self.current

    def __call__(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.model.rhs(t, y, self._current(t))

    def block_jacobian(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.model.jacobian(t, y, self._current(t))


def _adjoint_params(model: NeuronModel, current, solver_options: dict) -> None:
    """With `adjoint=` and no parameters named, the adjoint differentiates the model's tensor
    parameters and a tensor `current` (those that require grad)."""
    adjoint = solver_options.get("adjoint", False)
    if adjoint is False or solver_options.get("adjoint_params") is not None:
        return
    if isinstance(adjoint, DiscreteAdjoint) and adjoint.params is not None:
        return
    candidates = [getattr(model, f.name) for f in dataclasses.fields(model)] + [current]
    params = [p for p in candidates if isinstance(p, torch.Tensor) and p.requires_grad]
    if isinstance(adjoint, DiscreteAdjoint):
        solver_options["adjoint"] = dataclasses.replace(adjoint, params=params)
    else:
        solver_options["adjoint_params"] = params


def _current_shape(current) -> tuple:
    return tuple(current.shape) if isinstance(current, torch.Tensor) else ()


def simulate(
    model: NeuronModel,
    t: torch.Tensor,
    *,
    current: Current = 0.0,
    alpha: float | Sequence[float] | Mapping[str, float] | torch.Tensor = 1.0,
    y0: torch.Tensor | None = None,
    method: str = "l1",
    memory: int | str | None = None,
    surrogate: str | None = None,
    surrogate_scale: float | None = None,
    refractory: float = 0.0,
    history: str = "continuous",
    save_every: int = 1,
    save_spikes: bool = True,
    restart_at_spikes: bool = False,
    **solver_options: object,
) -> HybridSolution:
    r"""Simulate a neuron model (or a batch of them) driven by `current` on the grid `t`.

    The batch is the broadcast of the model's tensor parameters, a tensor `current` and `y0`'s
    leading axes: 10,000 neurons with different parameters, or one neuron under 50 currents (an
    f–I curve), run in one call.

    Args:
        model: a [NeuronModel][spikede.models.base.NeuronModel] (`AdEx(...)`, `Izhikevich.pattern('RS')`, ...).
        t: grid of times (the model's time unit, ms for the biophysical models): uniform, or any
            increasing grid with `method='l1'`; its floating dtype is the dtype of the solve.
        current: input current in the model's unit: a number, a tensor of the batch shape, or a
            callable `current(t)` returning either.
        alpha: order(s) in (0, 1]: one number, one per variable, or a mapping such as `{'v': 0.8}`
            (unnamed variables keep order 1).
        y0: initial state `[*batch, C]`; default the model's `initial_state`.
        method: `'l1'` or `'gl'`, or `'rk4'` for alpha = 1 (see
            [solve_hybrid][spikede.solvers.hybrid.solve_hybrid]).
        memory: `None`, a window `M`, or `'soe'` (one order for every variable).
        surrogate: `None` for hard spikes, or a surrogate name whose gradient the spikes carry.
        surrogate_scale: the surrogate's scale (`None`: its default).
        refractory: absolute refractory period (time units of `t`).
        history: `'continuous'` (default: the memory does not remember the resets; spike times
            converge at the scheme's order) or `'reset'` (it does, as `FractionalLIF`; converges
            slowly for alpha < 1); see [spikede.solvers.hybrid][].
        save_every: keep the states at steps `0, k, 2k, ...` and the last.
        save_spikes: keep the dense spike raster.
        restart_at_spikes: steps end at the spikes and restart there, each neuron on its own grid
            (pycaputo's integrate-and-fire stepping; see
            [solve_hybrid][spikede.solvers.hybrid.solve_hybrid] for what it takes).
        **solver_options: passed on to [fdeint][spikede.solvers.fdeint.fdeint] (`implicit`, ...);
            with `implicit=True` Newton's method works per neuron (`jacobian='blockwise'`: a
            model's neurons are independent systems).  `adjoint=True` (explicit steps) gives
            the same gradients by the discrete adjoint, without a graph of the solve; it
            differentiates `y0`, `alpha`, the model's tensor parameters and a tensor `current` (a
            callable current's tensors go in `adjoint_params=`).

    Returns:
        A [HybridSolution][spikede.solvers.hybrid.HybridSolution].
    """
    if not isinstance(model, NeuronModel):
        raise TypeError(f"model must be a NeuronModel (e.g. spikede.models.AdEx()), got {type(model).__name__}")
    if not isinstance(t, torch.Tensor) or t.dim() != 1:
        raise TypeError(f"t must be a 1-D tensor of times, got {describe(t)}")
    dtype = t.dtype if t.is_floating_point() else torch.get_default_dtype()
    device = t.device
    model = model.to(dtype=dtype, device=device)
    if isinstance(current, torch.Tensor):
        current = current.to(dtype=dtype, device=device)
    elif not callable(current) and (isinstance(current, bool) or not isinstance(current, numbers.Real)):
        raise TypeError(f"current must be a number, a tensor or a callable current(t), got {type(current).__name__}")
    shapes = {"model parameters": tuple(model.batch_shape), "current": _current_shape(current)}
    if y0 is not None:
        if not isinstance(y0, torch.Tensor) or y0.dim() < 1 or y0.shape[-1] != len(model.variables):
            raise ValueError(f"y0 must be a tensor [*batch, {len(model.variables)}] holding {list(model.variables)} "
                             f"on its last axis, got {y0!r}" if not isinstance(y0, torch.Tensor) else
                             f"y0 must be a tensor [*batch, {len(model.variables)}] holding {list(model.variables)} "
                             f"on its last axis, got shape {tuple(y0.shape)}")
        shapes["y0"] = tuple(y0.shape[:-1])
    batch = _broadcast_named(shapes, lambda name, shape, batch: (
        f"the shape {shape} of {name} does not broadcast with the batch shape {tuple(batch)} of "
        f"{', '.join(k for k in shapes if k != name)}"))
    if y0 is None:
        y0 = model.initial_state(batch, dtype, device)
    else:
        y0 = y0.to(dtype=dtype, device=device).expand(*batch, len(model.variables))
    orders = model.orders(alpha, dtype, device)
    if solver_options.get("implicit"):
        solver_options.setdefault("jacobian", "blockwise")  # every neuron is its own system
    rule = model.spike_rule(refractory, history)
    _adjoint_params(model, current, solver_options)
    return solve_hybrid(_Driven(model, current), y0, t.to(dtype), orders, rule, method=method, memory=memory,
                        surrogate=surrogate, surrogate_scale=surrogate_scale, save_every=save_every,
                        save_spikes=save_spikes, restart_at_spikes=restart_at_spikes, **solver_options)
