r"""Long convolutions and correlations over time by FFT, a few columns at a time.

Both helpers act on sequences of rows `[N, S]` (time first, `S` independent columns) and
transform `FFT_COLUMNS` columns at a time: batches of the whole width (32,768 columns for a
spiking layer) ran up to 2x slower, out of cache.  They serve the exact far history of the
compiled loops ([spikede.solvers.blocks][]) and of the eager history kernel
([spikede.solvers.memory][]), and the order gradients of the discrete adjoints.
"""

from __future__ import annotations

import torch

__all__ = ["FFT_COLUMNS", "FFT_MIN_ROWS", "dyadic_square", "toeplitz_product", "lag_correlation"]

FFT_COLUMNS = 256
FFT_MIN_ROWS = 1024  # Toeplitz products over this many rows or more go by FFT (where it overtook the product)


def dyadic_square(k: int, block: int) -> tuple[int, int]:
    """`(p, L)` for block `k >= 1` of a blocked sweep: `k = 2^p (2i + 1)`, and the square that starts
    there pairs the `L = 2^p block` rows before it with its next `L` steps (Hairer, Lubich &
    Schlichte 1985).  Every pair of a block and an earlier one falls in exactly one such square."""
    level = (k & -k).bit_length() - 1
    return level, block << level


def _good_length(n: int) -> int:
    """`n` rounded up to a multiple of `FFT_COLUMNS` (lengths with small factors)."""
    return -(-n // FFT_COLUMNS) * FFT_COLUMNS


def toeplitz_product(rows: torch.Tensor, lags: torch.Tensor, outputs: int) -> torch.Tensor:
    r"""`out[q] = sum_s W_{L + q - s} rows[s]` for `q < outputs`, with `L = len(rows)` and `lags`
    the weights `W_1, W_2, ...` (zero beyond the ones given): `[outputs, S]`.

    A circular product of length at least `L + outputs - 1` leaves the wanted entries unaliased."""
    size = rows.shape[0]
    length = _good_length(size + outputs)
    taken = lags[:length].to(rows.dtype)
    spectrum = torch.fft.rfft(torch.cat([taken, taken.new_zeros(length - taken.numel())]))
    out = rows.new_empty(outputs, rows.shape[1])
    for lo in range(0, rows.shape[1], FFT_COLUMNS):
        columns = rows[:, lo : lo + FFT_COLUMNS].t()
        padded = torch.fft.irfft(torch.fft.rfft(columns, n=length) * spectrum, n=length)
        out[:, lo : lo + FFT_COLUMNS] = padded[:, size - 1 : size - 1 + outputs].t()
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
