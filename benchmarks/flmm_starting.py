"""The two starting-exponent sets of the `flmm-*` methods on `D^a y = -y`, `y(0) = 1` (`y = E_a(-t^a)`).

`options={"starting_exponents": "up_to_one"}` (the default) makes the starting weights exact for
`t^g`, every `g = k + j a <= 1`; `"below_one"` for `g < 1` only (`spikede.solvers.flmm`).  For each
order `a`, method and set this prints the error (maximum over `[1/2, 1]`, float64) at
N = first ... first * 2^halvings steps on `[0, 1]`, and the order of every halving.  The solution's
`t^g` terms that no starting weight covers (`g > 1`) give errors `h^(1 + g)` next to the `h^2` of
the rule; where the set leaves out `t^1` that `h^2` term is larger and dominates from the coarsest
grid.  About three minutes with the defaults.

    python benchmarks/flmm_starting.py [--alphas 0.3 0.5 0.7 0.9] [--methods flmm-trap ...] [--first 64] [--halvings 5]
"""

from __future__ import annotations

import argparse
import math

import torch

from spikede import fdeint
from spikede.solvers.flmm import STARTING_SETS
from spikede.special import mittag_leffler


def errors(alpha: float, method: str, starting: str, sizes: list[int]) -> list[float]:
    found = []
    for n in sizes:
        t = torch.linspace(0.0, 1.0, n + 1, dtype=torch.float64)
        y = fdeint(lambda s, y: -y, torch.ones(1, dtype=torch.float64), t, alpha, method=method,
                   options={"starting_exponents": starting})[:, 0]
        found.append((y - mittag_leffler(-(t**alpha), alpha))[t >= 0.5].abs().max().item())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.3, 0.5, 0.7, 0.9])
    parser.add_argument("--methods", nargs="+", default=["flmm-trap", "flmm-ng", "flmm-bdf2"])
    parser.add_argument("--first", type=int, default=64, help="steps on the coarsest grid")
    parser.add_argument("--halvings", type=int, default=5)
    args = parser.parse_args()
    sizes = [args.first * 2**k for k in range(args.halvings + 1)]
    print(f"D^a y = -y, y(0) = 1: max error over [1/2, 1] at N = {sizes[0]} and N = {sizes[-1]}, order of each halving")
    print(f"{'alpha':>5}  {'method':<10} {'starting':<10} {'error':>9} {'error':>9}  orders")
    for alpha in args.alphas:
        for method in args.methods:
            for starting in STARTING_SETS:
                found = errors(alpha, method, starting, sizes)
                orders = [math.log2(a / b) for a, b in zip(found, found[1:])]
                print(f"{alpha:5.2f}  {method:<10} {starting:<10} {found[0]:9.2e} {found[-1]:9.2e}  "
                      + " ".join(f"{o:.2f}" for o in orders) + f"   (min {min(orders):.2f}, max {max(orders):.2f})",
                      flush=True)


if __name__ == "__main__":
    main()
