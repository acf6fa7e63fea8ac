"""Accuracy of `spikede.special.prabhakar` over the complex plane, against the series summed in
high precision (`tests/test_special.py`'s reference, mpmath).

For each (alpha, beta, gamma) this evaluates `|z|^(1/alpha) = 1, 8, 30, 60, 100, 200` at six random
arguments (seeded) and three chosen ones (just inside the sector edge `alpha pi`, at `0.999 pi` for
alpha <= 1, and just above the positive axis), and prints the three largest relative errors with
where they occurred (radius `|z|^(1/alpha)`, `arg z / pi`).  Takes about 20 seconds.

    python benchmarks/special_accuracy.py [--seed 1]
"""

from __future__ import annotations

import argparse
import cmath
import math
import random
import sys
from pathlib import Path

import torch

from spikede.special import prabhakar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for the tests' reference
from tests.test_special import _prabhakar_series  # noqa: E402

PARAMETERS = [(0.5, 1.0, 0.7), (0.8, 1.3, 2.5), (0.3, 0.6, 1.7), (0.1, 1.0, 1.5), (1.0, 2.0, 0.4), (1.3, 1.0, 0.7),
              (1.7, 1.2, 2.5), (2.0, 1.0, 0.5), (0.7, 1.1, 3.0), (0.9, 3.0, 4.5), (0.6, 0.2, 0.2), (1.9, 2.5, 1.2)]
RADII = (1.0, 8.0, 30.0, 60.0, 100.0, 200.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print("alpha beta gamma | three largest relative errors @ (|z|^(1/alpha), arg z / pi)")
    worst = 0.0
    for alpha, beta, gamma in PARAMETERS:
        angles = [alpha * math.pi * (1 - 1e-3), min(alpha, 1.0) * math.pi * 0.999, 1e-4]
        points = [cmath.rect(r**alpha, t) for r in RADII for t in [rng.uniform(-math.pi, math.pi) for _ in range(6)]
                  + angles]
        got = prabhakar(torch.tensor(points, dtype=torch.complex128), alpha, beta, gamma).tolist()
        errors = []
        for z, value in zip(points, got):
            want = _prabhakar_series(z, alpha, beta, gamma)
            errors.append((abs(value - want) / abs(want), abs(z) ** (1 / alpha), cmath.phase(z) / math.pi))
        errors.sort(reverse=True)
        worst = max(worst, errors[0][0])
        print(f"{alpha} {beta} {gamma} | " + "  ".join("%.1e @ (%.3g, %.3f)" % e for e in errors[:3]), flush=True)
    print(f"worst: {worst:.2e}")


if __name__ == "__main__":
    main()
