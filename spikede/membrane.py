r"""The membrane equation of a spiking layer: the drive and its vector-Jacobian product.

A layer ([spikede.neurons][]) integrates $\tau D^\alpha v = \tau F(v, I)$; the drive $F$ already
includes the $1/\tau$.  A `Drive` gives $F$ and the products of a cotangent $g$ with its
partial derivatives, which the layer's discrete adjoint ([spikede.neuron_adjoint][]) uses in its
reverse sweep.  The base class takes them by autograd; `LeakyDrive`, the drive of the LIF and
IF layers, gives them in closed form, and the compiled kernels ([spikede.fused][]) implement it.
A layer whose drive changes declares a new `Drive`, and its adjoint then follows the new
equation (there is no separate copy of the drive to forget).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch

__all__ = ["Drive", "LeakyDrive"]


class Drive(ABC):
    """The right-hand side $F(v, I; \\tau)$ of a spiking layer's membrane equation.

    Subclasses implement `__call__`; `vjp` defaults to autograd.  Set `linear_in_current` when
    $F = (I + r(v)) / \\tau$ for some $r$: the adjoint then runs its transposed history over
    the input gradient itself and keeps one sequence fewer.
    """

    compiled: ClassVar[bool] = False  # whether spikede.fused implements this drive
    linear_in_current: ClassVar[bool] = False
    vjp_needs_current: ClassVar[bool] = True  # whether `vjp` reads the input (the adjoint then keeps it)

    @abstractmethod
    def __call__(self, v: torch.Tensor, current: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """$F(v, I; \\tau)$, elementwise over the layer."""

    def vjp(self, grad: torch.Tensor, v: torch.Tensor, current: torch.Tensor | None, tau: torch.Tensor,
            value: torch.Tensor | None = None) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        """`(g . dF/dv, g . dF/dI, sum g . dF/dtau)`: the first `None` where F does not depend on v,
        the last `None` unless the caller passes the drive's `value` `F(v, I; tau)` (it computes
        it where tau or the order needs a gradient).  `current` is the step's input."""
        wants_tau = value is not None
        with torch.enable_grad():
            leaves = [v.detach().requires_grad_(True), current.detach().requires_grad_(True),
                      tau.detach().requires_grad_(wants_tau)]
            value = self(*leaves)
            wanted = leaves if wants_tau else leaves[:2]
            grads = torch.autograd.grad(value, wanted, grad, allow_unused=True)
        g_current = grads[1] if grads[1] is not None else torch.zeros_like(grad)
        return grads[0], g_current, (grads[2] if wants_tau else None)


@dataclass(frozen=True)
class LeakyDrive(Drive):
    r"""$F = (-(v - v_{rest}) + I) / \tau$ (leaky, LIF) or $F = I / \tau$ (IF), with its products in closed form:
    $g\,\partial F/\partial I = g / \tau$, $g\,\partial F/\partial v = -g / \tau$ (leaky),
    $\sum g\,\partial F/\partial \tau = -\sum g F / \tau$."""

    v_rest: float = 0.0
    leak: bool = True

    compiled: ClassVar[bool] = True
    linear_in_current: ClassVar[bool] = True
    vjp_needs_current: ClassVar[bool] = False  # but for the tau product, which reads the drive's value

    def __call__(self, v, current, tau):
        if self.leak:
            return (current - (v - self.v_rest)) / tau
        return current / tau

    def vjp(self, grad, v, current, tau, value=None):
        g_current = grad / tau
        g_tau = None if value is None else -(grad * value).sum() / tau
        return (-g_current if self.leak else None), g_current, g_tau
