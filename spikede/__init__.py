"""spikede: fractional-order differential equations with spiking events, in PyTorch."""

from .events import RESET_MODES, EventParams, apply_events, check_reset, fire_and_reset
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
    "RESET_MODES",
    "EventParams",
    "Surrogate",
    "SurrogateSpec",
    "apply_events",
    "available_surrogates",
    "check_reset",
    "fire_and_reset",
    "get_surrogate",
    "heaviside",
    "register_surrogate",
    "spike",
]
