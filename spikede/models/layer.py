r"""A scientific neuron model as a spiking network layer: input currents in, surrogate spikes out.

`ModelLayer(AdEx(), alpha=0.8, dt=0.1)` takes a current sequence `[T, *batch]` (e.g. the output
of a `TimeDistributed(nn.Linear(...))`) and returns the spikes `[T, *batch]` of one model neuron
per input element, with the surrogate gradient of [spike][spikede.surrogate.spike].  As in
[FractionalLIF][spikede.neurons.FractionalLIF], the step that produces the state at `t_n` uses
the input `I_n` (`x[n - 1]`, zero-based), and every call starts at the model's resting state.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import torch
from torch import nn

from ..solvers.adjoint import DiscreteAdjoint, StepInputs
from ..surrogate import check_dtype
from .base import NeuronModel, simulate

__all__ = ["ModelLayer"]


class ModelLayer(nn.Module):
    """Run a [NeuronModel][spikede.models.base.NeuronModel] over a sequence of input currents.

    Args:
        model: the neuron model; its float or tensor parameters broadcast over the input's
            trailing axes (e.g. `AdEx(b=torch.rand(128) * 100)` for 128 neurons).
        alpha: order(s), as for [simulate][spikede.models.base.simulate].
        dt: time step, in the model's time unit.
        surrogate: surrogate of the spikes (`'sigmoid'` by default).
        surrogate_scale: its scale, in the inverse unit of the spiking variable (mV for the
            biophysical models); `None`: the surrogate's default.
        method: `'l1'` or `'gl'`, explicit (the input is read per step).
        memory: `None`, a window `M` or `'soe'`, as for `simulate`.
        history: `'reset'` (default here: the memory remembers the resets, the discrete-time
            semantics of `FractionalLIF`) or `'continuous'`, as for `simulate`.
        refractory: absolute refractory period (time units).
        learn: names of model parameters to train (each becomes an `nn.Parameter`).
        adjoint: gradients by the discrete adjoint of the hybrid solve (the same as autograd's, without
            a graph of every step): the learned parameters, the order where it is a tensor that
            requires grad, and the input currents row by row
            ([StepInputs][spikede.solvers.adjoint.StepInputs]).  Not with the `'noisy'` surrogate.
        return_states: also return the states `[T, *batch, C]`.
        device: where the learned parameters are created (like `nn.Linear`).
        dtype: their dtype (default: torch's default dtype).
    """

    def __init__(self, model: NeuronModel, alpha: float | Sequence[float] | torch.Tensor = 1.0, dt: float = 0.1, *,
                 surrogate: str = "sigmoid", surrogate_scale: float | None = None, method: str = "l1",
                 memory: int | str | None = None, history: str = "reset", refractory: float = 0.0,
                 learn: Sequence[str] = (), adjoint: bool = False, return_states: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        if not isinstance(model, NeuronModel):
            raise TypeError(f"model must be a NeuronModel, got {type(model).__name__}")
        if not isinstance(dt, (int, float)) or isinstance(dt, bool) or not dt > 0:
            raise ValueError(f"dt must be a number > 0, got {dt!r}")
        names = [f.name for f in dataclasses.fields(model)]
        unknown = [name for name in learn if name not in names]
        if unknown:
            raise ValueError(f"learn names parameters {unknown} that {type(model).__name__} does not have; "
                             f"its parameters are {names}")
        self.model, self.alpha, self.dt = model, alpha, float(dt)
        self.options = dict(surrogate=surrogate, surrogate_scale=surrogate_scale, method=method, memory=memory,
                            history=history, refractory=refractory)
        if not isinstance(adjoint, bool):
            raise TypeError(f"adjoint must be True or False, got {adjoint!r}")
        self.adjoint = adjoint
        self.return_states = return_states
        self.learned = tuple(learn)
        factory = dict(device=device, dtype=check_dtype(dtype) or torch.get_default_dtype())
        for name in self.learned:
            self.register_parameter(name, nn.Parameter(torch.as_tensor(getattr(model, name), **factory).clone()))

    def forward(self, x: torch.Tensor):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 1:
            raise TypeError(f"x must be a floating-point tensor [T, *batch] of input currents, got {x!r}")
        steps = x.shape[0]
        t = torch.arange(steps + 1, dtype=x.dtype, device=x.device) * self.dt
        inputs = StepInputs(x)
        model = self.model.replace(**{name: getattr(self, name) for name in self.learned})

        def current(s: torch.Tensor) -> torch.Tensor:
            return inputs[int(round(float(s) / self.dt))]

        options = dict(self.options, adjoint=DiscreteAdjoint(inputs=inputs)) if self.adjoint else self.options
        solution = simulate(model, t, current=current, alpha=self.alpha, y0=self._rest(model, x), **options)
        spikes = solution.spikes[1:]
        return (spikes, solution.y[1:]) if self.return_states else spikes

    def _rest(self, model: NeuronModel, x: torch.Tensor) -> torch.Tensor:
        batch = torch.broadcast_shapes(tuple(x.shape[1:]), tuple(model.batch_shape))
        return model.to(dtype=x.dtype, device=x.device).initial_state(batch, x.dtype, x.device)

    def extra_repr(self) -> str:
        adjoint = ", adjoint=True" if self.adjoint else ""
        method = self.options["method"]
        return f"{type(self.model).__name__}, alpha={self.alpha}, dt={self.dt}, method={method!r}{adjoint}"
