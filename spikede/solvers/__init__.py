"""Fractional ODE solvers: `fdeint` and its parts (weights, memory kernels, schemes)."""

from .adjoint import DiscreteAdjoint, StepInputs
from .fdeint import FRACTIONAL_METHODS, fdeint, fdeint_adjoint
from .memory import HistoryKernel
from .newton import ConvergenceError
from .schemes import SCHEMES, Scheme

__all__ = [
    "DiscreteAdjoint", "FRACTIONAL_METHODS", "SCHEMES", "ConvergenceError", "HistoryKernel", "Scheme", "StepInputs",
    "fdeint", "fdeint_adjoint",
]
