"""spikede: fractional-order differential equations with spiking events, in PyTorch."""

from .events import RESET_MODES, EventParams, apply_events, check_reset, fire_and_reset
from . import models, solvers, special
from .solvers import ConvergenceError, DiscreteAdjoint, StepInputs, fdeint, fdeint_adjoint
from .solvers.native import EngineWarning, engine_status, set_engine
from .network import TimeDistributed, fractionalize, latency_encode, rate_encode, reset, reset_net
from .membrane import Drive, LeakyDrive
from .neurons import FractionalIF, FractionalLIF, IFNeuron, LIFNeuron
from .special import mittag_leffler
from .compat import SNNWrapper
from .surrogate import (
    Surrogate,
    SurrogateSpec,
    available_surrogates,
    get_surrogate,
    heaviside,
    register_surrogate,
    spike,
)

__version__ = "0.1.0"

__all__ = [
    "ConvergenceError",
    "DiscreteAdjoint",
    "Drive",
    "RESET_MODES",
    "SNNWrapper",
    "StepInputs",
    "EngineWarning",
    "EventParams",
    "FractionalIF",
    "FractionalLIF",
    "IFNeuron",
    "LeakyDrive",
    "LIFNeuron",
    "Surrogate",
    "SurrogateSpec",
    "TimeDistributed",
    "apply_events",
    "available_surrogates",
    "check_reset",
    "engine_status",
    "fdeint",
    "fdeint_adjoint",
    "fire_and_reset",
    "fractionalize",
    "get_surrogate",
    "heaviside",
    "latency_encode",
    "mittag_leffler",
    "models",
    "rate_encode",
    "register_surrogate",
    "reset",
    "reset_net",
    "set_engine",
    "solvers",
    "special",
    "spike",
]
