"""Scientific neuron models with fractional dynamics and spike events.

Each model is a frozen record of parameters with its right-hand side, spike rule and resting
state; [simulate][spikede.models.base.simulate] runs one (or a batch of thousands with
different parameters or currents) through the hybrid solver
([spikede.solvers.hybrid][]), and [spikede.models.analysis][] measures the spike trains.
"""

from .analysis import (
    INITIATION_CLASSES,
    STEADY_CLASSES,
    adaptation_index,
    classify_firing,
    fi_curve,
    firing_rate,
    first_spike_latency,
    interspike_intervals,
    isi_statistics,
)
from .base import NeuronModel, simulate
from .fitzhugh_nagumo import FitzHughNagumo
from .hodgkin_huxley import HodgkinHuxley
from .integrate_fire import EIF, LIF, NAUD_PATTERNS, NAUD_TABLE_1, AdEx
from .izhikevich import IZHIKEVICH_PATTERNS, Izhikevich
from .layer import ModelLayer

__all__ = [
    "AdEx", "EIF", "INITIATION_CLASSES", "FitzHughNagumo", "HodgkinHuxley", "IZHIKEVICH_PATTERNS", "Izhikevich", "LIF", "ModelLayer",
    "NAUD_PATTERNS", "NAUD_TABLE_1", "NeuronModel", "adaptation_index", "classify_firing", "fi_curve", "firing_rate",
    "first_spike_latency", "interspike_intervals", "isi_statistics", "simulate", "STEADY_CLASSES",
]
