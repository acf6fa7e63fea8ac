"""The reference fractional SNN's own workload, rebuilt with spikede's API.

Linear(64, 128) -> FractionalLIF -> Linear(128, 10) -> FractionalLIF, batch 32, alpha 0.7,
Grünwald–Letnikov with the full history, dt 0.1, tau 0.5, threshold 1, arctan surrogate
(scale 5), loss = cross-entropy of the time-mean output; one forward+backward pass.  For
each T this prints the CPU time per step with one intra-op thread and with torch's default
threads, and their ratio (default / 1 thread).  `--compete` keeps one CPU-bound process
running beside every measurement (a busy machine).  Each configuration runs in a fresh
subprocess; the best of `--repeats` runs is kept, and their median is printed beside it (on a
busy machine the best run hides how often a pass is slowed).  `--omp-wait-policy passive` runs
the children with `OMP_WAIT_POLICY=PASSIVE`: OpenMP's idle workers then sleep at once instead of
spinning for a while after each multi-threaded operation.  `--phases` also prints each layer's
forward and backward (median milliseconds per pass, stamped by forward returns and gradient
hooks) at both thread settings.  The page faults per pass (minor faults over
the passes after the first, one thread) show how much of the time went to first touches of fresh memory:
glibc returns freed memory to the system and maps it again, by thresholds that move with the
allocations (`spikede.solvers.buffers` reuses the layers' own arrays of 256 KiB or more).

    python benchmarks/reference_workload.py [--steps 100 500 1000 5000] [--repeats 3] [--compete]
                                            [--omp-wait-policy default|passive] [--phases]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from busy import competing_process, thread_env


LAYERS = ("Linear(64, 128)", "FractionalLIF 1", "Linear(128, 10)", "FractionalLIF 2")


def _child(steps: int, repeats: int, phases: bool) -> None:
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
    targets = torch.randint(0, 10, (32,))
    stamps: list = []  # (phase, the time it ended) in this pass, in order

    def stamp(phase):
        stamps.append((phase, time.perf_counter()))

    def forward(h):
        for i, (layer, name) in enumerate(zip(model, LAYERS)):
            h = layer(h)
            if phases:  # the gradient reaching this layer's output ends the backward of what follows it
                stamp(f"{name} forward")
                ended = f"{LAYERS[i + 1]} backward" if i + 1 < len(LAYERS) else "loss backward"
                h.register_hook(lambda grad, ended=ended: stamp(ended))
        return h

    times, faults, spans = [], 0.0, {}
    for repeat in range(repeats):
        if repeat == 1:  # the first pass touches every array for the first time
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        stamps.clear()
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(forward(x).mean(0), targets)
        stamp("loss forward")
        loss.backward()
        stamp(f"{LAYERS[0]} backward")
        times.append(stamps[-1][1] - start)
        if phases:
            for (phase, end), (_, begin) in zip(stamps, [(None, start)] + stamps):
                spans.setdefault(phase, []).append(end - begin)
        model.zero_grad(set_to_none=True)
    if repeats > 1:
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / (repeats - 1)
    print(json.dumps({"seconds": min(times), "median": statistics.median(times), "threads": torch.get_num_threads(),
                      "faults": faults, "phases": {k: statistics.median(v) for k, v in spans.items()}}))


def _measure(steps: int, repeats: int, threads: str, wait_policy: str, phases: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", str(steps), "--repeats", str(repeats)] + ["--phases"] * phases
    env = thread_env(threads)
    env.pop("OMP_WAIT_POLICY", None)
    if wait_policy == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 500, 1000, 5000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compete", action="store_true", help="one CPU-bound process runs beside each measurement")
    parser.add_argument("--omp-wait-policy", choices=("default", "passive"), default="default",
                        help="OMP_WAIT_POLICY of the measured runs (default: unset)")
    parser.add_argument("--phases", action="store_true",
                        help="also print each layer's forward and backward, median ms per pass")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.repeats, args.phases)
        return
    with competing_process(args.compete):
        print("reference workload: 2 fractional layers (64-128-10), batch 32, alpha 0.7, gl, full history; "
              f"forward+backward CPU time per step{' (one competing process)' if args.compete else ''}"
              f"{', OMP_WAIT_POLICY=PASSIVE' if args.omp_wait_policy == 'passive' else ''}; best of "
              f"{args.repeats} passes (median in brackets)")
        print(f"{'T':>6}{'1 thread ms/step':>22}{'default ms/step':>22}{'threads':>9}{'default / 1':>17}"
              f"{'faults/pass':>13}")
        results = []
        for steps in args.steps:
            one = _measure(steps, args.repeats, "1", args.omp_wait_policy, args.phases)
            default = _measure(steps, args.repeats, "default", args.omp_wait_policy, args.phases)
            results.append((steps, one, default))
            a_best, a_median = (1e3 * one[k] / steps for k in ("seconds", "median"))
            b_best, b_median = (1e3 * default[k] / steps for k in ("seconds", "median"))
            print(f"{steps:>6}{a_best:>13.3f} ({a_median:.3f}){b_best:>13.3f} ({b_median:.3f}){default['threads']:>9}"
                  f"{b_best / a_best:>10.2f} ({b_median / a_median:.2f}){one['faults']:>13.0f}")
        for steps, one, default in results if args.phases else ():
            print(f"\nT = {steps}: median ms per pass{'':>8}1 thread  default  default / 1")
            for phase, seconds in one["phases"].items():
                other = default["phases"][phase]
                print(f"  {phase:<36}{1e3 * seconds:>9.3f}{1e3 * other:>9.3f}{other / seconds:>13.2f}")


if __name__ == "__main__":
    main()
