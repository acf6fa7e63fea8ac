"""spikede: fractional-order differential equations with spiking events, in PyTorch."""

from .events import RESET_MODES, EventParams, apply_events, check_reset, fire_and_reset
from . import solvers, special
from .solvers import ConvergenceError, fdeint
from .special import mittag_leffler
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
    "RESET_MODES",
    "EventParams",
    "Surrogate",
    "SurrogateSpec",
    "apply_events",
    "available_surrogates",
    "check_reset",
    "fdeint",
    "fire_and_reset",
    "get_surrogate",
    "heaviside",
    "mittag_leffler",
    "register_surrogate",
    "solvers",
    "special",
    "spike",
]
