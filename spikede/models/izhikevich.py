r"""The Izhikevich neuron with fractional dynamics (Izhikevich 2003; fractional form: Teka, Upadhyay & Mondal 2018).

$$
\begin{aligned}
D^{\alpha_v} v &= 0.04 v^2 + 5 v + 140 - u + I, \\
D^{\alpha_u} u &= a (b v - u),
\end{aligned}
\qquad v \ge 30 \Rightarrow v \leftarrow c,\; u \leftarrow u + d.
$$

Units: `v` in mV, time in ms (ms^alpha for a fractional order), `I` and `u` in the model's
dimensionless current units.  An implicit step during which `v` runs away has no solution; the
hybrid solver then pins `v` at the cut-off in that step and fires there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..solvers.hybrid import SpikeRule
from .base import NeuronModel, blocks

__all__ = ["Izhikevich", "IZHIKEVICH_PATTERNS"]

IZHIKEVICH_PATTERNS = {
    "RS": (0.02, 0.2, -65.0, 8.0),
    "IB": (0.02, 0.2, -55.0, 4.0),
    "CH": (0.02, 0.2, -50.0, 2.0),
    "FS": (0.1, 0.2, -65.0, 2.0),
    "LTS": (0.02, 0.25, -65.0, 2.0),
    "TC": (0.02, 0.25, -65.0, 0.05),
    "RZ": (0.1, 0.26, -65.0, 2.0),
}
"""Izhikevich (2003), Fig. 2: `(a, b, c, d)` of regular spiking, intrinsically bursting, chattering,
fast spiking, low-threshold spiking, thalamo-cortical and resonator neurons."""


@dataclass(frozen=True)
class Izhikevich(NeuronModel):
    """Fractional Izhikevich neuron; `Izhikevich.pattern('RS')` gives a named cell class.

    Attributes:
        a: recovery rate (1/ms^alpha).
        b: sensitivity of `u` to `v`.
        c: reset of `v` (mV).
        d: increment of `u` at a spike.
        v_peak: spike cut-off (mV).
    """

    a: float | torch.Tensor = 0.02
    b: float | torch.Tensor = 0.2
    c: float | torch.Tensor = -65.0
    d: float | torch.Tensor = 8.0
    v_peak: float | torch.Tensor = 30.0

    variables: ClassVar[tuple[str, ...]] = ("v", "u")
    positive: ClassVar[tuple[str, ...]] = ("a",)

    @classmethod
    def pattern(cls, name: str) -> "Izhikevich":
        """The cell class `name` of Izhikevich (2003): one of `IZHIKEVICH_PATTERNS` ('RS', 'IB', 'CH', ...)."""
        if name not in IZHIKEVICH_PATTERNS:
            raise ValueError(f"unknown Izhikevich pattern {name!r}; the patterns of Izhikevich (2003) are "
                             f"{', '.join(map(repr, IZHIKEVICH_PATTERNS))}")
        a, b, c, d = IZHIKEVICH_PATTERNS[name]
        return cls(a=a, b=b, c=c, d=d)

    def rhs(self, t, y, current):
        v, u = y[..., 0], y[..., 1]
        dv = 0.04 * v * v + 5.0 * v + 140.0 - u + current
        du = self.a * (self.b * v - u)
        return torch.stack([dv, du], -1)

    def jacobian(self, t, y, current):
        v = y[..., 0]
        return blocks([[0.08 * v + 5.0, -1.0], [self.a * self.b, -self.a]], v)

    def spike_rule(self, refractory: float = 0.0, history: str = "continuous") -> SpikeRule:
        def reset(y):
            c = torch.as_tensor(self.c, dtype=y.dtype, device=y.device)
            return torch.stack([torch.zeros_like(y[..., 0]) + c, y[..., 1] + self.d], -1)
        return SpikeRule(0, self.v_peak, reset, refractory, history)

    def initial_state(self, batch_shape, dtype, device=None):
        v = torch.full(tuple(batch_shape), -65.0, dtype=dtype, device=device)
        return torch.stack([v, self.b * v], -1)
