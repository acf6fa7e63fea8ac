r"""Long convolutions and correlations over time: by FFT, a few columns at a time, and by halving splits.

The FFT helpers act on sequences of rows `[N, S]` (time first, `S` independent columns) and
transform `FFT_COLUMNS` columns at a time: batches of the whole width (32,768 columns for a
spiking layer) ran up to 2x slower, out of cache.  `split_square_product` computes a square
Toeplitz (or Hankel) product in three products of half the size per halving.  `DyadicSquares`
plans the products of a blocked sweep's far history.  They serve the exact far history of the
compiled loops ([spikede.solvers.blocks][]) and of the eager history kernel
([spikede.solvers.memory][]), and the order gradients of the discrete adjoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import buffers

__all__ = ["FFT_COLUMNS", "FFT_MIN_ROWS", "SPLIT_MIN_ROWS", "SPLIT_FFT_MIN_ROWS", "SQUARE_CHUNK", "Square",
           "DyadicSquares", "toeplitz_product", "split_square_product", "lag_correlation"]

FFT_COLUMNS = 256
FFT_MIN_ROWS = 1024  # Toeplitz products over this many rows or more go by FFT (where it overtook the product)
SQUARE_CHUNK = 128  # sums a product square computes at a time (its memory; products of 128 rows run near full speed)
SPLIT_MIN_ROWS = 256  # squares of this many rows or more: split_square_product (3/4 of the work per halving) ...
SPLIT_FFT_MIN_ROWS = 2048  # ... up to here, where the FFT overtakes the split (at 1024 rows: split 94 ms, FFT 98 ms
#                            for 4096 columns, 638 and 987 ms for 32768; at 2048: 293 and 219 ms, float32, 1 thread)
_SPLIT_LEAF = 128  # halves down to this many rows; below, the matrix products lose speed faster than the split gains
_SPLIT_COLUMNS = 1024  # columns per pass: the halves' sums stay in cache


@dataclass
class Square:
    """One dyadic square of a blocked sweep: it pairs the rows `[lo, hi)` with the indices `outputs`
    from `first` on, and keeps the sums computed so far from `start` on (`keep`, `part`; time on
    axis `axis` of `sums`)."""

    first: int
    outputs: int
    lo: int
    hi: int
    axis: int
    start: int = 0
    sums: torch.Tensor | None = None

    def keep(self, start: int, sums: torch.Tensor) -> None:
        self.start, self.sums = start, sums

    def covers(self, i0: int, b: int) -> bool:
        return self.sums is not None and self.start <= i0 and i0 + b <= self.start + self.sums.shape[self.axis]

    def part(self, i0: int, b: int) -> torch.Tensor:
        return self.sums.narrow(self.axis, i0 - self.start, b)


class DyadicSquares:
    """The squares of a sweep in blocks of `block` (Hairer, Lubich & Schlichte, SIAM J. Sci. Stat.
    Comput. 6, 1985): at block `k = 2^p (2i + 1)` the `L = 2^p block` rows before it meet its next
    `L` indices.  Every pair of a block and an earlier one falls in exactly one square, and at any
    index at most one square per level is open."""

    def __init__(self, block: int, axis: int = 0):
        self.block, self.axis = int(block), axis
        self._open: dict[int, Square] = {}

    def open(self, i0: int, total: int) -> Square | None:
        """The square that starts at index `i0` (a multiple of `block`; `None` at 0), of a sweep of
        `total` indices."""
        k = i0 // self.block
        if k == 0:
            return None
        level = (k & -k).bit_length() - 1
        rows = self.block << level
        square = Square(i0, min(rows, total - i0), i0 - rows, i0, self.axis)
        self._open[level] = square
        return square

    def serving(self, i0: int, b: int) -> list[Square]:
        """The open squares that serve indices `i0 .. i0+b-1`; those ending there are closed."""
        found = [sq for sq in self._open.values() if sq.first <= i0 < sq.first + sq.outputs]
        self._open = {level: sq for level, sq in self._open.items() if i0 + b < sq.first + sq.outputs}
        return found


def _good_length(n: int) -> int:
    """`n` rounded up to a multiple of `FFT_COLUMNS` (lengths with small factors)."""
    return -(-n // FFT_COLUMNS) * FFT_COLUMNS


def _padded(lags: torch.Tensor, length: int, dtype: torch.dtype) -> torch.Tensor:
    """The first `length` of `lags` in `dtype`, zeros beyond the ones given."""
    taken = lags[:length].to(dtype)
    return torch.cat([taken, taken.new_zeros(length - taken.numel())])


def toeplitz_product(rows: torch.Tensor, lags: torch.Tensor, outputs: int) -> torch.Tensor:
    r"""`out[q] = sum_s W_{L + q - s} rows[s]` for `q < outputs`, with `L = len(rows)` and `lags`
    the weights `W_1, W_2, ...` (zero beyond the ones given): `[outputs, S]`.

    A circular product of length at least `L + outputs - 1` leaves the wanted entries unaliased."""
    size = rows.shape[0]
    length = _good_length(size + outputs)
    spectrum = torch.fft.rfft(_padded(lags, length, rows.dtype))
    out = rows.new_empty(outputs, rows.shape[1])
    for lo in range(0, rows.shape[1], FFT_COLUMNS):
        columns = rows[:, lo : lo + FFT_COLUMNS].t()
        padded = torch.fft.irfft(torch.fft.rfft(columns, n=length) * spectrum, n=length)
        out[:, lo : lo + FFT_COLUMNS] = padded[:, size - 1 : size - 1 + outputs].t()
    return out


def split_square_product(rows: torch.Tensor, lags: torch.Tensor, hankel: bool) -> torch.Tensor:
    r"""`out[q] = sum_s M[q, s] rows[s]` for the square `L x L` matrix `M[q, s] = t_{q - s + L - 1}`
    (Toeplitz) or, if `hankel`, `M[q, s] = t_{q + s}`, with `t = lags[:2L - 1]` (zero beyond the
    ones given): `[L, S]`.

    Each halving writes `M` in `h x h` blocks, of which two are the same matrix `A` (Toeplitz: the
    diagonal blocks; Hankel: the off-diagonal ones), and takes three products of half the size
    instead of four:

    $$
    \begin{pmatrix} A & B \\ C & A \end{pmatrix} \begin{pmatrix} x \\ y \end{pmatrix} =
    \begin{pmatrix} A (x + y) + (B - A) y \\ A (x + y) + (C - A) x \end{pmatrix},
    $$

    and the differences of Toeplitz (Hankel) blocks are Toeplitz (Hankel) again, so the split
    recurses (the Karatsuba idea applied to structured matrices).  Two halvings do 9/16 of the
    multiply-adds in products of `L / 4` rows.  The rounding errors stay those of a product
    with `|M| |rows|`: every term is a sum of the same weights over the same rows."""
    size = rows.shape[0]
    t = _padded(lags, 2 * size - 1, rows.dtype)
    out = buffers.empty(tuple(rows.shape), rows)  # a reused buffer: fresh large ones fault on every page
    for lo in range(0, rows.shape[1], _SPLIT_COLUMNS):
        out[:, lo : lo + _SPLIT_COLUMNS] = _split_product(t, rows[:, lo : lo + _SPLIT_COLUMNS], hankel)
    return out


def _split_product(t: torch.Tensor, rows: torch.Tensor, hankel: bool) -> torch.Tensor:
    """`split_square_product` on one pass of columns, `t` of length exactly `2L - 1`."""
    size = rows.shape[0]
    if size <= _SPLIT_LEAF or size % 2:
        # Hankel row r: t_r .. t_{r+L-1}; Toeplitz row r: t_{r+L-1} down to t_r
        matrix = t.unfold(0, size, 1) if hankel else t.flip(0).unfold(0, size, 1).flip(0)
        return matrix.contiguous() @ rows
    h = size // 2
    shared, first, second = t[h : 3 * h - 1], t[: 2 * h - 1], t[2 * h :]
    x, y = rows[:h], rows[h:]
    both = _split_product(shared, x + y, hankel)
    out = torch.empty_like(rows)
    torch.add(both, _split_product(first - shared, x if hankel else y, hankel), out=out[:h])
    torch.add(both, _split_product(second - shared, y if hankel else x, hankel), out=out[h:])
    return out


def lag_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""`r[d] = sum_i <a_i, b_{i-d}>` for `d = 0 .. N-1` over rows `a, b` `[N, S]` (zero outside), by
    one transform of each and a sum over columns in the frequency domain: `O(S N log N)` instead
    of the `N^2 S` of the full product `a b^T`."""
    steps = a.shape[0]
    length = _good_length(2 * steps)
    total = None
    for lo in range(0, a.shape[1], FFT_COLUMNS):
        fa = torch.fft.rfft(a[:, lo : lo + FFT_COLUMNS].t(), n=length)
        fb = torch.fft.rfft(b[:, lo : lo + FFT_COLUMNS].t(), n=length)
        part = (fa * fb.conj()).sum(0)
        total = part if total is None else total + part
    return torch.fft.irfft(total, n=length)[:steps]
