r"""Integrate-and-fire neurons with fractional membrane dynamics: LIF, EIF and AdEx.

Units: time in ms, voltages in mV, currents in pA, conductances in nS, capacitance in pF.  With a
fractional order the capacitance carries the unit pF ms^(alpha - 1) and `tau_w` the unit
ms^alpha, so that both sides of each equation keep their units (as in pycaputo's AdEx).

The exponential term grows without bound once `V` passes `V_T`; the spike is the crossing of
`V_peak`, after which `V` is reset.  An implicit step (`implicit=True`) during which `V` runs
away has no solution; the hybrid solver then pins `V` at `V_peak` in that step and fires there
(pycaputo meets the same case as a complex Lambert W value and shortens the step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..solvers.hybrid import SpikeRule
from .base import NeuronModel, blocks

__all__ = ["LIF", "EIF", "AdEx", "NAUD_PATTERNS", "NAUD_TABLE_1"]


@dataclass(frozen=True)
class LIF(NeuronModel):
    r"""Fractional leaky integrate-and-fire neuron (Teka, Marinov & Santamaria 2014).

    $$
    C\, D^{\alpha} V = -g_L (V - E_L) + I, \qquad V \ge V_{th} \Rightarrow V \leftarrow V_r.
    $$

    The same neuron as [FractionalLIF][spikede.neurons.FractionalLIF] with `tau = C / g_L`,
    `v_rest = E_L`, input `I / g_L`, `threshold = V_th` and `reset='zero'` to `V_r`: with
    `alpha < 1` its memory makes a constant current fire with growing intervals (spike-frequency
    adaptation without an adaptation variable), which Teka et al. studied.

    Attributes:
        C: capacitance (pF ms^(alpha-1)).
        g_L: leak conductance (nS).
        E_L: leak reversal (mV).
        V_th: spike threshold (mV).
        V_reset: reset potential (mV).
    """

    C: float | torch.Tensor = 500.0
    g_L: float | torch.Tensor = 25.0
    E_L: float | torch.Tensor = -70.0
    V_th: float | torch.Tensor = -50.0
    V_reset: float | torch.Tensor = -70.0

    variables: ClassVar[tuple[str, ...]] = ("v",)
    positive: ClassVar[tuple[str, ...]] = ("C", "g_L")

    def rhs(self, t, y, current):
        return ((-self.g_L * (y[..., 0] - self.E_L) + current) / self.C).unsqueeze(-1)

    def jacobian(self, t, y, current):
        return blocks([[-self.g_L / self.C]], y[..., 0])

    def spike_rule(self, refractory: float = 0.0, history: str = "continuous") -> SpikeRule:
        return SpikeRule(0, self.V_th, _constant_reset(self.V_reset), refractory, history)

    def initial_state(self, batch_shape, dtype, device=None):
        return torch.as_tensor(self.E_L, dtype=dtype, device=device).expand(batch_shape).unsqueeze(-1).clone()


def _constant_reset(value):
    """The reset map of a one-variable model: `v <- value`."""
    def reset(y):
        return torch.zeros_like(y) + torch.as_tensor(value, dtype=y.dtype, device=y.device).unsqueeze(-1)
    return reset


@dataclass(frozen=True)
class EIF(NeuronModel):
    r"""Fractional exponential integrate-and-fire neuron (Fourcaud-Trocmé et al. 2003).

    $$
    C\, D^{\alpha} V = -g_L (V - E_L) + g_L \Delta_T \exp\!\left(\frac{V - V_T}{\Delta_T}\right) + I,
    \qquad V \ge V_{peak} \Rightarrow V \leftarrow V_r.
    $$

    Defaults: the cortical parameters of Brette & Gerstner (2005) without adaptation.

    Attributes:
        C: capacitance (pF ms^(alpha-1)).
        g_L: leak conductance (nS).
        E_L: leak reversal (mV).
        V_T: threshold of the exponential (mV).
        delta_T: slope factor (mV).
        V_peak: spike cut-off (mV).
        V_reset: reset potential (mV).
    """

    C: float | torch.Tensor = 281.0
    g_L: float | torch.Tensor = 30.0
    E_L: float | torch.Tensor = -70.6
    V_T: float | torch.Tensor = -50.4
    delta_T: float | torch.Tensor = 2.0
    V_peak: float | torch.Tensor = 0.0
    V_reset: float | torch.Tensor = -70.6

    variables: ClassVar[tuple[str, ...]] = ("v",)
    positive: ClassVar[tuple[str, ...]] = ("C", "g_L", "delta_T")

    def membrane_current(self, v: torch.Tensor) -> torch.Tensor:
        """The leak and the exponential spike current, `-g_L (V - E_L) + g_L Delta_T exp((V - V_T) / Delta_T)`."""
        return -self.g_L * (v - self.E_L) + self.g_L * self.delta_T * torch.exp((v - self.V_T) / self.delta_T)

    def rhs(self, t, y, current):
        return ((self.membrane_current(y[..., 0]) + current) / self.C).unsqueeze(-1)

    def membrane_conductance(self, v: torch.Tensor) -> torch.Tensor:
        """`d membrane_current / dV = -g_L + g_L exp((V - V_T) / Delta_T)`."""
        return self.g_L * (torch.exp((v - self.V_T) / self.delta_T) - 1.0)

    def jacobian(self, t, y, current):
        return blocks([[self.membrane_conductance(y[..., 0]) / self.C]], y[..., 0])

    def spike_rule(self, refractory: float = 0.0, history: str = "continuous") -> SpikeRule:
        return SpikeRule(0, self.V_peak, _constant_reset(self.V_reset), refractory, history)

    def initial_state(self, batch_shape, dtype, device=None):
        return torch.as_tensor(self.E_L, dtype=dtype, device=device).expand(batch_shape).unsqueeze(-1).clone()


@dataclass(frozen=True)
class AdEx(EIF):
    r"""Fractional adaptive exponential integrate-and-fire neuron (Brette & Gerstner 2005).

    $$
    \begin{aligned}
    C\, D^{\alpha_V} V &= -g_L (V - E_L) + g_L \Delta_T \exp\!\left(\frac{V - V_T}{\Delta_T}\right) - w + I, \\
    \tau_w D^{\alpha_w} w &= a (V - E_L) - w,
    \end{aligned}
    \qquad V \ge V_{peak} \Rightarrow V \leftarrow V_r,\; w \leftarrow w + b.
    $$

    Defaults: Brette & Gerstner (2005).  [AdEx.pattern][spikede.models.integrate_fire.AdEx.pattern] gives the
    parameter sets of Naud et al. (2008), Table 1, with their step currents.  The membrane
    parameters are [EIF][spikede.models.integrate_fire.EIF]'s (`C`, `g_L`, `E_L`, `V_T`, `delta_T`,
    `V_peak`, `V_reset`).

    Attributes:
        a: subthreshold adaptation (nS).
        tau_w: adaptation time constant (ms^alpha).
        b: spike-triggered adaptation increment (pA).
    """

    a: float | torch.Tensor = 4.0
    tau_w: float | torch.Tensor = 144.0
    b: float | torch.Tensor = 80.5

    variables: ClassVar[tuple[str, ...]] = ("v", "w")
    positive: ClassVar[tuple[str, ...]] = ("C", "g_L", "delta_T", "tau_w")

    @classmethod
    def pattern(cls, name: str) -> tuple["AdEx", float]:
        """`(model, current)` for one of the firing patterns of Naud et al. (2008), Table 1.

        Names: `'tonic'`, `'adapting'`, `'initial_burst'`, `'regular_bursting'`,
        `'delayed_accelerating'`, `'delayed_regular_bursting'`, `'transient'`, `'irregular'`
        (their Fig. 4a-h).  The current (pA) is the step that shows the pattern; the spike
        cut-off is 0 mV.  Six sets are the published Table 1.  With the published rows for
        Fig. 4f and 4g a step current does not give their patterns (4f stays below threshold
        for 500 ms, 4g fires tonically); `'delayed_regular_bursting'` and `'transient'` take the
        values P. Müller fitted to the figures (Heidelberg thesis, used by Brian 2's Naud et al.
        example): `C = 100`, `g_L = 10`, `E_L = -65`, `tau_w = 90`, `V_r = -47` with
        `a = -10, b = 30, I = 110` (4f) and `a = 10, b = 100, I = 180` (4g).  The published rows
        are kept in `NAUD_TABLE_1`.
        """
        if name not in NAUD_PATTERNS:
            raise ValueError(f"unknown AdEx pattern {name!r}; the patterns of Naud et al. (2008) are "
                             f"{', '.join(map(repr, NAUD_PATTERNS))}")
        values = dict(NAUD_PATTERNS[name])
        current = values.pop("I")
        return cls(**values), current

    @classmethod
    def patterns(cls, names=None, dtype: torch.dtype = torch.float64) -> tuple["AdEx", torch.Tensor]:
        """Several Naud et al. (2008) patterns as one batched model: `(model, currents)`, each
        parameter a tensor `[len(names)]` (default: all of `NAUD_PATTERNS`, in order)."""
        names = list(NAUD_PATTERNS) if names is None else list(names)
        models = [cls.pattern(name) for name in names]
        fields = {key: torch.tensor([getattr(m, key) for m, _ in models], dtype=dtype)
                  for key in NAUD_PATTERNS[names[0]] if key != "I"}
        return cls(**fields), torch.tensor([current for _, current in models], dtype=dtype)

    def rhs(self, t, y, current):
        v, w = y[..., 0], y[..., 1]
        dv = (self.membrane_current(v) - w + current) / self.C
        dw = (self.a * (v - self.E_L) - w) / self.tau_w
        return torch.stack([dv, dw], -1)

    def jacobian(self, t, y, current):
        return blocks([[self.membrane_conductance(y[..., 0]) / self.C, -1.0 / self.C],
                       [self.a / self.tau_w, -1.0 / self.tau_w]], y[..., 0])

    def spike_rule(self, refractory: float = 0.0, history: str = "continuous") -> SpikeRule:
        def reset(y):
            v_reset = torch.as_tensor(self.V_reset, dtype=y.dtype, device=y.device)
            return torch.stack([torch.zeros_like(y[..., 0]) + v_reset, y[..., 1] + self.b], -1)
        return SpikeRule(0, self.V_peak, reset, refractory, history)

    def initial_state(self, batch_shape, dtype, device=None):
        v = torch.as_tensor(self.E_L, dtype=dtype, device=device).expand(batch_shape)
        return torch.stack([v, torch.zeros_like(v)], -1)


def _naud(C, g_L, E_L, a, tau_w, b, V_reset, I):
    return dict(C=C, g_L=g_L, E_L=E_L, V_T=-50.0, delta_T=2.0, a=a, tau_w=tau_w, b=b, V_peak=0.0, V_reset=V_reset,
                I=I)


NAUD_PATTERNS = {
    "tonic": _naud(200.0, 10.0, -70.0, 2.0, 30.0, 0.0, -58.0, 500.0),
    "adapting": _naud(200.0, 12.0, -70.0, 2.0, 300.0, 60.0, -58.0, 500.0),
    "initial_burst": _naud(130.0, 18.0, -58.0, 4.0, 150.0, 120.0, -50.0, 400.0),
    "regular_bursting": _naud(200.0, 10.0, -58.0, 2.0, 120.0, 100.0, -46.0, 210.0),
    "delayed_accelerating": _naud(200.0, 12.0, -70.0, -10.0, 300.0, 0.0, -58.0, 300.0),
    "delayed_regular_bursting": _naud(100.0, 10.0, -65.0, -10.0, 90.0, 30.0, -47.0, 110.0),
    "transient": _naud(100.0, 10.0, -65.0, 10.0, 90.0, 100.0, -47.0, 180.0),
    "irregular": _naud(100.0, 12.0, -60.0, -11.0, 130.0, 30.0, -48.0, 160.0),
}
NAUD_TABLE_1 = {  # Naud et al. (2008) Table 1 as published (pycaputo's Naud4a-h); see AdEx.pattern
    **NAUD_PATTERNS,
    "delayed_regular_bursting": _naud(200.0, 12.0, -70.0, -6.0, 300.0, 0.0, -58.0, 110.0),
    "transient": _naud(100.0, 10.0, -65.0, -10.0, 90.0, 30.0, -47.0, 350.0),
}
"""Naud et al. (2008), Table 1: AdEx parameters (pF, nS, mV, ms, pA) and step current `I` per pattern."""
