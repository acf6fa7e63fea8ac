r"""Sum-of-exponentials (SOE) compression of the convolution weights: the ``'soe'`` memory.

Every weight sequence of the schemes is, for lags ``j >= 1``, a Laplace transform

.. math::

    w_j = \int_0^\infty \phi(s)\, e^{-j s}\, ds,

with (for ``0 < a < 1``)

* Grünwald–Letnikov ``g_j``: ``phi(s) = -(sin(pi a)/pi) e^{a s} (1 - e^{-s})^a`` (from
  ``g_j = -(sin(pi a)/pi) int_0^1 x^{j-1-a} (1-x)^a dx`` and ``x = e^{-s}``);
* their partial sums ``G_j = g_0 + ... + g_j`` (the coefficients of ``(1-z)^(a-1)``):
  ``phi(s) = (sin(pi a)/pi) (e^s - 1)^(a-1)``;
* L1 ``(j+1)^{1-a} - j^{1-a}``: ``phi(s) = (1-a)/Gamma(a) s^{a-2} (1 - e^{-s})``;
* product rectangle ``(k+1)^a - k^a``: ``phi(s) = a/Gamma(1-a) s^{-a-1} (1 - e^{-s})``;
* product trapezoid ``(m+1)^{a+1} + (m-1)^{a+1} - 2 m^{a+1}``:
  ``phi(s) = a(1+a)/Gamma(1-a) s^{-a-2} (2 cosh s - 2)``,

all from ``t^{-b} = 1/Gamma(b) int_0^inf s^{b-1} e^{-ts} ds``.  With ``s = e^u`` the
integrand is analytic in the strip ``|Im u| < pi/2`` and decays at both ends, so the
trapezoidal rule in ``u`` converges exponentially and yields ``w_j ~ sum_k c_k r_k^j``
with ``r_k = exp(-s_k)`` (the construction of e.g. Beylkin & Monzón, and of Jiang et al.,
Commun. Comput. Phys. 21 (2017) for fast Caputo derivatives).  Modes with
``s_k < sigma / N`` behave like ``1 - j s_k`` over the whole horizon ``N`` and are merged
into one mode with the same zeroth and first moments.  The step is refined until the
measured maximum relative error over every lag ``L0 .. N`` is within the tolerance;
that measured figure is stored with the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy.special import gamma as gamma_fn

from . import weights as wts

__all__ = ["SumOfExponentials", "compress", "SEQUENCES"]

SEQUENCES = ("gl", "glsum", "l1", "rect", "trap")


@dataclass(frozen=True)
class SumOfExponentials:
    """``w_j ~ sum_k coefficients[k] * rates[k] ** j`` for ``first_lag <= j <= horizon``.

    ``max_rel_error`` is the measured maximum relative error over those lags.
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


def exact_weights(sequence: str, alpha: float, n: int) -> np.ndarray:
    """The exact sequence (float64) for lags ``0 .. n``, from :mod:`spikede.solvers.weights`."""
    builder = {
        "gl": wts.grunwald_letnikov,
        "glsum": lambda a, m: wts.grunwald_letnikov(a - 1.0, m),
        "l1": wts.l1_weights,
        "rect": wts.rectangle_weights,
        "trap": wts.trapezoid_weights,
    }[sequence]
    return builder(alpha, n).numpy()


def _density(sequence: str, a: float):
    """``(C, gamma, psi)`` with ``s phi(s) = C s^gamma psi(s)``, ``psi`` smooth and ``psi(0) = 1``."""
    if sequence == "gl":
        return -math.sin(math.pi * a) / math.pi, 1.0 + a, lambda s: np.exp(a * s) * (-np.expm1(-s) / s) ** a
    if sequence == "glsum":
        return math.sin(math.pi * a) / math.pi, a, lambda s: (np.expm1(s) / s) ** (a - 1.0)
    if sequence == "l1":
        return (1.0 - a) / gamma_fn(a), a, lambda s: -np.expm1(-s) / s
    if sequence == "rect":
        return a / gamma_fn(1.0 - a), 1.0 - a, lambda s: -np.expm1(-s) / s
    return a * (1.0 + a) / gamma_fn(1.0 - a), 1.0 - a, lambda s: (2.0 * np.sinh(0.5 * s) / s) ** 2


def _trapezoid_modes(sequence: str, a: float, horizon: int, tol: float, first_lag: int, h: float):
    """Trapezoidal rule in ``u = log s`` on nodes ``u_max - k h``; the infinitely many nodes
    below ``log(sigma / N)`` are summed as geometric series (``psi ~ 1`` there) into one mode."""
    scale, gam, psi = _density(sequence, a)
    sigma = (tol / 8.0) ** (1.0 / (gam + 2.0))
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
    """SOE of ``sequence`` (``'gl'``, ``'l1'``, ``'rect'``, ``'trap'``) for lags ``first_lag .. horizon``.

    Computed in float64 and cached per argument set.  For ``alpha = 1`` the sequences are
    finite or constant and are represented exactly (``gl``, ``l1``: no modes; ``rect``: one
    mode ``1``; ``trap``: one mode ``2``).  Raises ``RuntimeError`` if ``tol`` cannot be met.
    """
    if sequence not in SEQUENCES:
        raise ValueError(f"unknown sequence {sequence!r}; valid: {SEQUENCES}")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must satisfy 0 < alpha <= 1, got {alpha}")
    if first_lag < 2:
        raise ValueError(f"first_lag must be >= 2, got {first_lag}")
    if alpha == 1.0:
        constant = {"gl": 0.0, "glsum": 0.0, "l1": 0.0, "rect": 1.0, "trap": 2.0}[sequence]
        rates, coefs = (np.ones(1), np.array([constant])) if constant else (np.zeros(0), np.zeros(0))
        return SumOfExponentials(sequence, alpha, rates, coefs, first_lag, horizon, tol, 0.0)
    exact = exact_weights(sequence, alpha, horizon)
    h = 0.55
    for _ in range(12):
        rates, coefs = _trapezoid_modes(sequence, alpha, horizon, tol, first_lag, h)
        error = _max_rel_error(rates, coefs, exact, first_lag, horizon)
        if error <= tol:
            return SumOfExponentials(sequence, alpha, rates, coefs, first_lag, horizon, tol, error)
        h *= 0.85
    raise RuntimeError(
        f"sum-of-exponentials for {sequence!r}, alpha={alpha}, horizon={horizon} reached only "
        f"{error:.2e} relative error (tolerance {tol:.1e}); raise soe_tol or soe_first_lag"
    )


def default_tolerance(dtype: torch.dtype) -> float:
    """``1e-8`` for float64, ``1e-6`` for float32 and narrower types (their rounding is ~1e-7)."""
    return 1e-8 if dtype == torch.float64 else 1e-6


class SOEKernel:
    """History sums with lags ``j < L0`` exact and the tail ``j >= L0`` as exponential modes.

    Mode ``k`` of channel ``c`` keeps ``S_k(n) = sum_{j >= L0} r_k^j u_{n-j}``, updated in O(1)
    per step by ``S_k(n) = r_k S_k(n-1) + r_k^{L0} u_{n-L0}`` when ``u_{n-L0}`` leaves the
    exact window; a read costs O(L0 + K) per state element whatever ``n`` is, and the kernel
    holds ``L0 - 1`` rows and ``K`` modes.

    Grünwald–Letnikov weights sum to zero, so applying their compression to ``u`` directly
    loses accuracy through cancellation (``u = y - y0`` is far from zero for most of a
    run).  For them the tail is summed by parts: ``sum_{j>=L0} g_j u_{n-j} =
    sum_{j>=L0} G_j d_{n-j} - G_{L0-1} u_{n-L0}`` with ``d_k = u_k - u_{k-1}`` and the
    partial sums ``G``, which are positive and smooth; the modes then carry ``d``.

    While no stored row requires grad the rows live
    in a ring buffer updated in place; once one does, they are kept as a list of tensors
    (autograd-friendly, still ``L0 - 1`` of them).  Same interface as
    :class:`~spikede.solvers.memory.HistoryKernel`.
    """

    def __init__(
        self, exact: torch.Tensor, terms: list, template: torch.Tensor, n_steps: int, correction: torch.Tensor | None = None
    ):
        """``exact``: ``[C, L0]`` weights for lags ``0 .. L0-1``; ``terms[c]``: list of
        ``(SumOfExponentials, scale, shift)`` meaning ``scale * w_{j - shift}`` in channel ``c``.
        ``correction`` (``[C]``): given, the modes carry differences ``d`` and the tail is
        ``modes - correction * u_{n-L0}`` (summation by parts, see above)."""
        self.n_steps = n_steps
        self.correction = None if correction is None else correction.to(template.device, template.dtype)[:, None]
        self._left = template.new_zeros(template.numel())  # the row that left the window last
        self.channels, self.first_lag = exact.shape
        self.shape = template.shape
        self.window = self.first_lag - 1
        lags = exact[:, 1:]  # lags 1 .. L0-1
        self.reversed_exact = lags.flip(-1)
        m = self.window
        slot = torch.arange(m, device=template.device)
        self.ring_weights = [lags[:, (q - slot - 1) % m] for q in range(m)]  # [C, M] for n = q mod M
        dtype, device = template.dtype, template.device
        rates, coefs = [], []
        for channel in terms:
            rates.append(np.concatenate([soe.rates for soe, _, _ in channel] or [np.zeros(0)]))
            coefs.append(
                np.concatenate([soe.coefficients * sc / soe.rates**sh for soe, sc, sh in channel] or [np.zeros(0)])
            )
        width = max(len(r) for r in rates)
        rates = np.stack([np.pad(r, (0, width - len(r)), constant_values=1.0) for r in rates])
        coefs = np.stack([np.pad(c, (0, width - len(c))) for c in coefs])
        as_tensor = lambda a: torch.tensor(a, dtype=dtype, device=device)  # noqa: E731
        self.decay = as_tensor(-np.expm1(np.log(rates)))[..., None]  # 1 - r, accurate for r near 1
        self.entry = as_tensor(rates**self.first_lag)[..., None]
        self.coefficients = as_tensor(coefs)[:, None, :]
        self.n_modes = width
        self._modes = template.new_zeros(self.channels, width, template.numel())
        self._ring = template.new_zeros(m, template.numel())
        self._rows: list[torch.Tensor] | None = None  # list mode, once a row requires grad
        self._n_stored = 0

    def extend(self, weights: torch.Tensor, n_steps: int) -> None:
        """The compression is made for a fixed horizon: it cannot grow."""
        raise ValueError(
            f"memory='soe' was compressed for {self.n_steps} steps and cannot run longer; "
            "start a new run (reset) or use memory=None"
        )

    def _fold(self, leaving: torch.Tensor) -> None:
        entering = leaving if self.correction is None else leaving - self._left
        self._left = leaving.clone() if self._rows is None else leaving
        if self._rows is None:
            self._modes.addcmul_(self._modes, self.decay, value=-1.0).addcmul_(self.entry, entering)
        else:
            self._modes = torch.addcmul(torch.addcmul(self._modes, self._modes, self.decay, value=-1.0), self.entry, entering)

    def append(self, u: torch.Tensor) -> None:
        k, m = self._n_stored, self.window
        row = u.reshape(-1)
        if self._rows is None and row.requires_grad and torch.is_grad_enabled():
            order = [(k - i) % m for i in range(min(k, m), 0, -1)]  # slots of u_{k-min(k,m)} .. u_{k-1}
            self._rows = [self._ring[i].clone() for i in order]
        if self._rows is None:
            if k >= m:  # u_{k-M} leaves the exact window: into the modes, then its slot is reused
                self._fold(self._ring[k % m])
            self._ring[k % m] = row
        else:
            if len(self._rows) == m:
                self._fold(self._rows.pop(0))
            self._rows.append(row)
        self._n_stored = k + 1

    def read(self, n: int) -> torch.Tensor:
        if self._n_stored != n:
            raise RuntimeError(f"history holds {self._n_stored} rows; read({n}) needs exactly {n}")
        if self._rows is None:
            history = self.ring_weights[n % self.window] @ self._ring
        else:
            recent = torch.stack(self._rows)
            history = self.reversed_exact[:, -recent.shape[0] :] @ recent
        if self.n_modes:
            history = history + (self.coefficients @ self._modes)[:, 0]
        if self.correction is not None and n >= self.first_lag:
            history = history - self.correction * self._left
        return history.reshape(self.channels, *self.shape)
