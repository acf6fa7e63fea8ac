"""The candidates for the fused time loop, measured side by side in one run.

Workload: one `FractionalLIF(alpha=0.7, tau=2.0)` layer (gl, full history) over `T` steps of a
`[32, 1024]` input, float32.  Candidates:

- `eager`: the Python step loop (`SPIKEDE_ENGINE=eager`), forward (no graph) and forward+backward
  (the discrete adjoint);
- `compiled`: the C block kernels of `spikede.fused` (built with the system compiler, cached);
- `torch.compile`: the eager step body (near history of a block, update, spike, reset) compiled
  by inductor, forward only (no graph), and its first-call compile time.

It prints seconds and the ratio to `eager` for each, plus the kernel's build time (cold cache)
and load time (warm cache).  numba was not measured: it is not a dependency, and the kernels
need nothing beyond a C compiler.

    python benchmarks/engines.py [--steps 1000] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch


def _time(fn, repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _torch_compile_forward(x: torch.Tensor, weights: torch.Tensor, c: float, tau: float, block: int):
    """The gl LIF forward with the far history as one product per block and the block's steps
    as one compiled function (its near sums, the update, the spike and the reset)."""

    @torch.compile(dynamic=False)
    def block_steps(far, currents, near_w, v):  # far, currents: [b, m]; near_w: [b]; v: [m]
        rows = []
        for k in range(far.shape[0]):
            h = far[k]
            for j in range(1, k + 1):
                h = h + near_w[j] * rows[k - j]
            p = -h + c * (currents[k] - v) / tau
            s = (p >= 1.0).to(p.dtype)
            v = p - s
            rows.append(v)
        return torch.stack(rows), v

    steps, m = x.shape
    rows = x.new_zeros(steps + 1, m)
    v = x.new_zeros(m)
    flipped = weights.flip(0).contiguous()
    lags = flipped.numel() - 1
    near = weights[:block].contiguous()
    for n0 in range(1, steps + 1, block):
        b = min(block, steps + 1 - n0)
        toeplitz = flipped.as_strided((b, n0), (1, 1), lags - n0 - b + 1)
        far = (toeplitz @ rows[:n0]).flip(0)
        if b < block:  # one shape for the compiled function: pad the last block
            far = torch.cat([far, far.new_zeros(block - b, m)])
            currents = torch.cat([x[n0 - 1:], x.new_zeros(block - b, m)])
        else:
            currents = x[n0 - 1:n0 - 1 + b]
        out, v_end = block_steps(far, currents, near, v)
        rows[n0:n0 + b] = out[:b]
        v = out[b - 1]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--threads", default="1", help="intra-op threads, or 'default'")
    args = parser.parse_args()
    if args.threads != "default":
        torch.set_num_threads(int(args.threads))

    from spikede import FractionalLIF
    from spikede.solvers import native

    with tempfile.TemporaryDirectory() as cache:
        os.environ["SPIKEDE_CACHE_DIR"] = cache
        start = time.perf_counter()
        native._build()
        cold = time.perf_counter() - start
        start = time.perf_counter()
        native._build()
        warm = time.perf_counter() - start
    print(f"C kernel: build {cold:.2f} s (cold cache), load {1e3 * warm:.1f} ms (warm cache)")

    torch.manual_seed(0)
    x = torch.rand(args.steps, 32, 1024) * 0.6
    neuron = FractionalLIF(alpha=0.7, tau=2.0)
    rows = {}

    def forward():
        with torch.no_grad():
            neuron(x)

    def forward_backward():
        xr = x.clone().requires_grad_()
        neuron(xr).sum().backward()

    print(f"one FractionalLIF layer, T = {args.steps}, [32, 1024], float32, {torch.get_num_threads()} thread(s)")
    print(f"{'engine':<16}{'fwd s':>9}{'x eager':>9}{'fwd+bwd s':>11}{'x eager':>9}")
    for engine in ("eager", "compiled"):
        native.set_engine(engine)
        rows[engine] = _time(forward), _time(forward_backward)
    base_f, base_b = rows["eager"]
    for engine, (f, b) in rows.items():
        print(f"{engine:<16}{f:>9.3f}{base_f / f:>9.2f}{b:>11.3f}{base_b / b:>9.2f}")

    scheme = neuron._scheme(x[0].reshape(-1), args.steps)
    weights = scheme.weights[0]
    c, tau = scheme.step_coef.item(), 2.0
    flat = x.reshape(args.steps, -1)
    start = time.perf_counter()
    try:
        with torch.no_grad():
            _torch_compile_forward(flat[:64], weights, c, tau, 32)
        first = time.perf_counter() - start
        with torch.no_grad():
            seconds = _time(lambda: _torch_compile_forward(flat, weights, c, tau, 32))
        print(f"{'torch.compile':<16}{seconds:>9.3f}{base_f / seconds:>9.2f}{'-':>11}{'-':>9}"
              f"   (first call incl. compile: {first:.1f} s)")
    except Exception as error:  # inductor needs a working C++ toolchain; report, do not hide
        print(f"torch.compile   failed: {type(error).__name__}: {str(error)[:200]}")


if __name__ == "__main__":
    main()
