r"""Time loops in blocks of steps: the far history of a block computed at once, the steps compiled.

For a block of `b` steps starting at `n_0`, the history sum splits into the rows before the block
and the rows inside it:

$$
H_n = \sum_{j=1}^{n-n_0} W_j u_{n-j} + \sum_{j=n-n_0+1}^{n} W_j u_{n-j}, \qquad n_0 \le n < n_0 + b.
$$

The second sum (the far history) is computed for all `b` steps at once (`DyadicHistory`, the
exact history: Toeplitz products over dyadic squares, the largest by FFT, $O(N \log^2 N)$ in all;
`FullHistory`, a window of lags: one Toeplitz block of the weights times the rows;
`SOEHistory`: the blocked sum-of-exponentials kernel's modes and exact rows); the first (the
near history) and the update run in a compiled
kernel (`spikede/csrc`, `spikede.solvers.native`), one call per step for `fdeint`, one per block
for the LIF layers (`spikede.fused`).

`integrate_compiled` is `fdeint`'s loop for the explicit schemes whose history is the state's own
(`gl`, `l1`: $u_n = c F_{n-1} - H_n$, $y_n = y_0 + u_n$ or $y_{n-1} + u_n$), where no gradient has
to pass through the solve; `fdeint` chooses it (see `compiled_applies`).  It computes the same sums
as the eager loop in another order: the tests hold the two to 1e-12 (float64) relative.
"""

from __future__ import annotations

import torch

from . import native
from .convolution import (SPLIT_FFT_MIN_ROWS, SPLIT_MIN_ROWS, SQUARE_CHUNK, DyadicSquares, Square,
                          split_square_product, toeplitz_product)
from .engine import Problem, block_threads, not_finite, step_threads
from .memory import make_kernel

__all__ = ["FullHistory", "DyadicHistory", "SOEHistory", "history_for", "compiled_applies", "integrate_compiled"]


class FullHistory:
    """Far sums over the stored rows themselves: one product of a Toeplitz block of the weights
    (zero beyond a window) with the rows before the block."""

    keeps_rows = True  # reads the stored rows themselves, so the loop keeps every one

    def __init__(self, weights: torch.Tensor, window: int | None):
        self.window = window
        if window is not None and window < weights.numel() - 1:
            weights = weights * (torch.arange(weights.numel(), device=weights.device) <= window).to(weights.dtype)
        self.near_weights = weights.contiguous()
        self._flipped = weights.flip(0).contiguous()  # W_{L-l} at l: Toeplitz blocks as strided views

    def start(self, template: torch.Tensor) -> None:
        """Ready for a sweep over rows like `template` (the first row, `u_0` or the zero before `G_T`)."""

    def forward_far(self, rows: torch.Tensor, n0: int, b: int) -> tuple[torch.Tensor, int]:
        """The far sums of steps `n0 .. n0+b-1` and the row step (`-1`: rows in reverse step order)."""
        lo = 0 if self.window is None else max(0, n0 - self.window)
        lags = self._flipped.numel() - 1  # entry (k', r) of the view: W_{n0+b-1-k'-r}, row lo + r, step n0+b-1-k'
        toeplitz = self._flipped.as_strided((b, n0 - lo), (1, 1), lags - n0 - b + 1 + lo).contiguous()
        with block_threads(b * (n0 - lo) * rows.shape[1]):
            return toeplitz @ rows[lo:n0], -1

    def forward_rows(self, rows: torch.Tensor) -> None:
        """The rows the kernel just wrote (kept in place: nothing to do)."""

    def backward_far(self, g: torch.Tensor, top: int, b: int) -> tuple[torch.Tensor, int]:
        """`sum_j W_j G_{n+j}` over the gradients after the block, for `n = top - b + 1 .. top`."""
        steps = g.shape[0]
        hi = steps if self.window is None else min(steps, top + self.window)
        if hi <= top:
            return g.new_zeros(b, g.shape[1]), 1
        # entry (q', r): W_{1+q'+r}, step top - q'
        toeplitz = self.near_weights.as_strided((b, hi - top), (1, 1), 1).contiguous()
        with block_threads(b * (hi - top) * g.shape[1]):
            return toeplitz @ g[top:hi], -1

    def backward_rows(self, g_block: torch.Tensor) -> None:
        """The gradients the kernel just wrote (kept in place: nothing to do)."""


class DyadicHistory:
    r"""Exact far sums (no window) as products over dyadic squares of the (step block, row block) plane.

    With blocks of `B` steps, the far sum of step block `k` takes the rows of every block `j < k`.
    Each pair `j < k` is served once, by the square of its highest differing bit `p`: at block
    `k = 2^p (2i + 1)` the rows of blocks `[k - 2^p, k)` are paired with the steps of blocks
    `[k, k + 2^p)` in one Toeplitz product of `L = 2^p B` rows (`convolution.DyadicSquares`),
    `SQUARE_CHUNK` steps at a time as they come.  The
    multiply-adds are those of `FullHistory`, but in products of up to half the sequence instead of
    `B`-row slivers, which run near matrix-product speed.  Squares of `split_min_rows` rows or
    more are computed whole when they open, with a quarter of the multiply-adds saved per halving
    (`convolution.split_square_product`); squares of `fft_min_rows` rows or more go by FFT
    ([spikede.solvers.convolution][]), all their steps at once, in `O(L log L)` per column, so
    that the far history costs `O(N log^2 N)` instead of `O(N^2)`.

    Sweeps run over a sequence `X_0, X_1, ...` in processing order: forward the rows `u_1, u_2,
    ...` (`u_0` pairs with every step and is added directly), backward the gradients from the
    last step down.  The blocks must start at multiples of `block` in that order, as the loops
    of `integrate_compiled` and `spikede.fused` do.
    """

    keeps_rows = True

    def __init__(self, weights: torch.Tensor, block: int, fft_min_rows: int = SPLIT_FFT_MIN_ROWS,
                 split_min_rows: int = SPLIT_MIN_ROWS):
        self.near_weights = weights.contiguous()
        self._flipped = weights.flip(0).contiguous()  # W_{L-l} at l: Toeplitz blocks as strided views
        self._finite_weights = bool(torch.isfinite(weights).all())
        self.block, self.fft_min_rows, self.split_min_rows = int(block), int(fft_min_rows), int(split_min_rows)

    def start(self, template: torch.Tensor) -> None:
        self._squares = DyadicSquares(self.block)
        # u_0 pairs with every step; it is 0 in the loops here, but a non-finite weight must still reach the sums
        self._first_row = template if bool(template.any()) or not self._finite_weights else None

    def _far(self, rows_between, total: int, i0: int, b: int) -> torch.Tensor | None:
        """The far sums of indices `i0 .. i0+b-1` from `X_0 .. X_{i0-1}`; `rows_between(lo, hi)` gives
        `(view, reversed)`: `X_lo .. X_{hi-1}` in processing order, or backwards if `reversed`;
        `total` the sequence's length."""
        if i0 % self.block:
            raise ValueError(f"DyadicHistory reads blocks that start at multiples of {self.block}, got index {i0}")
        square = self._squares.open(i0, total)
        size = 0 if square is None else square.hi - square.lo
        if size >= self.fft_min_rows:  # the transform serves all at once
            view, backwards = rows_between(square.lo, square.hi)
            square.keep(i0, toeplitz_product(view.flip(0) if backwards else view, self.near_weights[1:],
                                             square.outputs))
        elif size >= self.split_min_rows and 4 * square.outputs >= 3 * size:  # a (nearly) whole square at once
            view, backwards = rows_between(square.lo, square.hi)
            sums = split_square_product(view, self.near_weights[1:], hankel=backwards)
            square.keep(i0, sums[: square.outputs])
        far = None
        for square in self._squares.serving(i0, b):
            if not square.covers(i0, b):  # the next SQUARE_CHUNK sums of a product square
                square.keep(i0, self._product(square, i0, b, *rows_between(square.lo, square.hi)))
            part = square.part(i0, b)
            if far is None:  # each square's sums are read once, by this block: the first takes the others
                far = part if part.is_contiguous() else part.contiguous()
            else:
                far.add_(part)
        return far

    def _product(self, square: Square, i0: int, b: int, rows: torch.Tensor, backwards: bool) -> torch.Tensor:
        """`square`'s sums for `SQUARE_CHUNK` (at least `b`) indices from `i0`, one Toeplitz product over
        its rows (a view into the loop's buffer, which keeps them)."""
        outputs = min(max(SQUARE_CHUNK, b), square.first + square.outputs - i0)
        size, q0 = rows.shape[0], i0 - square.first
        # entry (q, s): W_{1+q0+q+s} backwards (X_lo+s lies at view row size-1-s), else W_{size+q0+q-s},
        # which the flipped weights give with rows in reverse order (entry (k, s): output outputs-1-k)
        if backwards:
            toeplitz = self.near_weights.as_strided((outputs, size), (1, 1), 1 + q0).contiguous()
        else:
            lags = self._flipped.numel() - 1
            toeplitz = self._flipped.as_strided((outputs, size), (1, 1), lags - size - q0 - outputs + 1).flip(0)
        with block_threads(outputs * size * rows.shape[1]):
            return toeplitz @ rows

    def forward_far(self, rows, n0, b):
        steps = rows.shape[0] - 1
        far = self._far(lambda lo, hi: (rows[1 + lo : 1 + hi], False), steps, n0 - 1, b)
        if self._first_row is not None:
            first = self.near_weights[n0 : n0 + b, None] * rows[0]
            far = first if far is None else far.add_(first)
        return (rows.new_zeros(b, rows.shape[1]) if far is None else far), 1

    def forward_rows(self, rows: torch.Tensor) -> None:
        """The rows the kernel just wrote (kept in place: nothing to do)."""

    def backward_far(self, g, top, b):
        steps = g.shape[0]
        far = self._far(lambda lo, hi: (g[steps - hi : steps - lo], True), steps, steps - top, b)
        return (g.new_zeros(b, g.shape[1]) if far is None else far), -1

    def backward_rows(self, g_block: torch.Tensor) -> None:
        """The gradients the kernel just wrote (kept in place: nothing to do)."""


class SOEHistory:
    """Far sums from a blocked sum-of-exponentials kernel (`BlockedSOEKernel`): its modes and
    exact rows give everything before the block; the block's own lags use its `near_weights`."""

    keeps_rows = False  # the kernel keeps what it needs; the loop keeps one block of rows

    def __init__(self, make):
        self._make = make  # template -> a fresh BlockedSOEKernel
        self._kernel = None
        self._steps = 0

    def start(self, template: torch.Tensor) -> None:
        self._kernel = self._make(template)
        self.near_weights = self._kernel.near_weights[0].contiguous()
        self._kernel.append_block(template[None])
        self._steps = self._kernel.n_steps

    def forward_far(self, rows, n0, b):
        return self._kernel.block_history(n0, b)[0], 1

    def forward_rows(self, rows: torch.Tensor) -> None:
        self._kernel.append_block(rows)

    def backward_far(self, g, top, b):  # the kernel runs over G_T, G_{T-1}, ...: its block is reversed
        return self._kernel.block_history(self._steps + 1 - top, b)[0], -1

    def backward_rows(self, g_block: torch.Tensor) -> None:
        self._kernel.append_block(g_block.flip(0))


def history_for(scheme, steps: int, memory, options: dict):
    """The far history of `memory=` (`None`, a window, or `'soe'`, which over fewer steps than its
    exact lags is the rows themselves) for `scheme`'s single weight channel; `options`: the memory
    kernel's (`block`, `soe_tol`, `soe_first_lag`)."""
    if memory is None or (memory == "soe" and steps < options.get("soe_first_lag", 32)):
        return DyadicHistory(scheme.weights.detach()[0], options.get("block", 64))
    if memory != "soe":
        return FullHistory(scheme.weights.detach()[0], memory)

    def make(template):
        return make_kernel(scheme, steps, template, "soe", differentiable=False, **options)

    return SOEHistory(make)


def ptr_row(tensor: torch.Tensor, step: int, b: int):
    """The row of the block's first step in a far buffer whose rows run with `step` (+1 or -1)."""
    return native.ptr(tensor[0] if step > 0 else tensor[b - 1])


def compiled_applies(problem: Problem, scheme, memory, event) -> bool:
    """Whether `fdeint` may run `integrate_compiled`: an explicit `gl`/`l1` solve on the CPU in
    float32/float64 with any memory kernel, one order up to 1, no event, nothing that needs a
    gradient from the weights, `y0` or the step coefficient (`fdeint` checks `func`'s first
    answer), and the kernels built."""
    y0 = problem.y0
    if scheme.name not in ("gl", "l1") or scheme.implicit or event is not None or problem.dy0 is not None:
        return False
    if torch.is_grad_enabled() and (y0.requires_grad or scheme.weights.requires_grad or scheme.step_coef.requires_grad):
        return False
    return (y0.device.type == "cpu" and y0.dtype in (torch.float32, torch.float64) and scheme.weights.dim() == 2
            and scheme.weights.shape[0] == 1 and native.compiled_kernels() is not None)


def integrate_compiled(problem: Problem, scheme, history, save_every: int, block: int, f0: torch.Tensor):
    """The states at steps `0, k, 2k, ...` and the last (`k = save_every`), `[*, *y0.shape]`:
    `fdeint`'s loop with the far history of each `block` of steps from `history` and each step
    one kernel call after `func`.  `f0 = f(t_0, y_0)`, already evaluated (and known to carry no
    gradient)."""
    y0, steps, ts = problem.y0, problem.n_steps, problem.t
    shape, dtype, rhs = y0.shape, y0.dtype, problem.rhs
    m = y0.numel()
    keep = steps // save_every + 1 + (steps % save_every != 0)
    out = y0.new_empty(keep, *shape)
    out[0] = y0.detach()
    full = history.keeps_rows
    rows = y0.new_zeros((steps + 1) if full else block, m)  # exact: every row; 'soe': the block's rows
    history.start(y0.new_zeros(m))
    run, c = native.kernel("fde_step", dtype), float(scheme.step_coef)
    row_bytes = m * y0.element_size()
    weights = history.near_weights
    y, f = out[0], f0
    l1 = scheme.name == "l1"  # gl steps from y_0, l1 from y_{n-1}
    y_address = first_address = y.data_ptr()
    # Every address handed to the kernel is of a tensor held by a name while it runs (out, rows,
    # far, weights, f, y).
    with step_threads(y):
        for n0 in range(1, steps + 1, block):
            b = min(block, steps + 1 - n0)
            far, far_step = history.forward_far(rows, n0, b)
            far_first = far.data_ptr() + (0 if far_step > 0 else (b - 1) * row_bytes)
            far_step *= row_bytes
            block_rows = rows[n0:n0 + b] if full else rows[:b]
            block_address, weights_address = block_rows.data_ptr(), weights.data_ptr()
            for i in range(b):
                n = n0 + i
                if not f.is_contiguous():
                    f = f.contiguous()
                if f.dtype != dtype or f.device.type != "cpu" or f.numel() != m or f.requires_grad:
                    raise TypeError(f"func(t, y) returned a {f.dtype} tensor of {f.numel()} values on {f.device} "
                                    f"(requires_grad={f.requires_grad}) for step {n}; like its first answer it "
                                    f"must be {dtype}, shape {tuple(shape)}, on cpu, without a gradient")
                if n % save_every == 0:
                    y_new = out[n // save_every]
                else:
                    y_new = out[keep - 1] if n == steps else torch.empty_like(y)
                new_address = y_new.data_ptr()
                if run(i, m, far_first + i * far_step, weights_address, block_address, f.data_ptr(),
                       y_address if l1 else first_address, new_address, c):
                    raise not_finite(n)
                y, y_address = y_new, new_address
                if n < steps:
                    f = rhs(ts[n], y)
            history.forward_rows(block_rows)
    return out
