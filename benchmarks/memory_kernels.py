"""Memory kernels side by side: full history, short-memory window and sum-of-exponentials.

Problem: D^0.6 y = -y + 0.1 sin(y) for a 1024-element state, float64, Grünwald–Letnikov,
N steps on [0, 10].  For each kernel and N this prints the wall time, the time ratio to
`soe` at the same N, the peak resident memory above the baseline (each run in a fresh
subprocess) and the maximum difference from `full` (where `full` ran).  `full` is the
library's blocked kernel; `full (per-step)` is the same exact sum done as one
matrix-vector product per step (block=1), the textbook implementation; `full (per block)` is
one product per block of 64 steps over all earlier rows (a window as long as the run,
`memory=N`: the blocked kernel of earlier releases, O(N^2) where `full` is nearly linear in N).
`soe final` keeps
only the final state (`save_every=N`), so its memory does not grow with N at all.
`full` is skipped above --full-max steps (at N = 1e5 it needs ~1e13 flops).  The rows marked
`(eager)` run the same solve on the eager engine (`SPIKEDE_ENGINE=eager`: one history read and
a few tensor operations per step) instead of the compiled loop (`spikede.solvers.blocks`).
Every table is printed for 1 intra-op thread and for torch's default.

    python benchmarks/memory_kernels.py [--steps 1000 10000 100000] [--full-max 10000] [--repeats 2]
                                        [--threads 1 default]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {
    "full": dict(memory=None),
    "full (per-step)": dict(memory=None, block=1),
    "full (per block)": dict(window_of_all_steps=True),
    "window 64": dict(memory=64),
    "soe": dict(memory="soe"),
    "soe final": dict(memory="soe", final_only=True),
    "soe (eager)": dict(memory="soe", engine="eager"),
    "full (eager)": dict(memory=None, engine="eager"),
}


def _child(name: str, steps: int, out: str, repeats: int, threads: str) -> None:
    import torch

    from spikede import fdeint, set_engine

    if threads != "default":
        torch.set_num_threads(int(threads))
    options = dict(CONFIGS[name])
    set_engine(options.pop("engine", "auto"))
    if options.pop("window_of_all_steps", False):
        options["memory"] = steps
    if options.pop("final_only", False):
        options["save_every"] = steps
    torch.manual_seed(0)
    y0 = torch.randn(1024, dtype=torch.float64)
    t = torch.linspace(0.0, 10.0, steps + 1, dtype=torch.float64)
    func = lambda t, y: -y + 0.1 * torch.sin(y)  # noqa: E731
    with torch.no_grad():
        fdeint(func, y0, t[:64], 0.6, **options)  # warm up
        if options.get("memory") == "soe":  # build (and cache) the compression for this horizon
            fdeint(func, y0, t, 0.6, **{**options, "save_every": steps})
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        seconds = []
        for _ in range(repeats):  # the fastest of a few runs: this machine is noisy
            start = time.perf_counter()
            final = fdeint(func, y0, t, 0.6, **options)[-1].clone()
            seconds.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    torch.save(final, out)
    print(json.dumps({"seconds": min(seconds), "peak_mb": (peak - baseline) / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--full-max", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", nargs="+", default=["1", "default"])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), args.child[2], args.repeats, args.child[3])
        return
    for threads in args.threads:
        _table(args, threads)


def _table(args, threads: str) -> None:
    import torch

    print(f"\nD^0.6 y = -y + 0.1 sin y, state 1024, float64, gl, {threads} thread(s); ratios are time / time(soe) "
          "at the same N")
    print(f"{'kernel':<17}{'N':>8}{'time s':>10}{'x soe':>8}{'peak MB':>10}{'max |y - y_full|':>19}")
    soe_times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for steps in args.steps:
            rows, finals = {}, {}
            for name in ("soe", "soe final", "soe (eager)", "window 64", "full", "full (eager)", "full (per-step)",
                         "full (per block)"):
                if name.startswith("full") and steps > args.full_max:
                    continue
                out = str(Path(tmp) / f"{steps}-{name}.pt")
                cmd = [sys.executable, __file__, "--child", name, str(steps), out, threads, "--repeats",
                       str(args.repeats)]
                rows[name] = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
                finals[name] = torch.load(out)
            soe_times[steps] = rows["soe"]["seconds"]
            for name, r in rows.items():
                err = f"{(finals[name] - finals['full']).abs().max().item():.2e}" if "full" in finals else "(no full)"
                print(
                    f"{name:<17}{steps:>8}{r['seconds']:>10.2f}{r['seconds'] / rows['soe']['seconds']:>8.2f}"
                    f"{r['peak_mb']:>10.1f}{err:>19}"
                )
    ns = sorted(soe_times)
    for a, b in zip(ns, ns[1:]):
        print(f"soe time({b}) / time({a}) = {soe_times[b] / soe_times[a]:.2f} (N ratio {b / a:g})")


if __name__ == "__main__":
    main()
