"""The compiled engine's block length (`spikede.fused.block_for`) against fixed block lengths.

One `FractionalLIF(alpha=0.7)` layer (gl, full history, arctan surrogate), batch 32, float32, for
layers of 10 to 1024 neurons (320 to 32,768 per step) over T = 100 and 1000 steps: forward and
backward (`spikes.sum().backward()`), the fastest of `--repeats` passes, alternating the block
lengths so that both see the same machine.  Prints milliseconds per pass for each block length
and the ratio of the chosen one to the first fixed length (`--blocks`, default 32; below 1: the
choice is faster), for 1 thread and for torch's default threads.

    python benchmarks/block_length.py [--steps 100 1000] [--neurons 10 32 128 1024] [--blocks 32 64 128]
                                      [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch

from spikede import FractionalLIF, fused

BATCH = 32


def _pass_ms(layer, x) -> float:
    start = time.perf_counter()
    layer(x).sum().backward()
    return (time.perf_counter() - start) * 1e3


def measure(steps: int, neurons: int, blocks: list, repeats: int) -> dict:
    """The fastest pass (ms) for each block length in `blocks` (`None`: `fused.block_for`'s choice)."""
    choose = fused.block_for
    layer = FractionalLIF(alpha=0.7, tau=0.5, threshold=1.0, dt=0.1, surrogate="arctan", surrogate_scale=5.0)
    x = (torch.rand(steps, BATCH, neurons, generator=torch.Generator().manual_seed(0)) * 1.5).requires_grad_()
    best = {block: float("inf") for block in blocks}
    try:
        for _ in range(repeats + 1):  # the first round warms up
            for block in blocks:
                fused.block_for = choose if block is None else (lambda width, b=block: b)
                best[block] = min(best[block], _pass_ms(layer, x))
    finally:
        fused.block_for = choose
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--neurons", type=int, nargs="+", default=[10, 32, 128, 1024])
    parser.add_argument("--blocks", type=int, nargs="+", default=[32], help="fixed block lengths to compare with")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    fixed = args.blocks
    for threads in (1, default_threads):
        torch.set_num_threads(threads)
        print(f"\n{threads} thread(s); ms per forward+backward pass, the fastest of {args.repeats}")
        print(f"{'T':>6} {'width':>7} {'chosen':>7} {'ms':>9} " + " ".join(f"{b:>9}" for b in fixed)
              + f" {f'chosen / {fixed[0]}':>14}")
        for steps in args.steps:
            for neurons in args.neurons:
                best = measure(steps, neurons, [None, *fixed], args.repeats)
                print(f"{steps:>6} {BATCH * neurons:>7} {fused.block_for(BATCH * neurons):>7} {best[None]:>9.2f} "
                      + " ".join(f"{best[b]:>9.2f}" for b in fixed) + f" {best[None] / best[fixed[0]]:>14.2f}")


if __name__ == "__main__":
    main()
