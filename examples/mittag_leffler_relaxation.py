"""Power-law against exponential relaxation: D^a y = -y, y(0) = 1.

The exact solution is the Mittag-Leffler function E_a(-t^a): for a = 1 it is exp(-t),
for a < 1 it decays fast at first and then like t^(-a) / Gamma(1 - a), a power law.
The solver (product-trapezoid PECE) is drawn over the exact curves.

    python examples/mittag_leffler_relaxation.py [--out DIR] [--quick]
"""

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from spikede import fdeint  # noqa: E402
from spikede.special import relaxation  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--out", default="spikede-out/examples")
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()

steps, t_end = (400, 20.0) if args.quick else (4000, 100.0)
t = torch.linspace(0.0, t_end, steps + 1, dtype=torch.float64)
fig, (lin, log) = plt.subplots(1, 2, figsize=(11, 4.2))
for alpha in (1.0, 0.9, 0.7, 0.5, 0.3):
    y = fdeint(lambda t, y: -y, torch.ones(1, dtype=torch.float64), t, alpha, method="trap")[:, 0]
    exact = relaxation(t, alpha)
    error = (y - exact).abs().max().item()
    tail = "exp(-t)" if alpha == 1 else f"t^-{alpha}/Gamma({1 - alpha:.1f}) = {t_end ** -alpha / math.gamma(1 - alpha):.2e}"
    print(f"alpha {alpha:.1f}: y({t_end:g}) = {exact[-1].item():.3e} (large-t law {tail}); "
          f"max |solver - E_a| = {error:.1e}")
    (line,) = lin.plot(t, exact, lw=1.2, label=f"alpha = {alpha}")
    lin.plot(t[:: steps // 40], y[:: steps // 40], "o", ms=3, color=line.get_color())
    log.loglog(t[1:], exact[1:], lw=1.2, color=line.get_color(), label=f"alpha = {alpha}")
lin.set_xlim(0, t_end / 5)
lin.set_xlabel("t")
lin.set_ylabel("y(t)")
lin.set_title("E_a(-t^a) (lines) and fdeint 'trap' (dots)")
lin.legend(fontsize=8)
log.set_ylim(1e-4, 1.5)
log.set_xlabel("t")
log.set_ylabel("y(t)")
log.set_title("log-log: power-law tails for alpha < 1")
log.legend(fontsize=8)
fig.tight_layout()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
fig.savefig(out / "mittag_leffler_relaxation.png", dpi=110)
print(f"wrote {out / 'mittag_leffler_relaxation.png'}")
