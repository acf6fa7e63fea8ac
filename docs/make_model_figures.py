"""Regenerate the model gallery of the documentation: ``python docs/make_model_figures.py``.

Writes ``docs/tutorials/models-adex.png`` (the eight Naud et al. 2008 AdEx parameter sets),
``docs/tutorials/models-izhikevich.png`` (the seven Izhikevich 2003 cell classes) and
``docs/tutorials/models-others.png`` (LIF, EIF, FitzHugh–Nagumo, Hodgkin–Huxley), each at
alpha = 1, 0.9 and 0.7, and prints the Markdown table of docs/tutorials/models.md (latency, mean
ISI, adaptation index and firing class of every AdEx pattern at each alpha).  Every panel of one
figure comes from one batched `simulate` call per alpha.  Float64, explicit L1, full memory.
"""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from spikede.models import (  # noqa: E402
    EIF,
    IZHIKEVICH_PATTERNS,
    LIF,
    NAUD_PATTERNS,
    AdEx,
    FitzHughNagumo,
    HodgkinHuxley,
    Izhikevich,
    adaptation_index,
    classify_firing,
    first_spike_latency,
    isi_statistics,
    simulate,
)

HERE = Path(__file__).parent / "tutorials"
ALPHAS = (1.0, 0.9, 0.7)
COLOURS = {1.0: "black", 0.9: "tab:blue", 0.7: "tab:orange"}


def grid(duration: float, step: float) -> torch.Tensor:
    return torch.linspace(0.0, duration, int(round(duration / step)) + 1, dtype=torch.float64)


def panels(names, solutions, t, path, title, rows, columns, ylabel):
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.1 * rows), sharex=True, squeeze=False)
    for index, name in enumerate(names):
        ax = axes.flat[index]
        for alpha, solution in solutions.items():
            ax.plot(t, solution.y[:, index, 0], color=COLOURS[alpha], lw=0.7, label=f"alpha {alpha}")
        ax.set_title(name, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    for ax in axes[-1]:
        ax.set_xlabel("t (ms)", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


def adex_gallery() -> None:
    duration = 500.0
    t = grid(duration, 0.05)
    model, currents = AdEx.patterns()
    solutions = {alpha: simulate(model, t, current=currents, alpha=alpha) for alpha in ALPHAS}
    panels(list(NAUD_PATTERNS), solutions, t, HERE / "models-adex.png",
           "AdEx, Naud et al. (2008) parameter sets and step currents", 2, 4, "V (mV)")
    print("| pattern | alpha | spikes | latency (ms) | mean ISI (ms) | adaptation index | class |")
    print("|---|---|---|---|---|---|---|")
    for index, name in enumerate(NAUD_PATTERNS):
        for alpha, solution in solutions.items():
            times = solution.times_of(index)
            cells = [first_spike_latency(times), isi_statistics(times)["mean"], adaptation_index(times)]
            shown = ["-" if math.isnan(x) else f"{x:.3g}" for x in cells]
            found = " / ".join(classify_firing(times, duration))
            print(f"| {name} | {alpha} | {times.numel()} | {' | '.join(shown)} | {found} |")


def izhikevich_gallery() -> None:
    t = grid(200.0, 0.02)
    names = list(IZHIKEVICH_PATTERNS)
    fields = zip(*(IZHIKEVICH_PATTERNS[name] for name in names))
    model = Izhikevich(*(torch.tensor(values, dtype=torch.float64) for values in fields))
    solutions = {alpha: simulate(model, t, current=10.0, alpha=alpha) for alpha in ALPHAS}
    panels(names, solutions, t, HERE / "models-izhikevich.png",
           "Izhikevich (2003) cell classes, I = 10", 2, 4, "v (mV)")


def other_models() -> None:
    cases = [("LIF, I = 1000 pA", LIF(), 1000.0, 300.0, 0.05), ("EIF, I = 700 pA", EIF(), 700.0, 300.0, 0.05),
             ("FitzHugh-Nagumo, I = 0.5", FitzHughNagumo(), 0.5, 300.0, 0.05),
             ("Hodgkin-Huxley (fractional V), I = 10", HodgkinHuxley(), 10.0, 100.0, 0.005)]
    fig, axes = plt.subplots(1, 4, figsize=(13.6, 2.6))
    for ax, (title, model, current, duration, step) in zip(axes, cases):
        t = grid(duration, step)
        for alpha in ALPHAS:
            orders = {"v": alpha} if isinstance(model, HodgkinHuxley) else alpha
            solution = simulate(model, t, current=current, alpha=orders, save_every=max(1, int(0.05 / step)))
            ax.plot(solution.t, solution.y[:, 0], color=COLOURS[alpha], lw=0.7, label=f"alpha {alpha}")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("t (ms)" if not isinstance(model, FitzHughNagumo) else "t", fontsize=8)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path = HERE / "models-others.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    adex_gallery()
    izhikevich_gallery()
    other_models()
