"""The reference fractional SNN's own workload, rebuilt with spikede's API.

Linear(64, 128) -> FractionalLIF -> Linear(128, 10) -> FractionalLIF, batch 32, alpha 0.7,
Grünwald–Letnikov with the full history, dt 0.1, tau 0.5, threshold 1, arctan surrogate
(scale 5), loss = cross-entropy of the time-mean output; one forward+backward pass.  For
each T this prints the CPU time per step with one intra-op thread and with torch's default
threads, and their ratio (default / 1 thread).  `--compete` keeps one CPU-bound process
running beside every measurement (a busy machine).  Each configuration runs in a fresh
subprocess; the best of `--repeats` runs is kept.  The page faults per pass (minor faults over
the passes after the first, one thread) show how much of the time went to first touches of fresh memory:
glibc returns freed memory to the system and maps it again, by thresholds that move with the
allocations (`spikede.solvers.buffers` reuses the layers' own arrays of 256 KiB or more).

    python benchmarks/reference_workload.py [--steps 100 500 1000 5000] [--repeats 3] [--compete]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from busy import competing_process, thread_env


def _child(steps: int, repeats: int) -> None:
    import resource

    import torch
    from torch import nn

    from spikede import FractionalLIF, TimeDistributed

    torch.manual_seed(0)

    def neuron():
        return FractionalLIF(alpha=0.7, tau=0.5, threshold=1.0, dt=0.1, surrogate="arctan", surrogate_scale=5.0,
                             method="gl")

    model = nn.Sequential(TimeDistributed(nn.Linear(64, 128)), neuron(), TimeDistributed(nn.Linear(128, 10)), neuron())
    x = torch.rand(steps, 32, 64)
    labels = torch.randint(0, 10, (32,))
    times, faults = [], 0.0
    for repeat in range(repeats):
        if repeat == 1:  # the first pass touches every array for the first time
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(model(x).mean(0), labels)
        loss.backward()
        times.append(time.perf_counter() - start)
        model.zero_grad(set_to_none=True)
    if repeats > 1:
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / (repeats - 1)
    print(json.dumps({"seconds": min(times), "threads": torch.get_num_threads(), "faults": faults}))


def _measure(steps: int, repeats: int, threads: str) -> dict:
    cmd = [sys.executable, __file__, "--child", str(steps), "--repeats", str(repeats)]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, env=thread_env(threads)).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 500, 1000, 5000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compete", action="store_true", help="one CPU-bound process runs beside each measurement")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.repeats)
        return
    with competing_process(args.compete):
        print("reference workload: 2 fractional layers (64-128-10), batch 32, alpha 0.7, gl, full history; "
              f"forward+backward CPU time per step{' (one competing process)' if args.compete else ''}")
        print(f"{'T':>6}{'1 thread ms/step':>18}{'default ms/step':>17}{'threads':>9}{'default / 1':>13}"
              f"{'faults/pass':>13}")
        for steps in args.steps:
            one = _measure(steps, args.repeats, "1")
            default = _measure(steps, args.repeats, "default")
            a, b = 1e3 * one["seconds"] / steps, 1e3 * default["seconds"] / steps
            print(f"{steps:>6}{a:>18.3f}{b:>17.3f}{default['threads']:>9}{b / a:>13.2f}{one['faults']:>13.0f}")


if __name__ == "__main__":
    main()
