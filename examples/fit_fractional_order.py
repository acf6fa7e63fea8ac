"""Recover the fractional order of a neuron from data by gradient descent through the solver.

Synthetic data from a fractional LIF neuron (`spikede.models.LIF`, C D^alpha V = -g_L (V - E_L) + I,
true alpha = 0.7, tau = C / g_L = 20 ms^alpha, 1 s at 0.5 ms steps), then two fits that start
0.2 away from the true order:

1. **Voltage trace.**  A subthreshold current (two sinusoids); the loss is the mean squared
   voltage error; alpha and tau are fitted together with L-BFGS (autograd through the L1
   scheme and its full memory).
2. **Spike train.**  A suprathreshold current; the loss is the van Rossum distance (van Rossum
   2001; exponential kernel, 10 ms) between the two spike rasters, whose gradient reaches alpha
   through the sigmoid surrogate of the spikes and resets (`surrogate='sigmoid'`, scale 0.5 per
   mV); tau is known; Adam with a decaying step.

Prints the recovered values, their errors and the run times, and writes a figure.

    python examples/fit_fractional_order.py [--out DIR] [--quick]
"""

import argparse
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from spikede.models import LIF, simulate  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--out", default="spikede-out/examples")
parser.add_argument("--quick", action="store_true", help="a 200 ms trace and fewer iterations (for tests)")
args = parser.parse_args()

F64 = torch.float64
TRUE_ALPHA, TRUE_TAU, START_ALPHA, START_TAU = 0.7, 20.0, 0.9, 25.0
step, duration = 0.5, (200.0 if args.quick else 1000.0)
t = torch.linspace(0.0, duration, int(round(duration / step)) + 1, dtype=F64)


def subthreshold(s):
    """pA: two sinusoids that keep the neuron below threshold."""
    return 300.0 + 150.0 * torch.sin(2 * math.pi * s / 200.0) + 100.0 * torch.sin(2 * math.pi * s / 47.0)


def suprathreshold(s):
    """pA: a slowly modulated current that makes the neuron fire."""
    return 4000.0 + 1500.0 * torch.sin(2 * math.pi * s / 250.0)


def neuron(alpha, tau, current, **options):
    return simulate(LIF(C=tau * 25.0), t, current=current, alpha=alpha, **options)


with torch.no_grad():
    observed_voltage = neuron(torch.tensor(TRUE_ALPHA, dtype=F64), torch.tensor(TRUE_TAU, dtype=F64), subthreshold)
    observed_spikes = neuron(torch.tensor(TRUE_ALPHA, dtype=F64), torch.tensor(TRUE_TAU, dtype=F64), suprathreshold)

# 1. voltage trace: alpha and tau by L-BFGS
alpha = torch.tensor(START_ALPHA, dtype=F64, requires_grad=True)
log_tau = torch.tensor(math.log(START_TAU), dtype=F64, requires_grad=True)
optimizer = torch.optim.LBFGS([alpha, log_tau], lr=1.0, max_iter=10 if args.quick else 30,
                              line_search_fn="strong_wolfe")
solves = 0


def voltage_loss():
    global solves
    optimizer.zero_grad()
    solves += 1
    trace = neuron(alpha, log_tau.exp(), subthreshold, save_spikes=False).y[:, 0]
    loss = ((trace - observed_voltage.y[:, 0]) ** 2).mean()
    loss.backward()
    return loss


start = time.perf_counter()
optimizer.step(voltage_loss)
voltage_seconds = time.perf_counter() - start
fit_voltage = (alpha.item(), log_tau.exp().item())
print(f"voltage trace ({duration:.0f} ms): alpha {fit_voltage[0]:.4f} (error {abs(fit_voltage[0] - TRUE_ALPHA):.1e}), "
      f"tau {fit_voltage[1]:.3f} ms^alpha (error {abs(fit_voltage[1] - TRUE_TAU):.1e}); start alpha {START_ALPHA}, "
      f"tau {START_TAU}; {solves} solves, {voltage_seconds:.1f} s")

# 2. spike train: alpha by Adam on the van Rossum distance of the surrogate spike rasters
KERNEL_MS = 10.0
kernel = torch.exp(-torch.arange(0.0, 5 * KERNEL_MS, step, dtype=F64) / KERNEL_MS).flip(0)


def van_rossum_trace(raster):
    """The raster filtered by exp(-t / 10 ms) (causal), one value per step."""
    padded = F.pad(raster[None, None], (kernel.numel() - 1, 0))
    return F.conv1d(padded, kernel[None, None])[0, 0]


observed_trace = van_rossum_trace(observed_spikes.spikes)
alpha = torch.tensor(START_ALPHA, dtype=F64, requires_grad=True)
optimizer = torch.optim.Adam([alpha], lr=0.02)
schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.97)
iterations = 15 if args.quick else 60
history = []
start = time.perf_counter()
for _ in range(iterations):
    fitted = neuron(alpha, torch.tensor(TRUE_TAU, dtype=F64), suprathreshold, surrogate="sigmoid", surrogate_scale=0.5)
    loss = ((van_rossum_trace(fitted.spikes) - observed_trace) ** 2).sum() * step / KERNEL_MS
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    schedule.step()
    history.append(alpha.item())
spike_seconds = time.perf_counter() - start
print(f"spike train ({duration:.0f} ms, {observed_spikes.spike_times.numel()} spikes): alpha {history[-1]:.4f} "
      f"(error {abs(history[-1] - TRUE_ALPHA):.1e}); start {START_ALPHA}; {iterations} iterations, {spike_seconds:.1f} s")

out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
with torch.no_grad():
    start_trace = neuron(torch.tensor(START_ALPHA, dtype=F64), torch.tensor(START_TAU, dtype=F64), subthreshold)
axes[0].plot(t, observed_voltage.y[:, 0], "k", lw=1.5, label=f"data (alpha {TRUE_ALPHA}, tau {TRUE_TAU})")
axes[0].plot(t, start_trace.y[:, 0], "tab:orange", lw=0.8, label=f"start (alpha {START_ALPHA}, tau {START_TAU})")
axes[0].set_xlabel("t (ms)")
axes[0].set_ylabel("V (mV)")
axes[0].set_title(f"voltage fit: alpha {fit_voltage[0]:.3f}, tau {fit_voltage[1]:.2f}")
axes[0].legend(fontsize=8)
axes[1].plot(range(1, iterations + 1), history, "o-", ms=3)
axes[1].axhline(TRUE_ALPHA, color="k", ls="--", label="true alpha")
axes[1].set_xlabel("Adam iteration")
axes[1].set_ylabel("alpha")
axes[1].set_title("spike-train fit (van Rossum distance)")
axes[1].legend(fontsize=8)
fig.tight_layout()
fig.savefig(out / "fit_fractional_order.png", dpi=110)
print(f"wrote {out / 'fit_fractional_order.png'}")
