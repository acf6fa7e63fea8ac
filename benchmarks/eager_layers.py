"""The layers' eager path: time per call where the compiled kernels do not run.

The eager loop serves single steps (`step_mode='single'`), plain autograd (`adjoint=False`),
CUDA and half precision; the discrete adjoint's eager forward serves the rest off the kernels
(`SPIKEDE_ENGINE=eager`).  For each case this prints the median time of `--repeats` calls in
this process, with one intra-op thread (the per-step overhead is Python and small tensor
operations, which threads do not shorten).  Layer: batch 32 x 256 neurons, float32, alpha 0.7;
multi-step cases run T steps forward and backward, single-step cases 200 steps without a
graph, and the `overhead` rows the same 200 single steps of a 2 x 3 layer (almost no
arithmetic: the cost of one call itself, in microseconds).

To compare two revisions, run the script in each (e.g. `PYTHONPATH=<other worktree> python
benchmarks/eager_layers.py`) in alternation; the machine's noise is larger than most
differences between neighbouring runs.

    python benchmarks/eager_layers.py [--steps 500] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    from spikede import FractionalLIF, LIFNeuron, set_engine

    torch.set_num_threads(1)
    set_engine("eager")
    torch.manual_seed(0)
    x = torch.randn(args.steps, 32, 256) * 0.8 + 0.5
    small = torch.randn(200, 2, 3)

    def forward_backward(layer):
        def run():
            leaf = x.clone().requires_grad_(True)
            layer(leaf).sum().backward()
        return run

    def single_steps(layer, inputs):
        def run():
            layer.reset()
            with torch.no_grad():
                for row in inputs.unbind(0):
                    layer(row)
        return run

    cases = {
        "FractionalLIF full, autograd": (forward_backward(FractionalLIF(alpha=0.7, adjoint=False)), 1e3, "ms"),
        "FractionalLIF soe, autograd": (forward_backward(FractionalLIF(alpha=0.7, memory="soe", adjoint=False)),
                                        1e3, "ms"),
        "FractionalLIF full, adjoint": (forward_backward(FractionalLIF(alpha=0.7, learn_tau=True)), 1e3, "ms"),
        "FractionalLIF soe, adjoint": (forward_backward(FractionalLIF(alpha=0.7, memory="soe")), 1e3, "ms"),
        "LIFNeuron, autograd": (forward_backward(LIFNeuron()), 1e3, "ms"),
        "FractionalLIF, 200 single steps": (single_steps(FractionalLIF(alpha=0.7, step_mode="single"), x[:200]),
                                            1e3, "ms"),
        "LIFNeuron, 200 single steps": (single_steps(LIFNeuron(step_mode="single"), x[:200]), 1e3, "ms"),
        "overhead FractionalLIF (window 8), per call": (
            single_steps(FractionalLIF(alpha=0.7, memory=8, step_mode="single"), small), 1e6 / 200, "us"),
        "overhead LIFNeuron, per call": (single_steps(LIFNeuron(step_mode="single"), small), 1e6 / 200, "us"),
    }
    print(f"eager layer paths, 1 thread, T = {args.steps} (multi-step), median of {args.repeats}")
    for name, (run, scale, unit) in cases.items():
        run()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        print(f"{name:46s} {statistics.median(times) * scale:9.1f} {unit}", flush=True)


if __name__ == "__main__":
    main()
