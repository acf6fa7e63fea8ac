r"""Sum-of-exponentials (SOE) compression of the convolution weights: the `'soe'` memory.

Every weight sequence of the schemes is, for lags `j >= 1`, a Laplace transform

$$
w_j = \int_0^\infty \phi(s)\, e^{-j s}\, ds,
$$

with (for `0 < a < 1`)

* Grünwald–Letnikov `g_j`: `phi(s) = -(sin(pi a)/pi) e^{a s} (1 - e^{-s})^a` (from
  `g_j = -(sin(pi a)/pi) int_0^1 x^{j-1-a} (1-x)^a dx` and `x = e^{-s}`);
* their partial sums `G_j = g_0 + ... + g_j` (the coefficients of `(1-z)^(a-1)`):
  `phi(s) = (sin(pi a)/pi) (e^s - 1)^(a-1)`;
* L1 `(j+1)^{1-a} - j^{1-a}`: `phi(s) = (1-a)/Gamma(a) s^{a-2} (1 - e^{-s})`;
* product rectangle `(k+1)^a - k^a`: `phi(s) = a/Gamma(1-a) s^{-a-1} (1 - e^{-s})`;
* product trapezoid `(m+1)^{a+1} + (m-1)^{a+1} - 2 m^{a+1}`:
  `phi(s) = a(1+a)/Gamma(1-a) s^{-a-2} (2 cosh s - 2)`,

all from `t^{-b} = 1/Gamma(b) int_0^inf s^{b-1} e^{-ts} ds`.  With `s = e^u` the
integrand is analytic in the strip `|Im u| < pi/2` and decays at both ends, so the
trapezoidal rule in `u` converges exponentially and yields `w_j ~ sum_k c_k r_k^j`
with `r_k = exp(-s_k)` (the construction of e.g. Beylkin & Monzón, and of Jiang et al.,
Commun. Comput. Phys. 21 (2017) for fast Caputo derivatives).  Modes with
`s_k < sigma / N` behave like `1 - j s_k` over the whole horizon `N` and are merged
into one mode with the same zeroth and first moments.  The step is refined until the
measured maximum relative error over every lag `L0 .. N` is within the tolerance;
that measured figure is stored with the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import torch
from scipy.special import gamma as gamma_fn

from . import weights as wts
from .engine import block_threads

__all__ = ["WeightSequence", "SEQUENCES", "SumOfExponentials", "compress", "SOEKernel", "BlockedSOEKernel"]

@dataclass(frozen=True)
class SumOfExponentials:
    """`w_j ~ sum_k coefficients[k] * rates[k] ** j` for `first_lag <= j <= horizon`.

    `max_rel_error` is the measured maximum relative error over those lags.
    """

    sequence: str
    alpha: float
    rates: np.ndarray
    coefficients: np.ndarray
    first_lag: int
    horizon: int
    tol: float
    max_rel_error: float

    @property
    def n_modes(self) -> int:
        return len(self.rates)


@dataclass(frozen=True)
class WeightSequence:
    r"""A convolution weight sequence `w_j(alpha)` that `memory='soe'` compresses.

    `exact(alpha, n)` gives lags `0 .. n` (float64 tensor, `spikede.solvers.weights`);
    `density(alpha)` gives `(C, gamma, psi)` with the sequence's Laplace representation
    $w_j = \int_0^\infty e^{-s j} \phi(s)\, ds$, $s \phi(s) = C s^\gamma \psi(s)$, `psi` smooth
    with `psi(0) = 1` (the quadrature in `log s` that `compress` uses); `at_one` is the sequence's
    constant value for lags `>= 2` at `alpha = 1`, where the representation degenerates.
    """

    name: str
    exact: Callable[[float, int], torch.Tensor]
    density: Callable[[float], tuple]
    at_one: float


SEQUENCES = {
    sequence.name: sequence
    for sequence in (
        WeightSequence("gl", wts.grunwald_letnikov, lambda a: (
            -math.sin(math.pi * a) / math.pi, 1.0 + a, lambda s: np.exp(a * s) * (-np.expm1(-s) / s) ** a), 0.0),
        WeightSequence("glsum", lambda a, n: wts.grunwald_letnikov(a - 1.0, n), lambda a: (
            math.sin(math.pi * a) / math.pi, a, lambda s: (np.expm1(s) / s) ** (a - 1.0)), 0.0),
        WeightSequence("l1", wts.l1_weights, lambda a: (
            (1.0 - a) / gamma_fn(a), a, lambda s: -np.expm1(-s) / s), 0.0),
        WeightSequence("rect", wts.rectangle_weights, lambda a: (
            a / gamma_fn(1.0 - a), 1.0 - a, lambda s: -np.expm1(-s) / s), 1.0),
        WeightSequence("trap", wts.trapezoid_weights, lambda a: (
            a * (1.0 + a) / gamma_fn(1.0 - a), 1.0 - a, lambda s: (2.0 * np.sinh(0.5 * s) / s) ** 2), 2.0),
    )
}


def _trapezoid_modes(sequence: str, a: float, horizon: int, tol: float, first_lag: int, h: float, merge: float = 1.0):
    """Trapezoidal rule in `u = log s` on nodes `u_max - k h`; the infinitely many nodes
    below `log(sigma / N)` are summed as geometric series (`psi ~ 1` there) into one mode."""
    scale, gam, psi = SEQUENCES[sequence].density(a)
    sigma = merge * (tol / 8.0) ** (1.0 / (gam + 2.0))
    u_max = math.log((math.log(1.0 / tol) + 12.0) / (first_lag - 1.5))
    n_kept = int(math.floor((u_max - math.log(sigma / horizon)) / h)) + 1
    u = u_max - h * np.arange(n_kept)
    s = np.exp(u)
    rates = list(np.exp(-s))
    coefs = list(h * scale * np.exp(gam * u) * psi(s))
    u_tail = u_max - h * n_kept
    mass = h * scale * math.exp(gam * u_tail) / -math.expm1(-gam * h)
    first_moment = h * scale * math.exp((gam + 1.0) * u_tail) / -math.expm1(-(gam + 1.0) * h)
    rates.append(math.exp(-first_moment / mass))
    coefs.append(mass)
    return np.array(rates), np.array(coefs)


def _max_rel_error(rates, coefs, exact, first_lag, horizon) -> float:
    worst = 0.0
    log_r = np.log(rates)
    for start in range(first_lag, horizon + 1, 65536):
        j = np.arange(start, min(start + 65536, horizon + 1), dtype=np.float64)
        approx = np.exp(np.outer(j, log_r)) @ coefs
        want = exact[start : start + len(j)]
        error = np.abs(approx - want) / np.abs(want)
        if not np.all(np.isfinite(error)):
            return math.inf
        worst = max(worst, float(error.max()))
    return worst


@lru_cache(maxsize=64)
def compress(sequence: str, alpha: float, horizon: int, tol: float, first_lag: int = 32) -> SumOfExponentials:
    """SOE of `sequence` (`'gl'`, `'l1'`, `'rect'`, `'trap'`) for lags `first_lag .. horizon`.

    Computed in float64 and cached per argument set.  For `alpha = 1` the sequences are
    finite or constant and are represented exactly (`gl`, `l1`: no modes; `rect`: one
    mode `1`; `trap`: one mode `2`).  Raises `RuntimeError` if `tol` cannot be met.
    """
    if sequence not in SEQUENCES:
        raise ValueError(f"unknown sequence {sequence!r}; valid: {tuple(SEQUENCES)}")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must satisfy 0 < alpha <= 1, got {alpha}")
    if first_lag < 2:
        raise ValueError(f"first_lag must be >= 2, got {first_lag}")
    if alpha == 1.0:
        constant = SEQUENCES[sequence].at_one
        rates, coefs = (np.ones(1), np.array([constant])) if constant else (np.zeros(0), np.zeros(0))
        return SumOfExponentials(sequence, alpha, rates, coefs, first_lag, horizon, tol, 0.0)
    exact = SEQUENCES[sequence].exact(alpha, horizon).numpy()
    h = 0.55
    merge, previous = 1.0, math.inf
    for _ in range(12):
        rates, coefs = _trapezoid_modes(sequence, alpha, horizon, tol, first_lag, h, merge)
        error = _max_rel_error(rates, coefs, exact, first_lag, horizon)
        if error <= tol:
            return SumOfExponentials(sequence, alpha, rates, coefs, first_lag, horizon, tol, error)
        if error > 0.5 * previous:  # the step no longer helps: the merged slow modes limit the error
            merge *= 0.1
        previous = error
        h *= 0.85
    raise RuntimeError(
        f"sum-of-exponentials for {sequence!r}, alpha={alpha}, horizon={horizon} reached only "
        f"{error:.2e} relative error (tolerance {tol:.1e}); raise soe_tol or soe_first_lag"
    )


def default_tolerance(dtype: torch.dtype) -> float:
    """`1e-8` for float64, `1e-6` for float32 and narrower types (their rounding is ~1e-7)."""
    return 1e-8 if dtype == torch.float64 else 1e-6


class _SOEAppend(torch.autograd.Function):
    @staticmethod
    def forward(ctx, token, u, kernel, k: int):
        kernel._store(u.detach().reshape(-1))
        ctx.kernel, ctx.k, ctx.shape = kernel, k, u.shape
        return token.new_empty(0)

    @staticmethod
    def backward(ctx, grad_token):
        grad_u = ctx.kernel._adjoint_row(ctx.k)
        return grad_token, None if grad_u is None else grad_u.reshape(ctx.shape), None, None


class _SOERead(torch.autograd.Function):
    @staticmethod
    def forward(ctx, token, kernel, n: int):
        ctx.kernel, ctx.n = kernel, n
        return kernel._history(n)

    @staticmethod
    def backward(ctx, grad_history):
        ctx.kernel._adjoint_history(ctx.n, grad_history)
        return grad_history.new_empty(0), None, None


class _FixedHorizon:
    """The compression is made for a fixed horizon: an `'soe'` kernel cannot grow."""

    n_steps: int

    def extend(self, weights: torch.Tensor, n_steps: int) -> None:
        raise ValueError(
            f"memory='soe' was compressed for {self.n_steps} steps and cannot run longer; "
            "start a new run (reset) or use memory=None"
        )


class SOEKernel(_FixedHorizon):
    """History sums with lags `j < L0` exact and the tail `j >= L0` as exponential modes.

    Mode `k` of channel `c` keeps `S_k(n) = sum_{j >= L0} r_k^j u_{n-j}`, updated in O(1)
    per step by `S_k(n) = r_k S_k(n-1) + r_k^{L0} u_{n-L0}` when `u_{n-L0}` leaves the
    exact window; a read costs O(L0 + K) per state element whatever `n` is, and the kernel
    holds `L0 - 1` rows (a ring buffer) and `K` modes, updated in place.

    Grünwald–Letnikov weights sum to zero, so applying their compression to `u` directly
    loses accuracy through cancellation (`u = y - y0` is far from zero for most of a
    run).  For them the tail is summed by parts: `sum_{j>=L0} g_j u_{n-j} =
    sum_{j>=L0} G_j d_{n-j} - G_{L0-1} u_{n-L0}` with `d_k = u_k - u_{k-1}` and the
    partial sums `G`, which are positive and smooth; the modes then carry `d`.

    Gradients: the kernel is linear in the rows and its weights are constants, so autograd
    sees two small functions per step and the backward pass is the transposed sweep, run
    in reverse time with the same modes: `dL/du_m = sum_{j<L0} w_j g_{m+j} +
    sum_k c_k A_k(m)`, `A_k(m) = r_k A_k(m+1) + r_k^{L0} g_{m+L0}`, where `g_n` is
    the gradient of the history sum of step `n`.  Nothing is saved per step, so a
    backward pass costs O(L0 + K) per step and O(1) memory, like the forward.
    Same interface as `HistoryKernel`.
    """

    def __init__(
        self, exact: torch.Tensor, terms: list, template: torch.Tensor, n_steps: int, correction: torch.Tensor | None = None
    ):
        """`exact`: `[C, L0]` weights for lags `0 .. L0-1`; `terms[c]`: list of
        `(SumOfExponentials, scale, shift)` meaning `scale * w_{j - shift}` in channel `c`.
        `correction` (`[C]`): given, the modes carry differences `d` and the tail is
        `modes - correction * u_{n-L0}` (summation by parts, see above)."""
        dtype, device = template.dtype, template.device
        self.n_steps = n_steps
        self.channels, self.first_lag = exact.shape
        self.shape = template.shape
        self.width = template.numel()
        self.correction = None if correction is None else correction.to(device, dtype)[:, None]
        exact = exact.detach()
        lags = exact[:, 1:]  # lags 1 .. L0-1
        m = self.first_lag - 1
        slot = torch.arange(m, device=device)
        self.ring_weights = [lags[:, (q - slot - 1) % m] for q in range(m)]  # [C, M] for n = q mod M
        slot = torch.arange(self.first_lag, device=device)
        padded = torch.cat([lags, lags.new_zeros(self.channels, 1)], 1)  # lag L0 -> weight 0
        self.adjoint_weights = [padded[:, (slot - q - 1) % self.first_lag].t().reshape(-1) for q in range(self.first_lag)]
        rates, coefs = _channel_modes(terms)
        width = rates.shape[1]
        self.decay = torch.tensor(-np.expm1(np.log(rates)), dtype=dtype, device=device)[..., None]  # 1 - r
        self.entry = torch.tensor(rates**self.first_lag, dtype=dtype, device=device)[..., None]
        self.coefficients = torch.tensor(coefs, dtype=dtype, device=device)[:, None, :]
        self.n_modes = width
        self._modes = template.new_zeros(self.channels, width, self.width)
        self._ring = template.new_zeros(m, self.width)
        self._left = template.new_zeros(self.width)  # the row that left the window last
        self._token = template.new_empty(0)
        self._n_stored = 0
        self._last_read = 0
        self._adjoint: dict | None = None

    def snapshot(self) -> tuple:
        """A copy of the kernel's state (modes, exact window), O(K + L0) rows, for `restore`."""
        return self._n_stored, self._modes.clone(), self._ring.clone(), self._left.clone()

    def restore(self, snapshot: tuple) -> None:
        """Go back to the state of `snapshot`."""
        self._n_stored, modes, ring, left = snapshot
        self._modes.copy_(modes)
        self._ring.copy_(ring)
        self._left.copy_(left)

    def _tracked(self, u: torch.Tensor | None = None) -> bool:
        """Whether autograd must see this step (otherwise the data path is called directly)."""
        wanted = self._token.requires_grad or (u is not None and u.requires_grad)
        return wanted and torch.is_grad_enabled()

    def append(self, u: torch.Tensor) -> None:
        k = self._n_stored
        if self._tracked(u):
            self._token = _SOEAppend.apply(self._token, u, self, k)
        else:
            self._store(u.detach().reshape(-1))
        self._n_stored = k + 1

    def read(self, n: int) -> torch.Tensor:
        if self._n_stored != n:
            raise RuntimeError(f"history holds {self._n_stored} rows; read({n}) needs exactly {n}")
        self._last_read = n
        history = _SOERead.apply(self._token, self, n) if self._tracked() else self._history(n)
        return history.reshape(self.channels, *self.shape)

    def _store(self, row: torch.Tensor) -> None:
        k, m = self._n_stored, self.first_lag - 1
        if k >= m:  # u_{k-M} leaves the exact window: into the modes, then its slot is reused
            leaving = self._ring[k % m]
            entering = leaving if self.correction is None else leaving - self._left
            self._modes.addcmul_(self._modes, self.decay, value=-1.0).addcmul_(self.entry, entering)
            self._left.copy_(leaving)
        self._ring[k % m] = row

    def _history(self, n: int) -> torch.Tensor:
        history = self.ring_weights[n % (self.first_lag - 1)] @ self._ring
        if self.n_modes:
            history = history + (self.coefficients @ self._modes)[:, 0]
        if self.correction is not None and n >= self.first_lag:
            history = history - self.correction * self._left
        return history

    # --- the transposed sweep (backward) ---

    def _adjoint_state(self, reference: torch.Tensor, position: int, restart: bool) -> dict:
        if self._adjoint is None or restart:
            self._adjoint = {
                "position": self._last_read,  # A holds A(position); no history sum is read later
                "modes": reference.new_zeros(self.channels, self.n_modes, self.width),
                "grads": reference.new_zeros(self.first_lag, self.channels, self.width),  # g_n at n mod L0
                "tail": reference.new_zeros(self.width),  # D(position) = sum_c,k c A
            }
        return self._adjoint

    def _adjoint_history(self, n: int, grad: torch.Tensor) -> None:
        state = self._adjoint
        self._adjoint_state(grad, n, restart=state is None or n > state["position"])
        self._adjoint["grads"][n % self.first_lag] = grad.reshape(self.channels, self.width)

    def _adjoint_row(self, m: int) -> torch.Tensor | None:
        state = self._adjoint
        if state is None:
            return None
        if m >= state["position"]:  # a new backward pass without any history gradient
            return None
        L0 = self.first_lag
        grads, modes = state["grads"], state["modes"]
        following = state["tail"]
        while state["position"] > m:
            i = state["position"] - 1
            entering = grads[i % L0].clone()  # g_{i + L0}
            grads[i % L0].zero_()  # the slot now waits for g_i
            modes.addcmul_(modes, self.decay, value=-1.0).addcmul_(self.entry, entering[:, None, :])
            following, state["tail"] = state["tail"], (self.coefficients @ modes).sum((0, 1))
            state["position"] = i
        grad = self.adjoint_weights[m % L0] @ grads.reshape(-1, self.width)
        if self.correction is None:
            grad = grad + state["tail"]
        else:
            grad = grad + state["tail"] - following - (self.correction * entering).sum(0)
        if m == 0:
            self._adjoint = None
        return grad


def _channel_modes(terms: list) -> tuple[np.ndarray, np.ndarray]:
    """Rates and coefficients `[C, K]` (float64) of every channel's modes, padded with empty modes."""
    rates, coefs = [], []
    for channel in terms:
        rates.append(np.concatenate([soe.rates for soe, _, _ in channel] or [np.zeros(0)]))
        coefs.append(np.concatenate([soe.coefficients * sc / soe.rates**sh for soe, sc, sh in channel] or [np.zeros(0)]))
    width = max(len(r) for r in rates)
    rates = np.stack([np.pad(r, (0, width - len(r)), constant_values=1.0) for r in rates])
    coefs = np.stack([np.pad(c, (0, width - len(c))) for c in coefs])
    return rates, coefs


SHIFT_EVERY = 4  # BlockedSOEKernel: blocks between moves of its exact rows to the front of their buffer


class BlockedSOEKernel(_FixedHorizon):
    """The `'soe'` history sums a block of `b` steps at a time, for runs without autograd.

    At the start of a block (first step `s`) the rows `u_m`, `m < p = s - L0`, are all in
    the modes `S_k = sum_{m<p} r_k^{p-m} u_m`; their contribution to step `s + i` is
    `sum_k c_k r_k^{L0+i} S_k` for all `i < b` at once (one matrix product, lags
    `>= L0 + 1` where the compression holds).  The rows from `p` on (lags `1 .. L0 + i`)
    are exact, one small product per step fused with the block's term.  At the next block
    the `b` rows that left the exact range enter the modes by one more product:
    `S_k <- r_k^b S_k + sum_i r_k^{b-i} u_{p+i}`.  Grünwald–Letnikov weights are summed by
    parts as in `SOEKernel`: the modes carry `d_m = u_m - u_{m-1}` and the block
    term gains `-G_{L0+i} u_{p-1}`.  The exact rows of lags `>= L0` get the compressed
    weights, so the sums are those of `SOEKernel` (the same discrete scheme, so the
    adjoint differentiates exactly what autograd does), in another order of summation.

    Per step: one fused product over `L0 + i` rows instead of three passes over the
    modes; the kernel holds `K` modes and room for `L0 + SHIFT_EVERY b + 1` rows (`L0 + b + 1`
    in use), so that the exact rows move to the front of their buffer once every
    `SHIFT_EVERY` blocks.  No gradients pass through
    it (`SOEKernel` serves autograd); `make_kernel` picks it
    where none can be needed (grad mode off: inference, both sweeps of the adjoints).  Same interface as `SOEKernel`.
    """

    def __init__(self, exact: torch.Tensor, terms: list, template: torch.Tensor, n_steps: int,
                 correction: torch.Tensor | None = None, block: int = 64):
        """Arguments as for `SOEKernel`; `block`: steps per block."""
        dtype, device = template.dtype, template.device
        self.channels, first_lag = exact.shape
        self.n_steps, self.first_lag, self.block = n_steps, first_lag, block
        self.shape, self.width = template.shape, template.numel()
        self.by_parts = correction is not None
        span = first_lag + block
        rates, coefs = _channel_modes(terms)
        self.n_modes = rates.shape[1]
        powers = rates[..., None] ** np.arange(span + 1)  # [C, K, e] = r^e
        tail = np.einsum("ck,cke->ce", coefs, powers)  # the compressed sequence at lags 0 .. span
        # The weights SOEKernel applies, by lag: exact below L0, compressed from L0 on (by parts:
        # the compressed partial sums, differenced, with the exact G_{L0-1} before the first).
        near = np.zeros((self.channels, span + 1))
        near[:, :first_lag] = exact.detach().cpu().double().numpy()
        if self.by_parts:
            near[:, first_lag] = tail[:, first_lag] - correction.numpy()
            near[:, first_lag + 1 :] = np.diff(tail[:, first_lag:], axis=1)
        else:
            near[:, first_lag:] = tail[:, first_lag:]
        self._reversed = torch.tensor(near[:, ::-1].copy(), dtype=dtype, device=device)  # [c, span - lag]
        far = coefs[:, None, :] * np.swapaxes(powers[:, :, first_lag:span], 1, 2)  # [C, i, K] = c_k r_k^{L0+i}
        if self.by_parts:
            far = np.concatenate([far, -tail[:, first_lag:span, None]], 2)
        self._far_weights = torch.tensor(far, dtype=dtype, device=device)
        self._powers = torch.tensor(powers, dtype=dtype, device=device)
        self._entry = torch.tensor(powers[:, :, block:0:-1].copy(), dtype=dtype, device=device)  # r^b .. r^1
        self._modes = template.new_zeros(self.channels, self.n_modes + self.by_parts, self.width)
        # a block needs span + 1 rows; the spare ones let SHIFT_EVERY blocks append before the exact
        # rows move back to the front of the buffer (one copy every SHIFT_EVERY blocks, not two per block)
        self._rows = template.new_zeros(span + 1 + (SHIFT_EVERY - 1) * block, self.width)
        self._far = template.new_zeros(self.channels, block, self.width)
        self._toeplitz: dict = {}  # (b, rows) -> the weights block_history applies to them
        self._n_stored = 0
        self._base = 0  # the first row held in _rows
        self._split = 0  # p: rows before it are in the modes
        self._block_start = 0
        self._far_has_rows = False  # block_history added the exact rows into _far in place

    def append(self, u: torch.Tensor) -> None:
        if u.requires_grad and torch.is_grad_enabled():
            raise RuntimeError("this 'soe' history was built with grad mode off; it cannot pass gradients")
        self._rows[self._n_stored - self._base] = u.reshape(-1)
        self._n_stored += 1

    def read(self, n: int) -> torch.Tensor:
        if self._n_stored != n:
            raise RuntimeError(f"history holds {self._n_stored} rows; read({n}) needs exactly {n}")
        if n >= self._block_start + self.block or self._block_start == 0 or self._far_has_rows:
            self._start_block(n)
        i, split = n - self._block_start, self._split
        weights = self._reversed[:, self._reversed.shape[1] - 1 - (n - split) : -1]
        rows = self._rows[split - self._base : n - self._base]
        return torch.addmm(self._far[:, i], weights, rows).reshape(self.channels, *self.shape)

    @property
    def near_weights(self) -> torch.Tensor:
        """`[C, L0 + b + 1]`: the weight `read` gives each lag `0 .. L0 + b` of the rows it keeps exact."""
        return self._reversed.flip(-1)

    def append_block(self, rows: torch.Tensor) -> None:
        """Store the next `k <= b` rows at once (`[k, width]`), after a `block_history` call."""
        start = self._n_stored - self._base
        self._rows[start : start + rows.shape[0]] = rows
        self._n_stored += rows.shape[0]

    def block_history(self, s: int, b: int) -> torch.Tensor:
        """`[C, b, width]`: for the steps `s .. s + b - 1` (`b <= block`; blocks in order), the history
        sums over every row before `s` (the modes and the exact rows from the split on); a view of a
        buffer of the kernel, valid until its next call.  A step's
        sum of `read` is this plus the rows from `s` on, each with its lag's `near_weights`."""
        if self._n_stored != s or not 0 < b <= self.block:
            raise RuntimeError(f"block_history({s}, {b}) needs {s} rows stored (holds {self._n_stored}) and "
                               f"0 < b <= {self.block}")
        split, span = max(0, s - self.first_lag), self._reversed.shape[1] - 1
        count = s - split
        weights = self._toeplitz.get((b, count))
        if weights is None:  # [C, b, rows]: entry (i, r) weighs row split + r for step s + i (lag count - r + i)
            device = self._reversed.device
            lags = count - torch.arange(count, device=device)[None, :] + torch.arange(b, device=device)[:, None]
            weights = self._toeplitz[b, count] = self._reversed[:, span - lags]
        with block_threads(self.channels * b * (count + 2 * self.n_modes) * self.width):
            self._start_block(s)
            rows = self._rows[split - self._base : s - self._base]
            far = self._far[:, :b]  # the modes' sums; the exact rows are added in place (no fresh buffer)
            if self.channels == 1:
                far[0].addmm_(weights[0], rows)
            else:
                far.baddbmm_(weights, rows.expand(self.channels, *rows.shape))
            self._far_has_rows = True
            return far

    def _start_block(self, s: int) -> None:
        split = max(0, s - self.first_lag)
        entering = split - self._split
        if entering:
            lo = self._split - self._base
            fresh = self._rows[lo : lo + entering]
            if self.by_parts and self._split > 0:
                fresh = fresh - self._rows[lo - 1 : lo - 1 + entering]
            elif self.by_parts:  # the first rows to enter: u_0 has no predecessor
                fresh = torch.diff(fresh, dim=0, prepend=torch.zeros_like(fresh[:1]))
            modes = self._modes[:, : self.n_modes]
            modes.mul_(self._powers[:, :, entering, None])
            for c in range(self.channels):
                modes[c].addmm_(self._entry[c, :, self.block - entering :], fresh)
        base = max(0, split - 1)
        if s - self._base + self.block > self._rows.shape[0]:  # no room for this block's rows
            kept = self._rows[base - self._base : s - self._base]
            overlaps = base - self._base < kept.shape[0]
            self._rows[: kept.shape[0]] = kept.clone() if overlaps else kept
            self._base = base
        self._split, self._block_start = split, s
        if split > 0:
            if self.by_parts:
                self._modes[:, self.n_modes] = self._rows[split - 1 - self._base]
            torch.bmm(self._far_weights, self._modes, out=self._far)
        elif self._far_has_rows:  # no modes yet: the block's far sums start from zero
            self._far.zero_()
        self._far_has_rows = False

    def snapshot(self) -> tuple:
        """A copy of the kernel's state (`O(K + L0 + b)` rows), for `restore`."""
        return (self._n_stored, self._base, self._split, self._block_start,
                self._modes.clone(), self._rows[: self._n_stored - self._base].clone(), self._far.clone())

    def restore(self, snapshot: tuple) -> None:
        self._n_stored, self._base, self._split, self._block_start, modes, rows, far = snapshot
        self._modes.copy_(modes)
        self._rows[: rows.shape[0]] = rows
        self._far.copy_(far)
