r"""The FitzHugh–Nagumo neuron with fractional dynamics (FitzHugh 1961; Nagumo et al. 1962).

$$
\begin{aligned}
D^{\alpha_v} v &= v - \frac{v^3}{3} - w + I, \\
\tau\, D^{\alpha_w} w &= v + a - b w.
\end{aligned}
$$

Dimensionless.  A spike is an upward crossing of `v_spike` by the smooth trajectory: nothing is
reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..solvers.hybrid import SpikeRule
from .base import NeuronModel, blocks

__all__ = ["FitzHughNagumo"]


@dataclass(frozen=True)
class FitzHughNagumo(NeuronModel):
    """Fractional FitzHugh–Nagumo neuron with the classical parameters `a = 0.7, b = 0.8, tau = 12.5`.

    Attributes:
        a: offset of the recovery nullcline.
        b: slope of the recovery nullcline.
        tau: recovery time scale (time^alpha).
        v_spike: level whose upward crossing counts as a spike.
    """

    a: float | torch.Tensor = 0.7
    b: float | torch.Tensor = 0.8
    tau: float | torch.Tensor = 12.5
    v_spike: float | torch.Tensor = 1.0

    variables: ClassVar[tuple[str, ...]] = ("v", "w")
    positive: ClassVar[tuple[str, ...]] = ("b", "tau")

    def rhs(self, t, y, current):
        v, w = y[..., 0], y[..., 1]
        return torch.stack([v - v ** 3 / 3.0 - w + current, (v + self.a - self.b * w) / self.tau], -1)

    def jacobian(self, t, y, current):
        v = y[..., 0]
        return blocks([[1.0 - v * v, -1.0], [1.0 / self.tau, -self.b / self.tau]], v)

    def spike_rule(self, refractory: float = 0.0, history: str = "continuous") -> SpikeRule:
        return SpikeRule(0, self.v_spike, None, refractory, history)

    def initial_state(self, batch_shape, dtype, device=None):
        """The resting point at `I = 0`: `v - v^3/3 = (v + a)/b`, solved by Newton's method."""
        a = torch.as_tensor(self.a, dtype=torch.float64).expand(tuple(batch_shape))
        b = torch.as_tensor(self.b, dtype=torch.float64).expand(tuple(batch_shape))
        v = torch.full(tuple(batch_shape), -1.2, dtype=torch.float64)
        for _ in range(50):
            g = v - v ** 3 / 3.0 - (v + a) / b
            v = v - g / (1.0 - v * v - 1.0 / b)
        return torch.stack([v, (v + a) / b], -1).to(dtype=dtype, device=device)
