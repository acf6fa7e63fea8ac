r"""The integrators: each knows its weights, what it stores and its one-step update.

Uniform grid `t_n = t_0 + n h`, Caputo problem `D^a y = f(t, y)`, `y(t_0) = y0`.
Every scheme is "local term + history sum": `H_n[c] = sum_{j>=1} W[c, j] u_{n-j}`
over a stored sequence `u` (see `spikede.solvers.memory`).  The time loop,
input checks and the history live in `spikede.solvers.fdeint`.

| method | stored $u_k$ | update ($F = f(t_{n-1}, y_{n-1})$ explicit, $f(t_n, y_n)$ implicit) |
|---|---|---|
| `gl` | $y_k - y_0$ | $y_n = y_0 + F / W_0 - \sum_j (W_j / W_0) u_{n-j}$, $W_j = \sum_i c_i h^{-a_i} g^{(a_i)}_j$ |
| `l1` | $y_k - y_{k-1}$ | $y_n = y_{n-1} + \Gamma(2-a) h^a F - \sum_{j \ge 1} b_j u_{n-j}$ |
| `pred` | $f_k$ | $y_n = y_0 + \frac{h^a}{\Gamma(a+1)} \sum_{j=0}^{n-1} b_{n-1-j} f_j$ |
| `trap` | $f_k$ | PECE: `pred` predictor, product-trapezoid corrector; implicit: the trapezoid equation by Newton |

References: Podlubny, *Fractional Differential Equations* (1999) for GL;
Lin & Xu, J. Comput. Phys. 225 (2007) for L1; Diethelm, Ford & Freed,
Nonlinear Dyn. 29 (2002) and Numer. Algorithms 36 (2004) for the product rules
and the PECE method.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, ClassVar

import torch

from . import weights as wts
from .flmm import STARTING_SETS, flmm_weights, starting_exponents, starting_weights
from .newton import ChordMemo, newton_solve, solve_at

__all__ = ["Scheme", "GrunwaldLetnikov", "L1", "ProductRectangle", "ProductTrapezoid", "SCHEMES"]

Func = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Scheme(ABC):
    """One fractional integrator.  Subclasses set the class attributes and three methods.

    `weights` (`[C, N + 1]` by lag, state dtype) feed the memory kernel;
    `first_stored` is `u_0`; `step` returns `y_n` from the history
    sums `H_n` (`[C, *shape]`); `stored` is `u_n`, computed from the state
    that is finally kept (after an event layer's reset, for spiking states).  The schemes
    whose rows are the state's own history (`gl`, `l1`) also give it back:
    `previous(y_n, rows, n)` is `y_{n-1}` (the neuron adjoint rebuilds potentials so).
    """

    name: ClassVar[str]
    multi_term: ClassVar[bool] = False
    stores_rhs: ClassVar[bool] = False  # True if u_k = f(t_k, y_k): the driver evaluates f at every new state
    implicit_modes: ClassVar[tuple[bool, ...]] = (False, True)  # the values `implicit=` may take
    coupled_start: ClassVar[bool] = False  # True if the first steps are solved together (no discrete adjoint)
    compressible: ClassVar[bool] = True  # whether memory='soe' can compress the weights (`sequence_terms`)
    max_alpha: ClassVar[float] = 1.0  # the largest order the scheme takes (orders above 1 need y'(t_0))
    per_component: ClassVar[bool] = False  # whether alpha may be a 1-D tensor, one order per state component
    settings: ClassVar[dict[str, tuple[str, ...]]] = {}  # fdeint's options= for this scheme: name -> values, default first

    def __init__(self, problem, alphas: list, coefficients: list[float], implicit: bool, options: dict | None = None):
        self.problem = problem
        self.implicit = implicit
        self.options = {name: values[0] for name, values in self.settings.items()} | dict(options or {})
        # explicit schemes that store the state step with f at the previous state
        self.needs_f_prev = not self.stores_rhs and not implicit
        self.alpha = wts.as_alpha_tensor(alphas[0], problem.device)
        self.h = problem.h
        self.weights = self.build_weights(alphas, coefficients).to(problem.dtype)
        self.chord = ChordMemo()  # the implicit steps' last Newton matrix, for the next step to start from

    @classmethod
    @abstractmethod
    def order(cls, alpha: float, implicit: bool) -> float:
        """Convergence order on a problem with a smooth solution (read by the order tests and
        `spikede convergence`)."""

    @abstractmethod
    def build_weights(self, alphas: list, coefficients: list[float]) -> torch.Tensor:
        """Weights `[C, N + 1]` by lag, float64 (cast by the caller)."""

    @abstractmethod
    def first_stored(self, y0: torch.Tensor, f0: torch.Tensor | None) -> torch.Tensor:
        """`u_0`, the first stored element."""

    @abstractmethod
    def step(self, n: int, y_prev: torch.Tensor, history: torch.Tensor, f_prev: torch.Tensor | None):
        """`y_n`; `f_prev = f(t_{n-1}, y_{n-1})` is given to the explicit `gl` and `l1`."""

    @abstractmethod
    def stored(self, y: torch.Tensor, y_prev: torch.Tensor, f: torch.Tensor | None) -> torch.Tensor:
        """`u_n` from the kept state `y_n`, the previous state and `f(t_n, y_n)`."""

    @abstractmethod
    def sequence_terms(self) -> list[list[tuple[str, float, float, int]]]:
        """Per weight channel, `(sequence, alpha, scale, shift)` terms: `W[c, j] = sum scale * w_{j-shift}`
        with `w` one of the sequences of `spikede.solvers.soe` (used by `memory='soe'`)."""

    def _multi_term_weights(self, alphas, coefficients, scale, weights) -> torch.Tensor:
        r"""Weights of $\sum_i c_i D^{a_i}$: $W = \sum_i c_i\, \mathrm{scale}(a_i)\, w^{(a_i)}$ normalised by
        $W_0$, with `step_coef` $= 1 / W_0$ (`scale`, `weights`: functions of a float64 order tensor)."""
        self._alphas, self._coefficients, self._scale = alphas, coefficients, scale
        device, total = self.problem.device, None
        for a, c in zip(alphas, coefficients):
            a = wts.as_alpha_tensor(a, device)
            if isinstance(c, torch.Tensor):
                c = c.to(device=device, dtype=torch.float64)
            term = c * scale(a) * weights(a, self.problem.n_steps, device)
            total = term if total is None else total + term
        self.step_coef = self._scalar(1.0 / total[0])
        return (total / total[0])[None]

    def _multi_term_sequences(self, sequence: str) -> list:
        """`sequence_terms` of `_multi_term_weights`: each order with its share of $W_0$."""
        alphas = [float(a.detach()) if isinstance(a, torch.Tensor) else float(a) for a in self._alphas]
        shares = [float(c.detach()) if isinstance(c, torch.Tensor) else float(c) for c in self._coefficients]
        shares = [c * self._scale(torch.tensor(a, dtype=torch.float64)).item() for a, c in zip(alphas, shares)]
        return [[(sequence, a, share / sum(shares), 0) for a, share in zip(alphas, shares)]]

    def _scalar(self, value: torch.Tensor) -> torch.Tensor:
        return value.to(self.problem.dtype)

    def _solve(self, n: int, base: torch.Tensor, coef: torch.Tensor, guess: torch.Tensor) -> torch.Tensor:
        p = self.problem
        return solve_at(p.rhs, p.t[n], base, coef, guess, tol=p.newton_tol, max_iters=p.newton_max_iters, step=n,
                        blockwise=p.jacobian == "blockwise", block_jacobian=p.block_jacobian, memo=self.chord)


def _lagged(weights: torch.Tensor) -> torch.Tensor:
    """`weights` shifted one lag later along the last axis (lag 0 gets 0)."""
    return torch.cat([weights.new_zeros(*weights.shape[:-1], 1), weights[..., :-1]], -1)


class GrunwaldLetnikov(Scheme):
    """Caputo-corrected Grünwald–Letnikov (first order); supports multi-term equations."""

    name = "gl"
    per_component = True
    max_alpha = 2.0
    multi_term = True

    @classmethod
    def order(cls, alpha, implicit):
        return 1.0

    def build_weights(self, alphas, coefficients):
        if len(alphas) == 1:  # y_n = y0 + h^a / c * F - sum g_j u_{n-j}, with g exact (-1, 0, ... at a = 1)
            self._alphas, self._coefficients, self._scale = alphas, coefficients, lambda a: self.h ** (-a)
            coefficient = coefficients[0]
            if isinstance(coefficient, torch.Tensor):
                coefficient = coefficient.to(device=self.problem.device, dtype=torch.float64)
            self.step_coef = self._scalar(self.h**self.alpha / coefficient)
            return wts.grunwald_letnikov(self.alpha, self.problem.n_steps, self.problem.device)[None]
        return self._multi_term_weights(alphas, coefficients, lambda a: self.h ** (-a), wts.grunwald_letnikov)

    def sequence_terms(self):
        return self._multi_term_sequences("gl")

    def first_stored(self, y0, f0):
        return torch.zeros_like(y0)

    def step(self, n, y_prev, history, f_prev):
        self._initial = self.problem.initial(n)  # u_n = y_n - T(t_n) (`stored`, called after this step)
        base = self._initial - history[0]
        if self.implicit:
            return self._solve(n, base, self.step_coef, y_prev)
        return base + self.step_coef * f_prev

    def stored(self, y, y_prev, f):
        return y - self._initial

    def previous(self, y, rows, n):
        """`y_{n-1}` from `y_n` and the stored rows `u_0 .. u_n`: `T(t_{n-1}) + u_{n-1}`."""
        return self.problem.initial(n - 1) + rows[n - 1]


class L1(Scheme):
    r"""L1 scheme for the Caputo derivative (order 2 - alpha for smooth solutions with implicit f).

    Multi-term: $\sum_i c_i D^{a_i} y = f$ sums the L1 weights $W_j = \sum_i c_i b^{(a_i)}_j /
    (\Gamma(2 - a_i) h^{a_i})$ and steps $y_n = y_{n-1} + F / W_0 - \sum_{j \ge 1} (W_j / W_0) u_{n-j}$.
    """

    name = "l1"
    per_component = True
    multi_term = True

    @classmethod
    def order(cls, alpha, implicit):
        return 2.0 - alpha if implicit else 1.0

    def build_weights(self, alphas, coefficients):
        def scale(a):
            return 1.0 / (wts.gamma(2.0 - a) * self.h**a)

        if len(alphas) == 1 and isinstance(coefficients[0], float) and coefficients[0] == 1.0:
            self._alphas, self._coefficients, self._scale = alphas, coefficients, scale
            self.step_coef = self._scalar(wts.gamma(2.0 - self.alpha) * self.h**self.alpha)
            return wts.l1_weights(self.alpha, self.problem.n_steps, self.problem.device)[None]
        return self._multi_term_weights(alphas, coefficients, scale, wts.l1_weights)

    def sequence_terms(self):
        return self._multi_term_sequences("l1")

    def first_stored(self, y0, f0):
        return torch.zeros_like(y0)

    def step(self, n, y_prev, history, f_prev):
        base = y_prev - history[0]
        if self.implicit:
            return self._solve(n, base, self.step_coef, y_prev)
        return base + self.step_coef * f_prev

    def stored(self, y, y_prev, f):
        return y - y_prev

    def previous(self, y, rows, n):
        """`y_{n-1}` from `y_n` and the stored rows `u_0 .. u_n`: `y_n - u_n`."""
        return y - rows[n]


class ProductRectangle(Scheme):
    r"""Product rectangle rule (the fractional Adams–Bashforth predictor); implicit: right endpoint.

    Explicit: $y_n = y_0 + \kappa \sum_{j=0}^{n-1} b_{n-1-j} f_j$; implicit:
    $y_n = y_0 + \kappa \sum_{j=1}^{n} b_{n-j} f_j$ with $\kappa = h^a / \Gamma(a+1)$ (each
    interval $[t_{j-1}, t_j]$ takes $f$ at its right end, so $f_0$ has no weight: the stored
    $u_0$ is 0).  Both are exact for constant $f$.
    """

    name = "pred"
    per_component = True
    max_alpha = 2.0

    stores_rhs = True

    @classmethod
    def order(cls, alpha, implicit):
        return 1.0

    def build_weights(self, alphas, coefficients):
        a = self.alpha
        self.kappa = self._scalar(self.h**a / wts.gamma(a + 1.0))
        b = wts.rectangle_weights(a, self.problem.n_steps, self.problem.device)
        if self.implicit:  # y_n = y0 + kappa (b_0 f_n + sum_{m>=1} b_m f_{n-m})
            return b[None]
        return _lagged(b)[None]  # lag m carries b_{m-1}

    def sequence_terms(self):
        return [[("rect", float(self.alpha.detach()), 1.0, 0 if self.implicit else 1)]]

    def first_stored(self, y0, f0):
        return torch.zeros_like(f0) if self.implicit else f0

    def step(self, n, y_prev, history, f_prev):
        base = self.problem.initial(n) + self.kappa * history[0]
        if self.implicit:
            return self._solve(n, base, self.kappa, y_prev)
        return base

    def stored(self, y, y_prev, f):
        return f


class ProductTrapezoid(Scheme):
    r"""Product trapezoid rule: $y_n = y_0 + \frac{h^a}{\Gamma(a+2)}\bigl(f(t_n, y_n) + \sum_{j=0}^{n-1} a_{j,n} f_j\bigr)$.

    Explicit (default): the fractional Adams–Bashforth–Moulton PECE method of Diethelm, Ford &
    Freed (Nonlinear Dyn. 29, 2002): the product rectangle predicts $y_n$, the trapezoid
    corrects it `corrector_iters` times; order $\min(2, 1 + a)$.  `implicit=True` solves
    the trapezoid equation for $y_n$ itself by Newton's method (started from the predictor),
    which is order 2 on smooth problems (Garrappa, Math. Comput. Simul. 110, 2015).
    """

    name = "trap"
    per_component = True
    max_alpha = 2.0

    stores_rhs = True

    @classmethod
    def order(cls, alpha, implicit):
        return 2.0 if implicit else min(2.0, 1.0 + alpha)

    def build_weights(self, alphas, coefficients):
        a, n_steps, device = self.alpha, self.problem.n_steps, self.problem.device
        self.kappa_p = self._scalar(self.h**a / wts.gamma(a + 1.0))
        self.kappa_c = self._scalar(self.h**a / wts.gamma(a + 2.0))
        b = wts.rectangle_weights(a, n_steps, device)
        c = wts.trapezoid_weights(a, n_steps, device)
        predictor = _lagged(b)
        steps = torch.arange(n_steps + 1, device=device)
        start = wts.trapezoid_start_weight(a, steps.clamp(min=1)) - c
        window = self.problem.window
        if window is not None:  # the f_0 term belongs to lag n: dropped once n > window
            start = start * (steps <= window).to(start.dtype)
        self.start_correction = start.to(self.problem.dtype).unbind(-1)
        return torch.stack([predictor, c])

    def sequence_terms(self):
        a = float(self.alpha.detach())
        return [[("rect", a, 1.0, 1)], [("trap", a, 1.0, 0)]]

    def first_stored(self, y0, f0):
        self.f0 = f0
        return f0

    def step(self, n, y_prev, history, f_prev):
        p = self.problem
        initial = p.initial(n)
        y = initial + self.kappa_p * history[0]
        corrector_history = history[1] + self.start_correction[n] * self.f0
        if self.implicit:
            return self._solve(n, initial + self.kappa_c * corrector_history, self.kappa_c, y)
        for _ in range(p.corrector_iters):
            y = initial + self.kappa_c * (p.rhs(p.t[n], y) + corrector_history)
        return y

    def stored(self, y, y_prev, f):
        return f


class FractionalLMM(Scheme):
    r"""A second-order fractional linear multistep method with starting weights (`spikede.solvers.flmm`).

    $y_n = y_0 + h^\alpha \omega_0 f(t_n, y_n) + h^\alpha \bigl(\sum_{j \ge 1} \omega_j f_{n-j} +
    \sum_{k=0}^{s} w_{n,k} f_k\bigr)$, solved for $y_n$ by Newton's method; the first $s$ steps,
    whose starting terms involve each other, are solved together as one system.  Order 2 for
    every $0 < \alpha < 1$, also on solutions with $t^\alpha$ terms (Lubich 1986; Garrappa 2015).
    Gradients by autograd (the coupled start has no discrete adjoint); a constant `alpha`.
    """

    generator: ClassVar[str]
    stores_rhs = True
    implicit_modes = (True,)
    coupled_start = True
    compressible = False

    settings = {"starting_exponents": STARTING_SETS}

    @classmethod
    def order(cls, alpha, implicit):
        return 2.0

    def build_weights(self, alphas, coefficients):
        a = float(self.alpha.detach())
        n = self.problem.n_steps
        gammas = starting_exponents(a, self.options["starting_exponents"])
        self.n_start = len(gammas) - 1  # s: the starting weights run over f_0 .. f_s
        length = max(n, self.n_start)
        omega = flmm_weights(self.generator, a, length)
        self.h_alpha = self._scalar(torch.tensor(self.h**a, dtype=torch.float64))
        self.step_coef = self._scalar(torch.tensor(self.h**a * omega[0].item(), dtype=torch.float64))
        start = starting_weights(omega, a, length, gammas)
        window = self.problem.window
        if window is not None:  # f_k is lag n - k: dropped beyond the window like the history
            lag = torch.arange(length + 1)[:, None] - torch.arange(self.n_start + 1)[None, :]
            start = start * (lag <= window).to(start.dtype)
        self.start_weights = start.to(device=self.problem.device, dtype=self.problem.dtype)
        self._omega = omega.to(device=self.problem.device, dtype=self.problem.dtype)
        return omega[: n + 1].to(self.problem.device)[None]

    def sequence_terms(self):
        raise ValueError(
            f"memory='soe' compresses the weights of 'gl', 'l1', 'pred' and 'trap'; method {self.name!r} has "
            "weights it cannot compress yet: use memory=None or an int window"
        )

    def first_stored(self, y0, f0):
        self._f = [f0]
        return f0

    def stored(self, y, y_prev, f):
        if len(self._f) <= self.n_start:
            self._f.append(f)
        return f

    def step(self, n, y_prev, history, f_prev):
        p = self.problem
        if n <= self.n_start:
            if n == 1:
                self._start_values = self._solve_start()
            return self._start_values[n - 1]
        correction = torch.tensordot(self.start_weights[n], torch.stack(self._f), 1)
        return self._solve(n, p.y0 + self.h_alpha * (history[0] + correction), self.step_coef, y_prev)

    def _solve_start(self) -> torch.Tensor:
        """`y_1 .. y_s` from `y_k = y_0 + h^a ((omega_k + w_{k,0}) f_0 + sum_{j=1..s} M_{kj} f(t_j, y_j))`,
        `M_{kj} = omega_{k-j} [j <= k] + w_{k,j}`, by Newton's method on the stacked states."""
        p, s = self.problem, self.n_start
        k = torch.arange(1, s + 1, device=p.device)
        lag = k[:, None] - k[None, :]
        mix = torch.where(lag >= 0, self._omega[lag.clamp(min=0)], torch.zeros((), dtype=p.dtype, device=p.device))
        mix = mix + self.start_weights[1 : s + 1, 1:]
        f0 = self._f[0]
        first = self._omega[1 : s + 1] + self.start_weights[1 : s + 1, 0]
        base = p.y0 + self.h_alpha * first.reshape(-1, *[1] * f0.dim()) * f0
        times = [p.t[0] + j * self.h for j in range(1, s + 1)]

        def stacked(states):
            values = torch.stack([p.rhs(t, y) for t, y in zip(times, states.unbind(0))])
            return torch.tensordot(mix, values, 1)

        guess = p.y0.detach().expand(s, *p.y0.shape).clone()
        return newton_solve(stacked, base, self.h_alpha, guess, tol=p.newton_tol, max_iters=p.newton_max_iters,
                            step=1)


class FLMMTrapezoid(FractionalLMM):
    name = "flmm-trap"
    generator = "trap"


class FLMMNewtonGregory(FractionalLMM):
    name = "flmm-ng"
    generator = "ng"


class FLMMBDF2(FractionalLMM):
    name = "flmm-bdf2"
    generator = "bdf2"


SCHEMES: dict[str, type[Scheme]] = {
    cls.name: cls
    for cls in (GrunwaldLetnikov, L1, ProductRectangle, ProductTrapezoid, FLMMTrapezoid, FLMMNewtonGregory, FLMMBDF2)
}
