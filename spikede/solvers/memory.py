r"""Memory kernels: the history sums `H_n = sum_{j>=1} w_j u_{n-j}` of the integrators.

A kernel is fed the stored sequence `u_0, u_1, ...` one element at a time
(`HistoryKernel.append`) and answers `HistoryKernel.read` `(n)` with
`H_n[c] = sum_{j=1}^{n} W[c, j] u_{n-j}` for every weight channel `c` (a scheme
may convolve the same sequence with several weight sequences, e.g. the predictor
and corrector of PECE).

`full` keeps every lag; `window` (`memory=M`, the short-memory principle of
Podlubny 1999) keeps lags `j <= M`: it is the full kernel with `W[:, j > M] = 0`
and never touches rows older than `M`.

Work layout.  Steps are grouped in blocks of `b`.  The "far" history of a block
(rows before its first step) does not depend on the block's own states, so it is
computed for all `b` steps at once against the stored rows; the "near" rows inside
the block are a small product per step.  This reads the history `b` times less
often than a per-step matrix-vector product (which is memory-bound).  With the full
history the far sums come from dyadic squares (`HistoryKernel._far_sums`): the same
sums in products of up to half the sequence, by FFT from `FFT_MIN_ROWS` rows on, in
all `O(N log^2 N)` per state element.  Nothing loops over past steps in Python.

Gradients.  Rows are stored detached in one preallocated buffer; autograd sees
two small functions: `_Append` (stores `u_k`) and `_Contract` (a product of
weights and stored rows; `_ToeplitzByFFT` for the largest squares).  The
backward of `_Contract` adds `W^T g` into a gradient buffer, and the backward
of `_Append` for row `k` hands that row of
the gradient buffer to `u_k`.  A chain of empty "token" tensors orders them:
every contraction over row `k` happens after `u_k` is appended and so is
differentiated before it.  Memory is O(N) rows for values and gradients together;
no stacked history is ever saved per step.
"""

from __future__ import annotations

import torch

from .convolution import FFT_MIN_ROWS, SQUARE_CHUNK, DyadicSquares, lag_correlation, toeplitz_product
from .engine import block_threads

__all__ = ["HistoryKernel", "WeightedRows", "check_memory", "make_kernel"]


def check_memory(memory: object) -> int | str | None:
    """Validate `memory=`: `None` (full history), a positive int window, or `'soe'`."""
    if memory is None or memory == "soe":
        return memory
    if isinstance(memory, bool) or not isinstance(memory, int):
        raise ValueError(
            f"memory must be None (full history), a positive int window of lags or 'soe', got {memory!r}"
        )
    if memory <= 0:
        raise ValueError(f"memory must be a positive number of lags, got {memory}")
    return memory


class _RowStore:
    """Detached rows `u_k` (flattened) and, during backward, their gradient accumulators.

    `descending`: row `k` lives at `data[R - 1 - k]` (`R` rows), so that a sweep
    backwards in time fills its buffer in natural time order.
    """

    def __init__(self, data: torch.Tensor, descending: bool = False):
        self.data = data
        self.descending = descending
        self.grad: torch.Tensor | None = None

    def _span(self, lo: int, hi: int) -> slice:
        """Where rows `[lo, hi)` are (in reverse order when descending)."""
        size = self.data.shape[0]
        return slice(size - hi, size - lo) if self.descending else slice(lo, hi)

    def rows(self, lo: int, hi: int) -> torch.Tensor:
        return self.data[self._span(lo, hi)]

    def grad_rows(self, lo: int, hi: int) -> torch.Tensor:
        if self.grad is None:
            self.grad = torch.zeros_like(self.data)
        return self.grad[self._span(lo, hi)]


class _Append(torch.autograd.Function):
    @staticmethod
    def forward(ctx, token, u, store: _RowStore, k: int):
        store.rows(k, k + 1)[0].copy_(u.detach().reshape(-1))
        ctx.store, ctx.k, ctx.shape = store, k, u.shape
        return token.new_empty(0)

    @staticmethod
    def backward(ctx, grad_token):
        store, k = ctx.store, ctx.k
        if store.grad is None:  # no contraction asked for the rows' gradient
            return grad_token, None, None, None
        row = store.grad_rows(k, k + 1)[0]
        grad_u = row.clone().reshape(ctx.shape)
        row.zero_()
        return grad_token, grad_u, None, None


class _Contract(torch.autograd.Function):
    """`out[c, i] = sum_k weights[c, i, k] * rows[k]` over the stored rows `[lo, hi)` as they lie.

    Per-component weights `[C, d, m, K]` (one order per entry of the state's last axis, of size
    `d`) pair each component only with itself: `out[c, i, ..., q] = sum_k weights[c, q, i, k] *
    rows[k, ..., q]`."""

    @staticmethod
    def forward(ctx, token, weights, store: _RowStore, lo: int, hi: int):
        ctx.store, ctx.lo, ctx.hi = store, lo, hi
        ctx.save_for_backward(weights)
        return _product(weights, store.rows(lo, hi))

    @staticmethod
    def backward(ctx, grad_out):
        (weights,) = ctx.saved_tensors
        store, lo, hi = ctx.store, ctx.lo, ctx.hi
        grad_weights = None
        if weights.dim() == 4:  # per component: g [C, d, m, rest]
            channels, components, steps, _ = weights.shape
            g = grad_out.reshape(channels, steps, -1, components).permute(0, 3, 1, 2)
            if ctx.needs_input_grad[0] and hi > lo:
                rows_grad = (weights.transpose(-1, -2) @ g).sum(0)  # [d, K, rest]
                store.grad_rows(lo, hi).add_(rows_grad.permute(1, 2, 0).reshape(hi - lo, -1))
            if ctx.needs_input_grad[1]:
                grad_weights = g @ _by_component(store.rows(lo, hi), components).transpose(-1, -2)
            return grad_out.new_empty(0), grad_weights, None, None, None
        if ctx.needs_input_grad[0] and hi > lo:
            c, m, k = weights.shape
            flat_w = weights.permute(2, 0, 1).reshape(k, c * m)
            store.grad_rows(lo, hi).addmm_(flat_w, grad_out.reshape(c * m, -1))
        if ctx.needs_input_grad[1]:
            grad_weights = grad_out @ store.rows(lo, hi).t()
        return grad_out.new_empty(0), grad_weights, None, None, None


class _ToeplitzByFFT(torch.autograd.Function):
    """`out[c, q] = sum_s W[c, L + q - s] rows[lo + s]` for `q < outputs` (`L = hi - lo`), the far
    sums of a dyadic square, by FFT ([spikede.solvers.convolution][]); backwards the transposed
    product for the rows and a lag correlation for the weights `W` `[C, N + 1]` (by lag)."""

    @staticmethod
    def forward(ctx, token, weights, store: _RowStore, lo: int, hi: int, outputs: int):
        ctx.store, ctx.lo, ctx.hi = store, lo, hi
        ctx.save_for_backward(weights)
        return _fft_square(weights, _in_time_order(store, store.rows(lo, hi)), outputs)

    @staticmethod
    def backward(ctx, grad_out):
        (weights,) = ctx.saved_tensors
        store, lo, hi = ctx.store, ctx.lo, ctx.hi
        size, outputs = hi - lo, grad_out.shape[1]
        if ctx.needs_input_grad[0]:
            g_rows = sum(toeplitz_product(g.flip(0), w[1:], size) for g, w in zip(grad_out, weights)).flip(0)
            store.grad_rows(lo, hi).add_(_in_time_order(store, g_rows))
        grad_weights = None
        if ctx.needs_input_grad[1]:  # lag L + q - s between grad row q (at time L + q) and row s
            rows = _in_time_order(store, store.rows(lo, hi))
            later = rows.new_zeros(size + outputs, rows.shape[1])
            earlier = torch.cat([rows, rows.new_zeros(outputs, rows.shape[1])])
            grad_weights = torch.zeros_like(weights)
            lags = min(size + outputs, weights.shape[1])
            for c, g in enumerate(grad_out):
                later[size:] = g
                grad_weights[c, 1:lags] = lag_correlation(later, earlier)[1:lags]
        return grad_out.new_empty(0), grad_weights, None, None, None, None


def _in_time_order(store: _RowStore, rows: torch.Tensor) -> torch.Tensor:
    """Rows as `store.rows` gives them (reversed in a descending store) in time order, or back."""
    return rows.flip(0) if store.descending else rows


def _product(weights: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """`_Contract`'s sums: `weights [C, m, K] @ rows [K, width]`, or per component for `[C, d, m, K]`."""
    if weights.dim() == 3:
        return weights @ rows
    channels, components, steps, _ = weights.shape
    out = weights @ _by_component(rows, components)  # [C, d, m, rest]
    return out.permute(0, 2, 3, 1).reshape(channels, steps, -1)


def _fft_square(weights: torch.Tensor, rows: torch.Tensor, outputs: int) -> torch.Tensor:
    """`_ToeplitzByFFT`'s sums over rows in time order."""
    return torch.stack([toeplitz_product(rows, w[1:], outputs) for w in weights])


def _by_component(rows: torch.Tensor, components: int) -> torch.Tensor:
    """Flattened rows `[K, width]` as `[d, K, width / d]`: component `q` of the state's last axis first."""
    return rows.reshape(rows.shape[0], -1, components).permute(2, 0, 1)


class HistoryKernel:
    """Exact (`window=None`) or short-memory history sums over a stored sequence.

    `weights`: tensor `[C, N + 1]` indexed by lag (lag 0 unused), in the state's
    dtype; it may require grad.  `[C, d, N + 1]`: one weight sequence per component of the
    state's last axis (size `d`; per-component orders).  `n_steps`: the largest `n` that will be read.
    `block`: the number of steps whose far history is computed together.
    `storage`: a contiguous tensor of `n_steps + 1` rows of `template`'s size, dtype and
    device to keep the rows in (default: a new one); `descending=True` puts row `k` at
    `storage[n_steps - k]`, so a sweep backwards in time leaves its rows in natural time order.
    """

    def __init__(
        self,
        weights: torch.Tensor,
        n_steps: int,
        template: torch.Tensor,
        window: int | None = None,
        block: int = 64,
        storage: torch.Tensor | None = None,
        descending: bool = False,
    ):
        self.window = window
        self.channels = weights.shape[0]
        self.shape = template.shape
        self.block = max(1, int(block))
        self._own_storage = storage is None
        if storage is None:
            storage = template.new_empty(n_steps + 1, template.numel())
        elif (storage.shape[:1] != (n_steps + 1,) or storage[0].numel() != template.numel()
              or storage.dtype != template.dtype or storage.device != template.device or not storage.is_contiguous()):
            raise ValueError(
                f"storage must be a contiguous {template.dtype} tensor on {template.device} with {n_steps + 1} rows "
                f"of {template.numel()} elements, got {storage.dtype} {tuple(storage.shape)} on {storage.device}"
            )
        self._store = _RowStore(storage.view(n_steps + 1, -1), descending)
        self._set_weights(weights, n_steps)
        self._token = template.new_empty(0)
        self._n_stored = 0
        self._far: tuple[torch.Tensor, ...] = ()
        self._block_start = 0
        self._dyadic = window is None  # far sums over dyadic squares while the blocks stay aligned
        self._tracked = False  # whether a row was appended with a gradient (autograd nodes from then on)
        self._squares = DyadicSquares(self.block, axis=1) if self._dyadic else None

    @property
    def n_steps(self) -> int:
        """The largest `n` that `read` accepts."""
        return self._store.data.shape[0] - 1

    def stored(self) -> torch.Tensor:
        """The rows appended so far, `[k, *shape]` (a view, not a copy; ascending kernels only)."""
        if self._store.descending:
            raise ValueError("stored() lists the rows of an ascending kernel; this one was built with descending=True")
        return self._store.data[: self._n_stored].view(self._n_stored, *self.shape)

    def _set_weights(self, weights: torch.Tensor, n_steps: int) -> None:
        components = () if weights.dim() == 2 else tuple(self.shape[-1:])
        if (weights.shape[0] != self.channels or weights.shape[1:-1] != components
                or weights.shape[-1] < n_steps + 1):
            raise ValueError(f"weights must be [{', '.join(map(str, (self.channels, *components)))}, >= {n_steps + 1}], "
                             f"got {tuple(weights.shape)}")
        if self.window is not None and self.window < weights.shape[-1] - 1:
            keep = torch.arange(weights.shape[-1], device=weights.device) <= self.window
            weights = weights * keep.to(weights.dtype)
        self.n_lags = weights.shape[-1] - 1
        self._weights = weights
        # Paired with rows in storage order: reversed lags for ascending rows, as they are for descending.
        self._lag_weights = weights if self._store.descending else weights.flip(-1)

    def extend(self, weights: torch.Tensor, n_steps: int) -> None:
        """Raise the horizon to `n_steps` with the longer `weights`; stored rows are kept.

        This is how an open-ended (single-step) simulation grows its history.
        """
        store = self._store
        if not self._own_storage or store.descending:
            raise ValueError(
                "extend() needs a kernel over its own ascending storage (built without storage= or descending=)"
            )
        if n_steps < self.n_steps:
            raise ValueError(f"extend() cannot shrink the horizon from {self.n_steps} to {n_steps}")
        data = store.data.new_empty(n_steps + 1, store.data.shape[1])
        data[: self._n_stored] = store.data[: self._n_stored]
        store.data = data
        if store.grad is not None:
            grad = torch.zeros_like(data)
            grad[: store.grad.shape[0]] = store.grad
            store.grad = grad
        self._set_weights(weights, n_steps)
        self._end_dyadic()  # its squares stop at the old horizon

    def snapshot(self) -> int:
        """What `restore` needs to go back to this point: the rows are kept, so their count."""
        return self._n_stored

    def restore(self, snapshot: int) -> None:
        """Forget the rows appended after `snapshot`; the next `read` starts a new block
        (the same sums, bit for bit, when the restored count is `1` modulo `block`)."""
        self._n_stored = snapshot
        self._far, self._block_start = (), 0
        self._end_dyadic()

    def _end_dyadic(self) -> None:
        """From the next block on, one product over all earlier rows per block (after `restore` or
        `extend`, where the squares computed ahead no longer fit)."""
        self._dyadic, self._squares = False, None

    def _far_sums(self, n: int, m: int) -> torch.Tensor:
        """The contributions `[C, m, width]` of the rows before step `n` to steps `n .. n+m-1`.

        While blocks start at `1 + k b`: row 0 directly, and rows `1 ..` over dyadic squares
        (`spikede.solvers.convolution.DyadicSquares`, as `spikede.solvers.blocks.DyadicHistory`;
        sweep index `i` is step `i + 1` and row `i + 1`): products `SQUARE_CHUNK` steps at a time,
        by FFT from `FFT_MIN_ROWS` rows on.  The same sums in products of up to half the sequence
        instead of `b`-row slivers.  Otherwise (a window, after `restore` or `extend`) one product
        over all earlier rows."""
        width = self._store.data.shape[1]
        if not self._dyadic or (n - 1) % self.block:
            self._end_dyadic()
            lo = self._oldest_row(n)
            with block_threads(self.channels * m * (n - lo) * width):
                return self._contract(n, m, lo, n)
        far = self._contract(n, m, 0, 1)
        square = self._squares.open(n - 1, self.n_lags)
        rows = 0 if square is None else square.hi - square.lo
        if rows >= FFT_MIN_ROWS and self._weights.dim() == 2:  # the transform serves all its steps at once
            lo, hi = square.lo + 1, square.hi + 1
            with block_threads(self.channels * square.outputs * rows * width):
                if self._tracks(self._weights):
                    sums = _ToeplitzByFFT.apply(self._token, self._weights, self._store, lo, hi, square.outputs)
                else:
                    sums = _fft_square(self._weights, _in_time_order(self._store, self._store.rows(lo, hi)),
                                       square.outputs)
            square.keep(n - 1, sums)
        for square in self._squares.serving(n - 1, m):
            if not square.covers(n - 1, m):  # the next SQUARE_CHUNK steps of a product square
                outputs = min(max(SQUARE_CHUNK, m), square.first + square.outputs - (n - 1))
                rows = square.hi - square.lo
                with block_threads(self.channels * outputs * rows * width):
                    square.keep(n - 1, self._contract(n, outputs, square.lo + 1, square.hi + 1))
            far = far + square.part(n - 1, m)
        return far

    def _oldest_row(self, n: int) -> int:
        return 0 if self.window is None else max(0, n - self.window)

    def _weight_rows(self, n0: int, m: int, lo: int, hi: int) -> torch.Tensor:
        """`[C, (d,) m, hi - lo]`: the weights pairing rows `[lo, hi)`, in storage order, with steps
        `n0 .. n0+m-1`; ascending: entry `[c, i', k] = W[c, n0 + (m-1-i') - (lo + k)]` (steps
        reversed), descending: entry `[c, i, k] = W[c, n0 + i - (hi - 1 - k)]`."""
        if self._store.descending:
            start = n0 - hi + 1
        else:
            start = self.n_lags - n0 - (m - 1) + lo
        span = self._lag_weights[..., start : start + m - 1 + hi - lo]
        return span.unfold(-1, hi - lo, 1)

    def _contract(self, n0: int, m: int, lo: int, hi: int) -> torch.Tensor:
        """History contributions of rows `[lo, hi)` to steps `n0 .. n0+m-1`: `[C, m, width]`."""
        w = self._weight_rows(n0, m, lo, hi)
        if self._tracks(w):
            out = _Contract.apply(self._token, w, self._store, lo, hi)
        else:
            out = _product(w, self._store.rows(lo, hi))
        return out if self._store.descending else out.flip(1)

    def append(self, u: torch.Tensor) -> None:
        """Store the next element `u_k` of the sequence."""
        k = self._n_stored
        if torch.is_grad_enabled() and u.requires_grad:
            self._token = _Append.apply(self._token, u, self._store, k)
            self._tracked = True
        else:  # nothing to differentiate: no autograd node
            self._store.rows(k, k + 1)[0].copy_(u.detach().reshape(-1))
        self._n_stored = k + 1

    def _tracks(self, weights: torch.Tensor) -> bool:
        """Whether sums with `weights` need autograd: some row or the weights carry a gradient."""
        return torch.is_grad_enabled() and (self._tracked or weights.requires_grad)

    def read(self, n: int) -> torch.Tensor:
        """`H_n`: `[C, *shape]`; rows `0 .. n-1` must have been appended."""
        if self._n_stored != n:
            raise RuntimeError(f"history holds {self._n_stored} rows; read({n}) needs exactly {n}")
        if n >= self._block_start + len(self._far):
            self._block_start = n
            m = min(self.block, self.n_lags - n + 1)
            self._far = self._far_sums(n, m).unbind(1)
        h = self._far[n - self._block_start]
        lo = max(self._block_start, self._oldest_row(n))
        if n > lo:
            h = h + self._contract(n, 1, lo, n)[:, 0]
        return h.reshape(self.channels, *self.shape)


class WeightedRows:
    """Stored rows `u_0, u_1, ...` and sums `sum_k w_k u_k` with weights given at each read.

    For schemes whose weights are not a convolution (the L1 scheme on a non-uniform grid): one
    product of the weights with the stored rows per read, no loop over past steps; gradients as
    for `HistoryKernel` (rows kept once, their gradient accumulated in one buffer).
    """

    def __init__(self, n_rows: int, template: torch.Tensor):
        self.shape = template.shape
        self._store = _RowStore(template.new_empty(n_rows, template.numel()))
        self._token = template.new_empty(0)
        self._count = 0

    def append(self, u: torch.Tensor) -> None:
        """Store the next row."""
        self._token = _Append.apply(self._token, u, self._store, self._count)
        self._count += 1

    def weighted_sum(self, weights: torch.Tensor) -> torch.Tensor:
        """`sum_k weights[k] u_k` over the rows stored so far (`weights`: one per row)."""
        if weights.shape != (self._count,):
            raise ValueError(f"weights must be [{self._count}] (one per stored row), got {tuple(weights.shape)}")
        out = _Contract.apply(self._token, weights.reshape(1, 1, -1), self._store, 0, self._count)
        return out.reshape(self.shape)


def make_kernel(scheme, n_steps: int, template: torch.Tensor, memory, *, block: int = 64,
                soe_tol: float | None = None, soe_first_lag: int = 32, differentiable: bool | None = None):
    """The memory kernel for `memory=` (`None`, an int window or `'soe'`) over `scheme`'s weights.

    `differentiable`: whether gradients may have to pass through the kernel (default: whether
    grad mode is on now); for `'soe'` a kernel that never passes them is the faster blocked one.
    """
    if memory != "soe" or n_steps < soe_first_lag:  # a horizon shorter than L0 is all exact lags
        window = None if memory == "soe" else memory
        return HistoryKernel(scheme.weights, n_steps, template, window=window, block=block)
    from .soe import BlockedSOEKernel, SOEKernel, compress, default_tolerance

    from .weights import grunwald_letnikov

    tol = default_tolerance(template.dtype) if soe_tol is None else float(soe_tol)
    horizon = 1 << (n_steps - 1).bit_length()
    channels = scheme.sequence_terms()
    by_parts = all(seq == "gl" for channel in channels for seq, *_ in channel)
    correction = None
    if by_parts:  # compress the partial sums G_j and carry differences (see SOEKernel)
        correction = torch.tensor(
            [sum(scale * grunwald_letnikov(alpha - 1.0, soe_first_lag - 1)[-1].item() for _, alpha, scale, _ in channel)
             for channel in channels],
            dtype=torch.float64,
        )
        channels = [[("glsum", alpha, scale, shift) for _, alpha, scale, shift in channel] for channel in channels]
    terms = [
        [(compress(seq, alpha, horizon, tol, soe_first_lag), scale, shift) for seq, alpha, scale, shift in channel]
        for channel in channels
    ]
    exact = scheme.weights[:, :soe_first_lag].detach()
    if not (torch.is_grad_enabled() if differentiable is None else differentiable):  # same sums, blocked
        return BlockedSOEKernel(exact, terms, template, n_steps, correction, block)
    return SOEKernel(exact, terms, template, n_steps, correction)
