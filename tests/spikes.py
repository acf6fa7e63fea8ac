"""Comparing spike trains between two code paths (used by the tests only)."""

import torch


def same_spikes(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Spike trains are threshold decisions, 0 or 1, not sums: two code paths (engines, step
    modes, a hand-written rule) agree on them exactly unless a potential lies within rounding of
    the threshold, which the tests' seeded inputs avoid.  So they are compared value for value;
    the potentials behind them are compared with a tolerance where a test has them."""
    return a.shape == b.shape and bool(((a == 0) | (a == 1)).all()) and int((a != b).sum()) == 0
