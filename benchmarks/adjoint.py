"""Autograd against the discrete adjoint for a two-layer FractionalLIF network.

Network: Linear(256, 1024) -> FractionalLIF(0.8) -> Linear(1024, 1024) -> FractionalLIF(0.8),
batch 32, float32, full history.  For each T this prints forward+backward time and peak
resident memory (above the baseline, each run in a fresh subprocess) with plain autograd
and with ``adjoint=True``, and their ratios.

    python benchmarks/adjoint.py [--steps 250 500 1000 2000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _child(adjoint: bool, steps: int) -> None:
    import torch
    from torch import nn

    from spikede import FractionalLIF, TimeDistributed

    torch.manual_seed(0)
    model = nn.Sequential(TimeDistributed(nn.Linear(256, 1024)), FractionalLIF(alpha=0.8, adjoint=adjoint),
                          TimeDistributed(nn.Linear(1024, 1024)), FractionalLIF(alpha=0.8, adjoint=adjoint))
    x = torch.rand(steps, 32, 256)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    model(x).mean().backward()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mb": (peak - baseline) / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[250, 500, 1000, 2000])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0] == "1", int(args.child[1]))
        return
    print("two-layer FractionalLIF network, batch 32, 1024 hidden, float32, full history")
    print(f"{'T':>6}{'autograd s':>12}{'adjoint s':>11}{'time ratio':>12}{'autograd MB':>13}{'adjoint MB':>12}{'memory ratio':>14}")
    for steps in args.steps:
        runs = []
        for adjoint in ("0", "1"):
            cmd = [sys.executable, __file__, "--child", adjoint, str(steps)]
            runs.append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout))
        auto, adj = runs
        print(f"{steps:>6}{auto['seconds']:>12.2f}{adj['seconds']:>11.2f}{adj['seconds'] / auto['seconds']:>12.2f}"
              f"{auto['peak_mb']:>13.0f}{adj['peak_mb']:>12.0f}{adj['peak_mb'] / auto['peak_mb']:>14.2f}")


if __name__ == "__main__":
    main()
