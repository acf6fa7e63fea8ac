"""Spike-train analysis of fractional neuron models: f-I curves, interspike intervals, latency, adaptation.

For the fractional EIF and AdEx neurons (`spikede.models`, 'continuous' history, explicit L1,
0.05 ms steps, 500 ms current steps) at alpha = 1, 0.9 and 0.7 this plots, each from one batched
`simulate` call per order:

1. the f-I curve (firing rate against the step current, 24 currents);
2. the interspike intervals of an AdEx neuron (Naud et al. 2008 'adapting' set) in spike order;
3. the first-spike latency against the current;
4. the adaptation index (Naud et al. 2008) against the current;

and prints the rheobase (the smallest current that fires) and the rate at the largest current.

    python examples/model_analysis.py [--out DIR] [--quick]
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from spikede.models import (  # noqa: E402
    EIF,
    AdEx,
    adaptation_index,
    first_spike_latency,
    interspike_intervals,
    simulate,
)

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--out", default="spikede-out/examples")
parser.add_argument("--quick", action="store_true", help="200 ms, 8 currents (for tests)")
args = parser.parse_args()

F64 = torch.float64
duration = 200.0 if args.quick else 500.0
t = torch.linspace(0.0, duration, int(round(duration / 0.05)) + 1, dtype=F64)
currents = torch.linspace(0.0, 1500.0, 8 if args.quick else 24, dtype=F64)
alphas = (1.0, 0.9, 0.7)
colours = {1.0: "black", 0.9: "tab:blue", 0.7: "tab:orange"}
adapting, adapting_current = AdEx.pattern("adapting")

fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
for alpha in alphas:
    for name, model, style in (("EIF", EIF(), "--"), ("AdEx", AdEx(), "-")):
        solution = simulate(model, t, current=currents, alpha=alpha, save_spikes=False, save_every=t.numel() - 1)
        trains = [solution.times_of(i) for i in range(currents.numel())]
        rates = torch.tensor([train.numel() / duration * 1000.0 for train in trains])
        latency = [first_spike_latency(train) for train in trains]
        index = [adaptation_index(train, skip=1) for train in trains]
        label = f"{name}, alpha {alpha}"
        axes[0].plot(currents, rates, style, color=colours[alpha], label=label)
        axes[2].plot(currents, latency, style, color=colours[alpha], label=label)
        axes[3].plot(currents, index, style, color=colours[alpha], label=label)
        firing = [float(c) for c, train in zip(currents, trains) if train.numel() > 0]
        rheobase = f"{firing[0]:.0f} pA" if firing else "none below 1500 pA"
        print(f"{label}: rheobase {rheobase}, {float(rates[-1]):.1f} Hz at {float(currents[-1]):.0f} pA")
    solution = simulate(adapting, t, current=adapting_current, alpha=alpha, save_spikes=False)
    isi = interspike_intervals(solution.spike_times)
    axes[1].plot(range(1, isi.numel() + 1), isi, "o-", ms=3, color=colours[alpha], label=f"alpha {alpha}")
axes[0].set(xlabel="current (pA)", ylabel="rate (Hz)", title="f-I curves")
axes[1].set(xlabel="interval number", ylabel="ISI (ms)", title=f"AdEx 'adapting', I = {adapting_current:.0f} pA")
axes[2].set(xlabel="current (pA)", ylabel="latency (ms)", title="first-spike latency")
axes[3].set(xlabel="current (pA)", ylabel="adaptation index", title="adaptation index (Naud et al. 2008)")
for ax in axes:
    ax.legend(fontsize=7)
fig.tight_layout()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
fig.savefig(out / "model_analysis.png", dpi=100)
print(f"wrote {out / 'model_analysis.png'}")
