r"""The event layer: threshold crossing and reset after every solver step.

Given the potential `v` that the integrator proposes for step n,

$$
s_n = H(v_n - \theta), \qquad
v_n^{+} = \begin{cases}
    v_n - \theta s_n & \text{reset = 'subtract'}\\
    (1 - s_n) v_n + s_n v_{reset} & \text{reset = 'zero'}\\
    v_n & \text{reset = 'none'}
\end{cases}
$$

The forward of `H` is the exact step (`H(0) = 1`); its backward is the
chosen surrogate.  `v_n^{+}` is what the solver stores in the history, so a
fractional kernel remembers the resets.  `detach_reset=True` uses `s_n`
detached inside the reset, so no gradient flows through the reset path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .surrogate import Surrogate, spike

__all__ = ["RESET_MODES", "EventParams", "fire_and_reset", "apply_events", "check_reset"]

RESET_MODES = ("subtract", "zero", "none")


def check_reset(reset: object) -> str:
    """Return `reset` if it is a valid reset mode, else raise `ValueError`."""
    if reset not in RESET_MODES:
        valid = ", ".join(repr(m) for m in RESET_MODES)
        raise ValueError(f"unknown reset {reset!r}; valid reset modes are {valid}")
    return reset  # type: ignore[return-value]


@dataclass(frozen=True)
class EventParams:
    """How a spiking state fires and resets (an immutable record, shared by solvers and neurons)."""

    reset: str = "subtract"
    v_reset: float = 0.0
    detach_reset: bool = False

    def __post_init__(self) -> None:
        check_reset(self.reset)
        if not isinstance(self.detach_reset, bool):
            raise TypeError(f"detach_reset must be a bool, got {self.detach_reset!r}")

    def after(self, v: torch.Tensor, s: torch.Tensor, threshold) -> torch.Tensor:
        """The potential after the reset of `v` by the spikes `s` (detached with `detach_reset`)."""
        return _reset(v, s.detach() if self.detach_reset else s, threshold, self.reset, self.v_reset)

    def undo(self, v: torch.Tensor, s: torch.Tensor, threshold: torch.Tensor,
             proposed: torch.Tensor | None = None) -> tuple:
        """The reset's derivatives at one step, from the post-reset `v` and the spikes `s`:
        `(p, dv/dp, dv/ds, dv/dtheta)` with `p` the potential before the reset (rebuilt as
        `v + theta s` for `'subtract'` and `v` for `'none'`; `'zero'` forgets it, so the caller
        keeps it as `proposed`)."""
        if self.reset == "subtract":
            return v + threshold * s, 1.0, -threshold, -s
        if self.reset == "zero":
            return proposed, 1.0 - s, self.v_reset - proposed, 0.0
        return v, 1.0, 0.0, 0.0


def fire_and_reset(
    v: torch.Tensor,
    threshold: float | torch.Tensor = 1.0,
    surrogate: str | Surrogate = "sigmoid",
    *,
    surrogate_scale: float | None = None,
    reset: str = "subtract",
    v_reset: float | torch.Tensor = 0.0,
    detach_reset: bool = False,
    training: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fire `s = H(v - threshold)` and apply the reset; return `(s, v_after_reset)`.

    `threshold` and `v_reset` may be tensors broadcastable to `v` (learnable
    thresholds receive gradients through the surrogate and, unless
    `detach_reset`, through the reset).  `surrogate` is a registered name
    (with `surrogate_scale`) or a `Surrogate` module,
    whose own scale and train/eval state are then used.
    """
    check_reset(reset)
    if isinstance(surrogate, Surrogate):
        if surrogate_scale is not None:
            raise ValueError(
                "surrogate_scale must be None when surrogate is a Surrogate module "
                f"(it carries its own scale, {surrogate.scale}); got surrogate_scale={surrogate_scale!r}"
            )
        s = surrogate(v - threshold)
    else:
        s = spike(v - threshold, surrogate, surrogate_scale, training=training)
    return s, _reset(v, s.detach() if detach_reset else s, threshold, reset, v_reset)


def _reset(v: torch.Tensor, s: torch.Tensor, threshold, reset: str, v_reset) -> torch.Tensor:
    if reset == "subtract":
        return v - threshold * s
    if reset == "zero":
        return (1.0 - s) * v + s * v_reset
    return v


def apply_events(v: torch.Tensor, threshold, surrogate: Surrogate, params: EventParams):
    """`fire_and_reset` with the reset described by an `EventParams` record."""
    return fire_and_reset(
        v,
        threshold,
        surrogate,
        reset=params.reset,
        v_reset=params.v_reset,
        detach_reset=params.detach_reset,
    )
