"""Implicit steps that start from the last step's Newton matrix, against steps that form their own.

`fdeint(..., implicit=True)` solves each step `y = b + c f(t, y)` by chord Newton iterations with
`M = I - c df/dy`.  A solve on a uniform grid hands each step the matrix the step before ended
with (`spikede.solvers.newton.ChordMemo`), and a step forms its own only where that one does not
serve.  This script times a few solves both ways in the same run (the second way by switching the
memo off) and prints the ratio and the largest difference between the two trajectories (both
solve every step to the Newton tolerance):

- the Brusselator (a = 1, mu = 4, alpha 0.8, T = 20) by `flmm-trap`, implicit `gl` and implicit `trap`;
- a 1024-element state with a dense Jacobian (`-y + 0.1 sin y`, alpha 0.6, implicit `trap`);
- 256 independent Brusselators with `jacobian='blockwise'` (implicit `l1`).

float64, one intra-op thread and torch's default threads, the fastest of `--repeats` runs.  The
Brusselator's grid has h = 20 / `--steps`: below about 500 steps Newton's method fails on its limit
cycle (at h = 0.1, implicit `gl`, with or without the memo).

    python benchmarks/implicit_steps.py [--steps 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from spikede import fdeint
from spikede.solvers import newton

F64 = torch.float64


def brusselator(t, y):
    x, z = y[..., 0], y[..., 1]
    return torch.stack([1 - 5 * x + x**2 * z, 4 * x - x**2 * z], -1)


def cases(steps: int) -> dict:
    grid = torch.linspace(0, 20, steps + 1, dtype=F64)
    start = torch.tensor([0.2, 0.03], dtype=F64)
    big = torch.randn(1024, generator=torch.Generator().manual_seed(0), dtype=F64)
    short = torch.linspace(0, 10, max(steps // 40, 2) + 1, dtype=F64)
    return {
        "Brusselator, flmm-trap": lambda: fdeint(brusselator, start, grid, 0.8, method="flmm-trap"),
        "Brusselator, gl implicit": lambda: fdeint(brusselator, start, grid, 0.8, method="gl", implicit=True),
        "Brusselator, trap implicit": lambda: fdeint(brusselator, start, grid, 0.8, method="trap", implicit=True),
        f"1024 dense, trap implicit ({short.numel() - 1} steps)": lambda: fdeint(
            lambda t, y: -y + 0.1 * torch.sin(y), big, short, 0.6, method="trap", implicit=True),
        "256 x Brusselator, blockwise l1": lambda: fdeint(
            brusselator, start.repeat(256, 1), grid[: steps // 2 + 1], 0.8, method="l1", implicit=True,
            jacobian="blockwise"),
    }


def fastest(solve, repeats: int) -> tuple[float, torch.Tensor]:
    solve()  # warm up
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = solve()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    lookup = newton.ChordMemo.lookup
    for threads in (1, default_threads):
        torch.set_num_threads(threads)
        print(f"\n{threads} thread(s); seconds per solve, the fastest of {args.repeats}")
        print(f"{'solve':<40}{'own matrix':>12}{'memo':>10}{'own / memo':>12}{'max |diff|':>12}")
        for name, solve in cases(args.steps).items():
            with torch.no_grad():
                newton.ChordMemo.lookup = lambda self, *args: None  # every step forms its own matrix
                try:
                    own, y_own = fastest(solve, args.repeats)
                finally:
                    newton.ChordMemo.lookup = lookup
                memo, y_memo = fastest(solve, args.repeats)
            diff = (y_own - y_memo).abs().max().item()
            print(f"{name:<40}{own:>12.3f}{memo:>10.3f}{own / memo:>12.2f}{diff:>12.1e}")


if __name__ == "__main__":
    main()
