"""Convergence study of every fdeint method: error against step size and observed orders.

Solves a smooth problem (exact y = t^3), Diethelm's nonlinear problem and the relaxation
D^a y = -y (exact E_a(-t^a)) with h, h/2, ...; prints the table of observed orders next to
the theory and writes the log-log plot (the same study as `spikede convergence`).

    python examples/solver_accuracy.py [--out DIR] [--quick]
"""

import argparse

from spikede.experiments import run

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--out", default="spikede-out/examples")
parser.add_argument("--quick", action="store_true", help="fewer step sizes and orders (for tests)")
args = parser.parse_args()

alphas, n0, halvings = ((0.5,), 8, 2) if args.quick else ((0.3, 0.5, 0.7, 0.9), 16, 5)
lines, paths, seconds = run(args.out, alphas, n0, halvings)
print("\n".join(lines))
print(f"wrote {paths['png']} and the tables ({seconds:.0f} s)")
