r"""The compiled engine: a fractional LIF layer's time loop in blocks of steps.

A multi-step `FractionalLIF`/`FractionalIF` call spends most of its time on per-step Python and
small tensor operations, not on arithmetic.  Here the sequential part of `b` steps -- the near
history (lags inside the block), the scheme's update, the spike and the reset, and backwards the
discrete adjoint's reverse sweep -- is one call into a small C kernel (`csrc/lif_blocks_body.h`),
while the far history of the block is computed for all its steps at once:

$$
H_n = \sum_{j=n-n_0+1}^{n} W_j u_{n-j} + \sum_{j=1}^{n-n_0} W_j u_{n-j}, \qquad n_0 \le n < n_0 + b,
$$

where the first sum (the rows before the block) comes from matrix products over dyadic squares
(`spikede.solvers.blocks.DyadicHistory`; a window: one product per block), and the second (the
rows inside the block) runs in the kernel.  With `memory='soe'` the first sum comes from the
blocked sum-of-exponentials kernel (`BlockedSOEKernel.block_history`) instead.

The kernels are built and loaded by `spikede.solvers.native`, which also chooses the engine
(`SPIKEDE_ENGINE`, `set_engine`).  The compiled kernels serve multi-step calls of
`FractionalLIF`/`FractionalIF` on CPU tensors, float32 or float64, any memory kernel, through the
discrete adjoint or without a graph; the eager loop runs elsewhere (CUDA, float16/bfloat16,
single steps, plain autograd with `adjoint=False`, a random spike).

Both engines compute the same sums in a different order, so they agree to rounding: the tests
hold spikes identical, states and gradients to 1e-12 (float64) and input gradients to 1e-5
(float32), relative.  Float32 parameter gradients, sums over every step and neuron, the kernel adds
in float64 and the eager loop in float32; both are held to the float64 gradient at 1e-4.

The kernel runs on one thread (the far products take the threads, `block_threads`); a layer of
more than 2^18 neurons per step, which the eager loop would spread over threads, is still served
by it.  The `[T, m]` arrays (history rows, spikes, input gradients) come from reused buffers
(`spikede.solvers.buffers`): fresh ones cost a page fault per 4 KiB on first touch.
"""

from __future__ import annotations

import torch

from .solvers import blocks, buffers, native
from .solvers.blocks import ptr_row
from .solvers.native import kernel, ptr

__all__ = ["applies", "block_for", "scheme_for", "Recurrence"]

BLOCK = 32  # steps per kernel call from WIDE neurons per step up
WIDE = 2048
_RESETS = {"subtract": 0, "zero": 1, "none": 2}


def applies(neuron, x: torch.Tensor) -> bool:
    """Whether a multi-step call of `neuron` on `x` can run compiled (and the kernels are there)."""
    random_spike = neuron.surrogate.spec.stochastic and neuron.surrogate.training
    return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and neuron.drive.compiled
            and neuron.method in ("gl", "l1") and neuron._closed_form() and not random_spike
            and native.compiled_kernels() is not None)


def scheme_for(neuron, x: torch.Tensor):
    """`neuron`'s scheme (no graph) over the steps of `x` `[T, ...]`, kept on the neuron for the next
    call with the same order, coefficients, step count, step size, memory and input dtype, device and
    shape: building the weights costs more than the kernels of a short sequence of a small layer."""
    coefficients = neuron.coefficients
    key = (x.shape, x.dtype, x.device, neuron.method, neuron.memory, neuron.dt, neuron.v_rest,
           tuple(neuron.alpha.detach().reshape(-1).tolist()),
           None if coefficients is None else tuple(coefficients.detach().reshape(-1).tolist()))
    kept = neuron.__dict__.get("_kept_scheme")
    if kept is None or kept[0] != key:
        with torch.no_grad():
            kept = (key, neuron._scheme(torch.full_like(x[0], neuron.v_rest), x.shape[0]))
        neuron.__dict__["_kept_scheme"] = kept
    return kept[1]


def block_for(width: int) -> int:
    """Steps per kernel call for a layer of `width` neurons per step (batch included).

    A block adds about `b / 2` near lags per step and neuron to the kernel's work, and costs a
    fixed amount around its kernel calls and far products (Python, the products' own setup, about
    0.1 ms forward and backward on the development machine).  From `WIDE` = 2048 neurons up the
    lags weigh more and blocks are `BLOCK` = 32 steps; a narrower layer takes 64 steps (from 512
    neurons) or 128, and a sequence no longer than that is one kernel call with no far product.
    `python benchmarks/block_length.py` measures the choice against fixed blocks."""
    return BLOCK if width >= WIDE else 64 if width >= WIDE // 4 else 128


class Recurrence:
    """One layer's constants for the kernels: the block length for its `width` neurons per step
    (`block_for`), the far history of its memory kernel over `steps` steps in those blocks
    (`blocks.DyadicHistory`, `blocks.FullHistory` or `blocks.SOEHistory`), the step coefficient `c`
    of `scheme`, `tau`, `theta` and the neuron's scheme and event settings."""

    def __init__(self, neuron, scheme, steps: int, width: int, tau: float, theta: float):
        self.neuron = neuron
        self.block = block_for(width)
        self.history = blocks.history_for(scheme, steps, neuron.memory,
                                          {**neuron._kernel_options(), "block": self.block})
        self.c, self.tau, self.theta = float(scheme.step_coef), float(tau), float(theta)
        self.l1 = int(neuron.method == "l1")
        self.leak = int(neuron.leak)
        self.reset = _RESETS[neuron.events.reset]

    def forward(self, x: torch.Tensor, keep_proposed: bool, keep_membrane: bool):
        """Run the layer over `x` `[T, m]`: rows `u_0 .. u_T` `[T + 1, m]`, spikes `[T, m]` and as
        bits (`SpikeBits`, `[T, ceil(m / 8)]` bytes), the last potential `[m]`, and the proposed and
        post-reset potentials where asked (else `None`)."""
        steps, m = x.shape
        nrn, history = self.neuron, self.history
        rows = buffers.empty((steps + 1, m), x)
        rows[0] = 0.0  # u_0 = 0 for gl and l1
        history.start(rows[0])
        spikes = buffers.empty(x.shape, x)
        bits = x.new_empty((steps, -(-m // 8)), dtype=torch.uint8)
        proposed = buffers.empty(x.shape, x) if keep_proposed else None
        membrane = buffers.empty(x.shape, x) if keep_membrane else None
        v = torch.full((m,), float(nrn.v_rest), dtype=x.dtype, device=x.device)
        run = kernel("lif_forward", x.dtype)
        for n0 in range(1, steps + 1, self.block):
            b = min(self.block, steps + 1 - n0)
            far, step = history.forward_far(rows, n0, b)
            first = n0 - 1
            run(b, m, step * m, ptr_row(far, step, b), ptr(x[first:first + b]), ptr(history.near_weights),
                ptr(rows[n0]), ptr(v), ptr(spikes[first]), ptr(None if proposed is None else proposed[first]),
                ptr(None if membrane is None else membrane[first]), ptr(bits[first]),
                self.c, self.tau, self.theta, float(nrn.v_rest), float(nrn.events.v_reset),
                self.leak, self.l1, self.reset)
            history.forward_rows(rows[n0:n0 + b])
        return rows, spikes, bits, v, proposed, membrane

    def backward(self, rows, bits, proposed, v_last, x, grad_spikes, to_history: float):
        """The reverse sweep: the input gradients `[T, m]` and the sums (float64, per neuron first)
        `(g_theta, sum g_f drive, sum g_p drive)`.  `bits`: the spikes, eight to a byte (`SpikeBits`)."""
        steps, m = grad_spikes.shape
        nrn, history = self.neuron, self.history
        dtype = rows.dtype
        g = buffers.empty((steps, m), rows)
        carry = rows.new_zeros(m)
        history.start(torch.zeros_like(carry))
        partials = torch.zeros(3, m, dtype=torch.float64, device=rows.device)
        sweep = kernel("lif_backward", dtype)
        surrogate = nrn.surrogate
        kind = surrogate.spec.native  # a built-in bump is computed in the kernel
        theta, v_rest = self.theta, float(nrn.v_rest)
        row_bytes = bits.shape[1]
        # v_{n_top} of each block in turn: the kept last state, then what the sweep leaves (v_{n_bot - 1})
        v_top = v_last.clone()
        # a surrogate the kernel does not know: its bumps from the block's proposed potentials
        p_block = None if kind else buffers.empty((min(self.block, steps), m), rows)
        proposed_of = None if kind else kernel("lif_proposed", dtype)
        # Every buffer handed to the kernels is held by a name while it runs: a pointer into a
        # temporary (`ptr(t.contiguous())`) may point at freed memory.  An expanded gradient (from
        # `spikes.sum()`) or a strided input becomes contiguous a block at a time: a whole copy
        # would be a fresh [T, m] buffer, whose first touch costs a page fault per 4 KiB.
        for top in range(steps, 0, -self.block):
            bottom = max(1, top - self.block + 1)
            b = top - bottom + 1
            far, step = history.backward_far(g, top, b)
            kept = proposed[bottom - 1:top] if self.reset == _RESETS["zero"] else None
            bump = None
            if not kind:
                proposed_of(b, m, row_bytes, ptr(bits[bottom - 1]), ptr(rows[bottom - 1]), ptr(v_top), ptr(kept),
                            ptr(p_block), theta, v_rest, self.l1, self.reset)
                bump = surrogate.derivative(p_block[:b] - theta).contiguous()
            grad_block = grad_spikes[bottom - 1:top].contiguous()
            x_block = None if x is None else x[bottom - 1:top].contiguous()
            sweep(b, m, step * m, row_bytes, ptr_row(far, step, b), ptr(history.near_weights), ptr(g[bottom - 1]),
                  ptr(bits[bottom - 1]), ptr(rows[bottom - 1]), ptr(v_top), ptr(kept), ptr(bump), ptr(grad_block),
                  ptr(x_block), ptr(carry), ptr(partials),
                  self.c, self.tau, theta, v_rest, float(nrn.events.v_reset), float(to_history),
                  float(surrogate.scale), self.leak, self.l1, self.reset, int(nrn.events.detach_reset), kind)
            history.backward_rows(g[bottom - 1:top])
        return g, tuple(partials.sum(1).tolist())
