"""Speed of the vectorised history sum against a naive Python loop over the history.

A 4096-dimensional linear system D^a y = A y (A = -I + small coupling, applied as a
matrix-free product), 2000 steps of Grünwald–Letnikov with full history, float64.
Both runs use the same weights and local step; the naive one loops over past steps
in Python (this loop lives only here).  Prints both times and their ratio, measured
in the same run, plus the largest difference between the two solutions.

    python benchmarks/solver_history.py [--steps 2000] [--dim 4096]
"""

from __future__ import annotations

import argparse
import time

import torch

from spikede import fdeint
from spikede.solvers.weights import grunwald_letnikov


def naive_gl(func, y0, t, alpha):
    n_steps = t.numel() - 1
    h = (t[-1] - t[0]).item() / n_steps
    g = grunwald_letnikov(alpha, n_steps).to(y0.dtype)
    ys = [y0]
    for n in range(1, n_steps + 1):
        history = torch.zeros_like(y0)
        for j in range(1, n + 1):
            history += g[j] * (ys[n - j] - y0)
        ys.append(y0 + h**alpha * func(t[n - 1], ys[n - 1]) - history)
    return torch.stack(ys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--dim", type=int, default=4096)
    parser.add_argument("--alpha", type=float, default=0.7)
    args = parser.parse_args()

    torch.manual_seed(0)
    dim = args.dim
    coupling = 0.1 * torch.randn(dim, dtype=torch.float64) / dim**0.5
    func = lambda t, y: -y + coupling * y.roll(1)  # noqa: E731
    y0 = torch.randn(dim, dtype=torch.float64)
    t = torch.linspace(0.0, 10.0, args.steps + 1, dtype=torch.float64)

    with torch.no_grad():
        start = time.perf_counter()
        fast = fdeint(func, y0, t, args.alpha, method="gl")
        fast_time = time.perf_counter() - start
        start = time.perf_counter()
        slow = naive_gl(func, y0, t, args.alpha)
        slow_time = time.perf_counter() - start

    print(f"GL, full history, state {dim}, {args.steps} steps, float64, {torch.get_num_threads()} threads")
    print(f"  fdeint (blocked contraction)  {fast_time:8.2f} s")
    print(f"  naive Python history loop     {slow_time:8.2f} s")
    print(f"  speed-up                      {slow_time / fast_time:8.1f} x")
    print(f"  max |difference|              {(fast - slow).abs().max().item():8.2e}")


if __name__ == "__main__":
    main()
