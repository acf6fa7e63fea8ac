"""Cost of fractional neurons next to integer-order LIF neurons, measured in the same run.

Layer: Linear(256, 1024) on every step (TimeDistributed), then the neuron; batch 32,
T steps, float32.  For each neuron kind and T this prints the forward time (no
graph), the forward+backward time and the peak resident memory of the
forward+backward, each also as a ratio to the baseline at the same T, and the fewest page
faults (first touches of fresh memory) of one forward+backward over the repeats: SpikingJelly's
`LIFNode` (multi-step, `decay_input=True`, soft reset, sigmoid surrogate; installed by
`bash scripts/setup.sh bench`) where it is installed, else `LIFNeuron`.  Every
configuration runs once with one intra-op thread and once with torch's default threads
(`--threads 1 default`); `--compete` keeps one CPU-bound process running beside them.

Every configuration runs in a fresh subprocess, so that the peak resident set size
(ru_maxrss) belongs to that configuration alone; the baseline (interpreter, torch,
inputs) is subtracted.

    python benchmarks/neurons.py [--steps 100 500 1000 10000] [--full-max 1000] [--repeats 2]
                                 [--threads 1 default] [--compete]

Above --full-max steps only LIFNeuron and the 'soe' FractionalLIF run (the exact history's
O(T^2) work makes the others minutes-long there).  At T = 10000 the forward+backward of
this layer needs about 14 GB even for LIFNeuron, since autograd keeps every step.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from busy import competing_process, thread_env

KINDS = {
    "SpikingJelly LIFNode": "neuron.LIFNode(tau=2.0, decay_input=True, v_reset=None, step_mode='m', "
                            "surrogate_function=surrogate.Sigmoid(alpha=5.0))",
    "LIFNeuron": "LIFNeuron()",
    "FractionalLIF full": "FractionalLIF(alpha=0.8)",
    "FractionalLIF window 64": "FractionalLIF(alpha=0.8, memory=64)",
    "FractionalLIF full learn_alpha": "FractionalLIF(alpha=0.8, learn_alpha=True)",
    "FractionalLIF soe": "FractionalLIF(alpha=0.8, memory='soe')",
}
LONG_RUN_KINDS = ("SpikingJelly LIFNode", "LIFNeuron", "FractionalLIF soe")  # above --full-max steps


def _child(kind: str, steps: int, repeats: int) -> None:
    import torch
    from torch import nn

    from spikede import FractionalLIF, LIFNeuron, TimeDistributed  # noqa: F401

    if kind.startswith("SpikingJelly"):
        from spikingjelly.activation_based import neuron, surrogate  # noqa: F401

    torch.manual_seed(0)
    model = nn.Sequential(TimeDistributed(nn.Linear(256, 1024)), eval(KINDS[kind]))
    x = torch.rand(steps, 32, 256)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    forward, train, faults = [], [], []
    for _ in range(repeats):
        with torch.no_grad():
            start = time.perf_counter()
            model(x)
            forward.append(time.perf_counter() - start)
        faulted = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        out = model(x)
        out.mean().backward()
        train.append(time.perf_counter() - start)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faulted)
        del out
        model.zero_grad(set_to_none=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"forward": min(forward), "train": min(train), "peak_mb": (peak - baseline) / 1024,
                      "faults": min(faults)}))


def _has_spikingjelly() -> bool:
    import importlib.util

    return importlib.util.find_spec("spikingjelly") is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 500, 1000, 10000])
    parser.add_argument("--full-max", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", nargs="+", default=["1", "default"], choices=["1", "default"])
    parser.add_argument("--compete", action="store_true", help="one CPU-bound process runs beside each measurement")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), args.repeats)
        return
    kinds = [k for k in KINDS if _has_spikingjelly() or not k.startswith("SpikingJelly")]
    print(f"batch 32, Linear(256, 1024) + neuron, float32; ratios are to {kinds[0]} at the same T and threads"
          + ("; one competing process" if args.compete else ""))
    header = (f"{'neuron':<32}{'threads':>8}{'T':>6}{'fwd s':>9}{'x base':>7}{'fwd+bwd s':>11}{'x base':>7}"
              f"{'peak MB':>9}{'x base':>7}{'faults':>9}")
    print(header)
    with competing_process(args.compete):
        for steps in args.steps:
            for threads in args.threads:
                base = None
                for kind in kinds:
                    if steps > args.full_max and kind not in LONG_RUN_KINDS:
                        continue
                    cmd = [sys.executable, __file__, "--child", kind, str(steps), "--repeats", str(args.repeats)]
                    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=thread_env(threads))
                    result = json.loads(out.stdout.strip().splitlines()[-1])
                    base = base or result
                    print(
                        f"{kind:<32}{threads:>8}{steps:>6}{result['forward']:>9.3f}"
                        f"{result['forward'] / base['forward']:>7.2f}"
                        f"{result['train']:>11.3f}{result['train'] / base['train']:>7.2f}"
                        f"{result['peak_mb']:>9.0f}{result['peak_mb'] / max(base['peak_mb'], 1.0):>7.2f}"
                        f"{result['faults']:>9}"
                    )


if __name__ == "__main__":
    main()
