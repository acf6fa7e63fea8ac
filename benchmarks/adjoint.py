"""Autograd against the discrete adjoint, for a two-layer FractionalLIF network and for fdeint.

Network: Linear(256, 1024) -> FractionalLIF(0.8) -> Linear(1024, 1024) -> FractionalLIF(0.8),
batch 32, float32, full history.  For each T this prints forward+backward time and peak
resident memory (above the baseline, each run in a fresh subprocess) with plain autograd
and with ``adjoint=True``, and their ratios, twice:

- "RSS": the process as it runs by default.  glibc's malloc keeps the many per-step
  tensors of an autograd graph in heaps it cannot give back, so this is what a CPU user
  pays, but it is far above the bytes alive.
- "live": every allocation of 64 KiB or more gets a mapping of its own
  (``MALLOC_MMAP_THRESHOLD_=65536``), so the resident peak follows the tensors alive, as
  a GPU's caching allocator roughly would.  Its times are not comparable (mmap per tensor).

fdeint: D^0.6 y = -lam y + 0.1 sin y, a 1024-element float64 state, memory='soe', loss on the
final state; autograd, the adjoint (every state and history sum kept) and the adjoint with
``checkpoint_every=500, save_every=N`` (only snapshots kept: memory traded for a second solve).

    python benchmarks/adjoint.py [--steps 250 500 1000 2000] [--fde-steps 2000 8000]
"""

from __future__ import annotations

import argparse
import json
import os
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


FDE_RUNS = {"autograd": {}, "adjoint": {"adjoint": True},
            "adjoint + checkpoints": {"adjoint": True, "checkpoint_every": 500, "save_every": None}}


def _fde_child(name: str, steps: int) -> None:
    import torch

    from spikede import fdeint

    torch.manual_seed(0)
    y0 = torch.randn(1024, dtype=torch.float64, requires_grad=True)
    lam = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    t = torch.linspace(0.0, 10.0, steps + 1, dtype=torch.float64)
    options = dict(FDE_RUNS[name])
    if "save_every" in options:
        options["save_every"] = steps
    if options.get("adjoint"):
        options["adjoint_params"] = [lam]
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    y = fdeint(lambda t, y: -lam * y + 0.1 * torch.sin(y), y0, t, 0.6, memory="soe", **options)
    y[-1].square().sum().backward()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mb": (peak - baseline) / 1024}))


def _fde_table(steps_list) -> None:
    print("\nfdeint, D^0.6 y = -lam y + 0.1 sin y, 1024-element float64 state, memory='soe'; ratios to autograd")
    print(f"{'run':<23}{'N':>7}{'time s':>9}{'x time':>8}{'peak MB':>9}{'x memory':>10}")
    for steps in steps_list:
        base = None
        for name in FDE_RUNS:
            cmd = [sys.executable, __file__, "--fde-child", name, str(steps)]
            run = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
            base = base or run
            print(f"{name:<23}{steps:>7}{run['seconds']:>9.2f}{run['seconds'] / base['seconds']:>8.2f}"
                  f"{run['peak_mb']:>9.0f}{run['peak_mb'] / max(base['peak_mb'], 1.0):>10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="*", default=[250, 500, 1000, 2000])
    parser.add_argument("--fde-steps", type=int, nargs="*", default=[2000, 8000])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--fde-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0] == "1", int(args.child[1]))
        return
    if args.fde_child:
        _fde_child(args.fde_child[0], int(args.fde_child[1]))
        return
    print("two-layer FractionalLIF network, batch 32, 1024 hidden, float32, full history; ratios adjoint/autograd")
    print(f"{'T':>6}{'autograd s':>12}{'adjoint s':>11}{'x time':>8}"
          f"{'RSS: autograd MB':>18}{'adjoint MB':>12}{'x memory':>10}{'live: autograd MB':>19}{'adjoint MB':>12}{'x memory':>10}")
    for steps in args.steps:
        runs = {}
        for allocator, env in (("rss", None), ("live", {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"})):
            for adjoint in ("0", "1"):
                cmd = [sys.executable, __file__, "--child", adjoint, str(steps)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
                runs[allocator, adjoint] = json.loads(out)
        auto, adj = runs["rss", "0"], runs["rss", "1"]
        line = f"{steps:>6}{auto['seconds']:>12.2f}{adj['seconds']:>11.2f}{adj['seconds'] / auto['seconds']:>8.2f}"
        for allocator, width in (("rss", 18), ("live", 19)):
            auto, adj = runs[allocator, "0"], runs[allocator, "1"]
            line += f"{auto['peak_mb']:>{width}.0f}{adj['peak_mb']:>12.0f}{adj['peak_mb'] / auto['peak_mb']:>10.2f}"
        print(line)
    if args.fde_steps:
        _fde_table(args.fde_steps)


if __name__ == "__main__":
    main()
