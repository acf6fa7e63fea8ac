"""Helpers to build spiking networks: state reset, time-distributed layers, encoders, fractionalize."""

from __future__ import annotations

import copy
import numbers

import torch
from torch import nn

from .neurons import FractionalLIF, LIFNeuron, SpikingNeuron

__all__ = ["reset", "reset_net", "TimeDistributed", "fractionalize", "rate_encode", "latency_encode"]


def reset(model: nn.Module) -> nn.Module:
    """Clear the state of every spiking neuron in `model` (potentials, histories, records)."""
    for module in model.modules():
        if isinstance(module, SpikingNeuron):
            module.reset()
    return model


reset_net = reset  # SpikingJelly's name (`spikingjelly.activation_based.functional.reset_net`)


class TimeDistributed(nn.Module):
    """Apply a stateless layer to every time step of `[T, B, ...]` by folding time into batch.

    `TimeDistributed(nn.Linear(784, 256))(x)` with `x` of shape `[T, B, 784]`
    returns `[T, B, 256]` in one call of the layer on `[T * B, 784]`.
    """

    def __init__(self, layer: nn.Module):
        super().__init__()
        if not isinstance(layer, nn.Module):
            raise TypeError(f"layer must be an nn.Module (e.g. nn.Linear(784, 256)), got {type(layer).__name__}")
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2:
            raise ValueError(f"TimeDistributed expects input [T, B, ...], got shape {tuple(x.shape)}")
        steps, batch = x.shape[:2]
        y = self.layer(x.reshape(steps * batch, *x.shape[2:]))
        return y.reshape(steps, batch, *y.shape[1:])


def _neuron_kwargs(neuron: LIFNeuron) -> dict:
    return dict(
        tau=neuron.tau.item(),
        threshold=neuron.threshold.item(),
        v_rest=neuron.v_rest,
        surrogate=copy.deepcopy(neuron.surrogate),
        dt=neuron.dt,
        reset=neuron.events.reset,
        v_reset=neuron.events.v_reset,
        detach_reset=neuron.events.detach_reset,
        learn_tau=isinstance(neuron.log_tau, nn.Parameter),
        learn_threshold=isinstance(neuron.threshold, nn.Parameter),
        step_mode=neuron.step_mode,
        record=neuron.record,
    )


def fractionalize(model: nn.Module, alpha=0.8, **options) -> nn.Module:
    """A copy of `model` with every `LIFNeuron` replaced by a `FractionalLIF`.

    `alpha`: one order for all; or one entry per neuron layer in `model.modules()` order, each
    an order or a list of orders (a multi-term layer, e.g. `[[0.3, 0.5, 0.7], 0.8]`).
    The new neurons keep tau, threshold, surrogate, reset, dt and step mode;
    `options` (e.g. `method='l1'`, `memory=64`, `learn_alpha=True`, `coefficients=[...]`) go to
    every `FractionalLIF`.  `IFNeuron` layers are left as they are.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module holding LIFNeuron layers, got {type(model).__name__}")
    model = copy.deepcopy(model)
    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if type(child) is LIFNeuron
    ]
    if isinstance(alpha, numbers.Real):
        alphas = [alpha] * len(targets)
    else:
        alphas = list(alpha)
        if len(alphas) != len(targets):
            raise ValueError(f"alpha has {len(alphas)} entries but the model has {len(targets)} LIFNeuron layers")
    for (parent, name, child), a in zip(targets, alphas):
        layer_alpha = float(a) if isinstance(a, numbers.Real) else [float(x) for x in a]
        neuron = FractionalLIF(alpha=layer_alpha, **{**_neuron_kwargs(child), **options})
        neuron.to(device=child.threshold.device)
        setattr(parent, name, neuron)
    return model


def _check_unit_interval(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"{name} must lie in [0, 1] (got values in [{x.min().item():.4g}, {x.max().item():.4g}]); "
            "rescale it first, e.g. x / x.max()"
        )


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    return steps


def rate_encode(x: torch.Tensor, steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Poisson/Bernoulli rate code: `s[t] ~ Bernoulli(x)` independently per step; `[steps, *x.shape]`."""
    _check_unit_interval(x, "x")
    steps = _check_steps(steps)
    u = torch.rand((steps, *x.shape), dtype=x.dtype, device=x.device, generator=generator)
    return (u < x).to(x.dtype)


def latency_encode(x: torch.Tensor, steps: int) -> torch.Tensor:
    """Latency code: one spike at step `round((1 - x) (steps - 1))`; `x = 0` never fires."""
    _check_unit_interval(x, "x")
    steps = _check_steps(steps)
    when = torch.round((1.0 - x) * (steps - 1)).long()
    t = torch.arange(steps, device=x.device).reshape(steps, *([1] * x.dim()))
    return ((t == when) & (x > 0)).to(x.dtype)
