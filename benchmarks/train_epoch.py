"""Seconds per epoch of `spikede train` on its default job, with one intra-op thread and with torch's default.

Each configuration is a fresh `python -m spikede train --epochs N` (the README's main job,
shortened); the epoch times are the ones it records (`seconds` in `metrics.json`).  The first
epoch (compiled kernels loaded, caches warm) is left out; the median of the rest is reported,
with their spread, and the ratio default / 1 thread.  `--compete` keeps one CPU-bound process running beside every run
(a busy machine).

    python benchmarks/train_epoch.py [--epochs 8] [--compete]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

from busy import competing_process, thread_env


def _epoch_seconds(epochs: int, threads: str) -> list[float]:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "spikede", "train", "--epochs", str(epochs), "--out", out]
        subprocess.run(cmd, capture_output=True, text=True, check=True, env=thread_env(threads))
        with open(f"{out}/metrics.json") as metrics:
            times = [epoch["seconds"] for epoch in json.load(metrics)]
    if len(times) != epochs:
        raise RuntimeError(f"expected {epochs} epochs in metrics.json, found {len(times)}")
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8, help="epochs per run (the first is left out); at least 2")
    parser.add_argument("--compete", action="store_true", help="one CPU-bound process runs beside each run")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error(f"--epochs must be at least 2 (the first is left out), got {args.epochs}")
    with competing_process(args.compete):
        print(f"spikede train, default job, seconds per epoch (median and range of epochs 2..{args.epochs})"
              f"{' beside one competing process' if args.compete else ''}")
        medians = {}
        for threads in ("1", "default"):
            times = _epoch_seconds(args.epochs, threads)
            medians[threads] = statistics.median(times)
            print(f"{threads + ' thread' + ('s' if threads != '1' else ''):>16}: {medians[threads]:.3f} s "
                  f"({min(times):.3f} - {max(times):.3f})")
        print(f"{'default / 1':>16}: {medians['default'] / medians['1']:.2f}")


if __name__ == "__main__":
    main()
