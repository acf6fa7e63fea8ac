r"""The Hodgkin–Huxley neuron with a fractional membrane equation (Teka et al. 2016).

$$
\begin{aligned}
C\, D^{\alpha} V &= I - \bar g_{Na} m^3 h (V - E_{Na}) - \bar g_K n^4 (V - E_K) - g_L (V - E_L), \\
D^{\alpha_x} x &= \alpha_x(V) (1 - x) - \beta_x(V) x, \qquad x \in \{m, h, n\},
\end{aligned}
$$

with the rate functions of Hodgkin & Huxley (1952) in the modern sign convention (rest near
-65 mV; `V` in mV, time in ms, conductances in mS/cm^2, `C` in uF/cm^2, `I` in uA/cm^2).
Teka et al. make only the membrane equation fractional: `alpha={'v': 0.8}` (the gates keep
order 1).  A spike is the upward crossing of `V_spike` (0 mV); nothing is reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..solvers.hybrid import SpikeRule
from .base import NeuronModel

__all__ = ["HodgkinHuxley"]


def _x_over_one_minus_exp(x: torch.Tensor) -> torch.Tensor:
    """`x / (1 - exp(-x))`, finite at `x = 0` (value 1)."""
    small = x.abs() < 1e-6
    safe = torch.where(small, torch.ones_like(x), x)
    return torch.where(small, 1.0 + 0.5 * x, safe / -torch.expm1(-safe))


def gate_rates(v: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """`((alpha_m, beta_m), (alpha_h, beta_h), (alpha_n, beta_n))` at the potential `v` (mV), in 1/ms."""
    alpha_m = _x_over_one_minus_exp((v + 40.0) / 10.0)
    beta_m = 4.0 * torch.exp(-(v + 65.0) / 18.0)
    alpha_h = 0.07 * torch.exp(-(v + 65.0) / 20.0)
    beta_h = torch.sigmoid((v + 35.0) / 10.0)
    alpha_n = 0.1 * _x_over_one_minus_exp((v + 55.0) / 10.0)
    beta_n = 0.125 * torch.exp(-(v + 65.0) / 80.0)
    return (alpha_m, beta_m), (alpha_h, beta_h), (alpha_n, beta_n)


@dataclass(frozen=True)
class HodgkinHuxley(NeuronModel):
    """Hodgkin–Huxley neuron (squid axon parameters) with fractional orders per variable.

    Attributes:
        C: membrane capacitance (uF/cm^2 ms^(alpha-1)).
        g_Na, g_K, g_L: maximal conductances (mS/cm^2).
        E_Na, E_K, E_L: reversal potentials (mV).
        V_spike: level whose upward crossing counts as a spike (mV).
    """

    C: float | torch.Tensor = 1.0
    g_Na: float | torch.Tensor = 120.0
    g_K: float | torch.Tensor = 36.0
    g_L: float | torch.Tensor = 0.3
    E_Na: float | torch.Tensor = 50.0
    E_K: float | torch.Tensor = -77.0
    E_L: float | torch.Tensor = -54.387
    V_spike: float | torch.Tensor = 0.0

    variables: ClassVar[tuple[str, ...]] = ("v", "m", "h", "n")
    positive: ClassVar[tuple[str, ...]] = ("C", "g_Na", "g_K", "g_L")

    def rhs(self, t, y, current):
        v, m, h, n = y.unbind(-1)
        ionic = (self.g_Na * m ** 3 * h * (v - self.E_Na) + self.g_K * n ** 4 * (v - self.E_K)
                 + self.g_L * (v - self.E_L))
        rates = gate_rates(v)
        gates = [a * (1.0 - x) - b * x for x, (a, b) in zip((m, h, n), rates)]
        return torch.stack([(current - ionic) / self.C, *gates], -1)

    def spike_rule(self, refractory: float = 0.0, history: str = "continuous") -> SpikeRule:
        return SpikeRule(0, self.V_spike, None, refractory, history)

    def initial_state(self, batch_shape, dtype, device=None):
        """`V = -65` mV with every gate at its steady state `alpha / (alpha + beta)` there."""
        v = torch.full(tuple(batch_shape), -65.0, dtype=dtype, device=device)
        gates = [a / (a + b) for a, b in gate_rates(v)]
        return torch.stack([v, *gates], -1)
