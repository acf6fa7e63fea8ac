"""`spikede train --compare-alpha`: the same network trained at several orders and seeds.

Every run is a full [train][spikede.training.train] with its own output folder
(`OUT/alpha-A/seed-S`); the comparison reports the mean and the sample standard deviation
of the final test accuracy and firing rate over the seeds, and writes `compare.csv`,
`compare.json` and `compare.png` (test accuracy per epoch, mean and spread per order).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import replace
from pathlib import Path

from .training import TrainConfig, train

__all__ = ["comparison_configs", "compare_alphas", "table_lines"]


def comparison_configs(base: TrainConfig, alphas: list[float], seeds: int) -> list[TrainConfig]:
    """One configuration per (alpha, seed), seeds `base.seed .. base.seed + seeds - 1`, all validated
    before anything is trained (a bad value stops the comparison before its first run)."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"--seeds must be a positive integer, got {seeds!r}")
    configs = []
    for alpha in alphas:
        for seed in range(base.seed, base.seed + seeds):
            config = replace(base, alpha=[alpha], seed=seed, out=str(Path(base.out) / f"alpha-{alpha:g}" / f"seed-{seed}"))
            config.validate()
            configs.append(config)
    return configs


def _spread(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def compare_alphas(base: TrainConfig, alphas: list[float], seeds: int, log=print) -> list[dict]:
    """Train every (alpha, seed) of [comparison_configs][spikede.compare.comparison_configs]; return one
    row per alpha with the per-seed results and their mean and standard deviation, and write the
    comparison files to `base.out`."""
    configs = comparison_configs(base, alphas, seeds)
    runs: dict[float, list[dict]] = {alpha: [] for alpha in alphas}
    for config in configs:
        log(f"== alpha {config.alpha[0]:g}, seed {config.seed} ==")
        summary = train(config, log=log)
        if not summary:  # not rank 0 of a distributed run
            continue
        metrics = json.loads((Path(config.out) / "metrics.json").read_text())
        runs[config.alpha[0]].append({"seed": config.seed, "test_acc": summary["test_acc"],
                                      "firing_rate": summary["firing_rate"],
                                      "curve": [m["test_acc"] for m in metrics]})
    rows = []
    for alpha, results in runs.items():
        if not results:
            continue
        acc_mean, acc_std = _spread([r["test_acc"] for r in results])
        rate_mean, rate_std = _spread([r["firing_rate"] for r in results])
        rows.append({"alpha": alpha, "seeds": [r["seed"] for r in results], "runs": results,
                     "test_acc_mean": acc_mean, "test_acc_std": acc_std,
                     "firing_rate_mean": rate_mean, "firing_rate_std": rate_std})
    if rows:
        _write(Path(base.out), rows)
    return rows


def table_lines(rows: list[dict]) -> list[str]:
    """The comparison as a text table: mean +- sample standard deviation over the seeds."""
    lines = [f"{'alpha':>6} {'seeds':>5} {'test accuracy':>19} {'firing rate':>19}   per seed"]
    for row in rows:
        per_seed = " ".join(f"{r['test_acc']:.4f}" for r in row["runs"])
        lines.append(f"{row['alpha']:>6g} {len(row['runs']):>5} "
                     f"{row['test_acc_mean']:>10.4f} +- {row['test_acc_std']:.4f} "
                     f"{row['firing_rate_mean']:>10.4f} +- {row['firing_rate_std']:.4f}   {per_seed}")
    return lines


def _write(out: Path, rows: list[dict]) -> None:
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(rows, indent=2))
    with open(out / "compare.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["alpha", "seed", "test_acc", "firing_rate"])
        for row in rows:
            for r in row["runs"]:
                writer.writerow([row["alpha"], r["seed"], r["test_acc"], r["firing_rate"]])
    fig, (curves, final) = plt.subplots(1, 2, figsize=(11, 4))
    for row in rows:
        length = min(len(r["curve"]) for r in row["runs"])
        if length == 0:
            continue
        acc = np.array([r["curve"][:length] for r in row["runs"]])
        epochs = np.arange(1, length + 1)
        mean, std = acc.mean(0), acc.std(0, ddof=1) if len(acc) > 1 else np.zeros(length)
        (line,) = curves.plot(epochs, mean, "o-", ms=3, label=f"alpha {row['alpha']:g}")
        curves.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        final.errorbar([row["alpha"]], [row["test_acc_mean"]], yerr=[row["test_acc_std"]], fmt="o",
                       color=line.get_color(), capsize=4)
        final.scatter([row["alpha"]] * len(row["runs"]), [r["test_acc"] for r in row["runs"]], s=12,
                      color=line.get_color(), alpha=0.5)
    curves.set_xlabel("epoch")
    curves.set_ylabel("test accuracy")
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves.set_title("test accuracy per epoch (mean +- std over seeds)")
    curves.legend()
    final.set_xlabel("alpha")
    final.set_ylabel("final test accuracy")
    final.set_title(f"final test accuracy ({len(rows[0]['runs'])} seeds: points; mean +- std: bars)")
    fig.tight_layout()
    fig.savefig(out / "compare.png", dpi=110)
    plt.close(fig)
