r"""`fdeint`: solve Caputo fractional ODEs `D^alpha y = f(t, y)` on a uniform grid."""

from __future__ import annotations

import math
import numbers
from typing import Callable, Sequence

import torch

from ..surrogate import describe
from .adjoint import DiscreteAdjoint, ReplayableEvent
from .blocks import compiled_applies, history_for, integrate_compiled
from .engine import Problem, integrate
from .memory import check_memory, make_kernel
from .newton import default_tolerance
from .schemes import SCHEMES

__all__ = ["fdeint", "fdeint_adjoint", "FRACTIONAL_METHODS"]

FRACTIONAL_METHODS = tuple(SCHEMES)
NONUNIFORM_METHODS = ("l1", "pred", "trap")  # the schemes whose weights follow any increasing grid


def _torchdiffeq_methods() -> tuple[str, ...]:
    from torchdiffeq._impl.odeint import SOLVERS

    return tuple(SOLVERS)


def _check_alpha(alpha, name: str = "alpha", per_component: bool = False):
    """A Caputo order in (0, 2]: a float or 0-d tensor, or (`per_component`) a 1-D tensor of orders in (0, 1]."""
    kinds = "a float, a 0-d tensor or a 1-D tensor" if per_component else "a float or a 0-d tensor"
    if isinstance(alpha, torch.Tensor):
        if alpha.dim() > (1 if per_component else 0) or alpha.numel() == 0:
            raise ValueError(f"{name} must be {kinds}, got a tensor of shape {tuple(alpha.shape)}")
        if not alpha.is_floating_point():
            raise TypeError(f"{name} must be a floating-point value, got a tensor of dtype {alpha.dtype}")
        values = alpha.detach().reshape(-1).tolist()
    elif isinstance(alpha, numbers.Real) and not isinstance(alpha, bool):
        values = [float(alpha)]
    else:
        raise TypeError(f"{name} must be {kinds}, got {type(alpha).__name__}: {alpha!r}")
    upper = 1.0 if isinstance(alpha, torch.Tensor) and alpha.dim() == 1 else 2.0
    for value in values:
        if not (0.0 < value <= upper):
            what = "per-component orders" if upper == 1.0 else "Caputo order"
            raise ValueError(f"{name} must satisfy 0 < {name} <= {upper:g} ({what}), got {value}")
    return alpha


def _check_grid(t: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, float, str | None]:
    """`(t on device, mean step h, why it is not uniform or None)`."""
    if not isinstance(t, torch.Tensor) or t.dim() != 1:
        raise ValueError(f"t must be a 1-D tensor of time points (e.g. torch.linspace(t0, t1, n + 1)), "
                         f"got {describe(t)}")
    if t.numel() < 2:
        raise ValueError(f"t must hold at least 2 time points, got {t.numel()}")
    if not t.is_floating_point():
        raise TypeError(f"t must be a floating-point tensor, got dtype {t.dtype}")
    t64 = t.detach().to(torch.float64)
    if not bool(torch.isfinite(t64).all()):
        k = int(torch.nonzero(~torch.isfinite(t64))[0])
        raise ValueError(f"t must hold finite time points; t[{k}] = {t64[k].item()}")
    steps = torch.diff(t64)
    if not bool((steps > 0).all()):
        k = int(torch.nonzero(steps <= 0)[0])
        raise ValueError(f"t must be strictly increasing; t[{k + 1}] = {t64[k + 1].item()} <= t[{k}] = {t64[k].item()}")
    n = t.numel() - 1
    h = (t64[-1] - t64[0]).item() / n
    slack = 64 * torch.finfo(t.dtype).eps * max(abs(t64[0].item()), abs(t64[-1].item()), h)
    worst = (steps - h).abs().max().item()
    uneven = None
    if worst > max(1e-6 * h, slack):
        uneven = f"steps differ from h = {h:.6g} by up to {worst:.3g}"
    return t.to(device), h, uneven


def _initial_values(y0) -> tuple[torch.Tensor, list]:
    """`(y(t_0), [y'(t_0), ...])` from `y0`: a tensor, or a tuple/list of tensors of one shape, dtype and device."""
    if not isinstance(y0, (tuple, list)):
        return _check_y0(y0), []
    if not 1 <= len(y0) <= 2:
        raise ValueError(f"y0 as a sequence holds the initial values (y(t0),) or (y(t0), y'(t0)); got {len(y0)} entries")
    first = _check_y0(y0[0])
    rest = []
    for k, value in enumerate(y0[1:], 1):
        value = _check_y0(value, f"y0[{k}]")
        if value.shape != first.shape or value.dtype != first.dtype or value.device != first.device:
            raise ValueError(f"y0[{k}] must match y0[0] in shape, dtype and device: got {tuple(value.shape)} "
                             f"{value.dtype} {value.device} against {tuple(first.shape)} {first.dtype} {first.device}")
        rest.append(value)
    return first, rest


def _check_y0(y0, name: str = "y0") -> torch.Tensor:
    if not isinstance(y0, torch.Tensor):
        raise TypeError(f"{name} must be a floating-point tensor, got {type(y0).__name__}")
    if not y0.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {y0.dtype}; use .double() or .float()")
    if not bool(torch.isfinite(y0.detach()).all()):
        bad = y0.detach().reshape(-1)[~torch.isfinite(y0.detach().reshape(-1))][0].item()
        raise ValueError(f"{name} must be finite, got a value {bad}")
    return y0


def _check_tolerance(value, name: str, upper: float = math.inf) -> float | None:
    """`None` (the default tolerance) or a finite number in `(0, upper)`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be None or a positive number, got {type(value).__name__}: {value!r}")
    if not (0.0 < float(value) < upper):
        bound = "" if upper == math.inf else f" and < {upper:g}"
        raise ValueError(f"{name} must be > 0{bound}, got {value!r}")
    return float(value)


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _checked_rhs(func: Callable, y0: torch.Tensor) -> Callable:
    """Wrap `func` so that a wrong shape or dtype of its first answer raises a clear error."""
    checked = False

    def rhs(t, y):
        nonlocal checked
        out = func(t, y)
        if not checked:
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"func(t, y) must return a tensor, got {type(out).__name__}")
            if out.shape != y.shape:
                raise ValueError(f"func(t, y) returned shape {tuple(out.shape)}; it must match y's shape {tuple(y.shape)}")
            if out.dtype != y.dtype:
                raise TypeError(f"func(t, y) returned dtype {out.dtype}; it must match y's dtype {y.dtype}")
            checked = True
        return out

    return rhs


def _alpha_terms(alpha, coefficients, method: str):
    if isinstance(alpha, (list, tuple)):
        alphas = [_check_alpha(a, f"alpha[{i}]") for i, a in enumerate(alpha)]
        if not alphas:
            raise ValueError("alpha must not be an empty list")
    else:
        alphas = [_check_alpha(alpha, per_component=True)]
        if isinstance(alpha, torch.Tensor) and alpha.dim() == 1 and coefficients is not None:
            raise ValueError("coefficients= weighs the terms of a multi-term equation; per-component orders (a 1-D "
                             "alpha) take none")
    if coefficients is None:
        if len(alphas) > 1:
            raise ValueError(f"multi-term alpha={list(alpha)} needs coefficients=[c1, ..., c{len(alphas)}]")
        coefficients = [1.0]
    coefficients = [float(c) for c in coefficients]
    if len(coefficients) != len(alphas):
        raise ValueError(f"coefficients has {len(coefficients)} entries but alpha has {len(alphas)}")
    if len(alphas) > 1 and not SCHEMES[method].multi_term:
        supported = [m for m, s in SCHEMES.items() if s.multi_term]
        raise ValueError(
            f"method {method!r} does not support multi-term (distributed-order) equations; use one of {supported}"
        )
    return alphas, coefficients


def fdeint(
    func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y0: torch.Tensor | Sequence[torch.Tensor],
    t: torch.Tensor,
    alpha: float | torch.Tensor | Sequence[float | torch.Tensor],
    method: str = "gl",
    memory: int | None = None,
    *,
    coefficients: Sequence[float] | None = None,
    implicit: bool | None = None,
    corrector_iters: int = 1,
    newton_tol: float | None = None,
    newton_max_iters: int = 50,
    jacobian: str = "dense",
    block: int = 64,
    soe_tol: float | None = None,
    soe_first_lag: int = 32,
    save_every: int = 1,
    event: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    adjoint: bool | DiscreteAdjoint = False,
    adjoint_params: Sequence[torch.Tensor] | None = None,
    checkpoint_every: int | None = None,
    options: dict | None = None,
) -> torch.Tensor:
    r"""Solve `D^alpha y = f(t, y)`, `y(t[0]) = y0` (Caputo, `0 < alpha <= 2`) on the grid `t`.

    Same convention as `torchdiffeq.odeint`: `func(t, y)` returns a tensor of
    `y`'s shape and dtype; the result has shape `[len(t), *y0.shape]` on
    `y0`'s device and dtype.  `t` is uniform (`torch.linspace`), or, for `method='l1'`, `'pred'`
    and `'trap'`, any increasing grid such as a graded one, `t_j = T (j/N)^r`
    (`spikede.solvers.nonuniform`: full memory, gradients by autograd).

    Args:
        y0: `y(t[0])`; for `1 < alpha <= 2` the pair `(y(t[0]), y'(t[0]))` (a Caputo problem of
            order alpha takes `ceil(alpha)` initial values; they enter through the Taylor
            polynomial `y(t0) + (t - t0) y'(t0)`).
        alpha: the order, a float or 0-d tensor (gradients reach a tensor that
            requires them); a list `[a1, a2, ...]` with `coefficients=[c1, c2, ...]`
            solves the multi-term equation `sum_i c_i D^{a_i} y = f` (methods `gl` and `l1`,
            orders up to 1).  Orders `1 < alpha <= 2` are solved by `gl`, `pred` and `trap`
            (`SCHEMES[name].max_alpha`), with the full history or a window, by autograd.
            A 1-D tensor gives one order in (0, 1] per component of `y0`'s last axis (an
            incommensurate system, e.g. `alpha=torch.tensor([0.8, 0.7])` for a state `[..., 2]`),
            for `gl`, `l1`, `pred` and `trap` with the full history or a window, differentiable
            like a scalar order (autograd or the discrete adjoint).
        method: `'gl'` (Grünwald–Letnikov, order 1), `'l1'` (L1, order 2 - alpha
            with `implicit=True`, 1 explicit), `'pred'` (product rectangle,
            order 1), `'trap'` (Adams–Bashforth–Moulton PECE, order
            `min(2, 1 + alpha)`; implicit: product trapezoid, order 2), `'flmm-trap'`,
            `'flmm-ng'`, `'flmm-bdf2'` (second-order fractional linear multistep methods with
            starting weights, order 2 also on solutions with `t^alpha` terms; see
            `spikede.solvers.flmm`); any case.
            `SCHEMES[name].order(alpha, implicit)` gives each order.  With `alpha == 1` any
            `torchdiffeq` method (`'dopri5'`, `'rk4'`, ...) is also accepted and the call is
            delegated to `torchdiffeq.odeint` (`options` are passed on).
        memory: `None` for the exact full history, an int `M`: only lags
            `j <= M` (short-memory principle), or `'soe'`: lags `j < soe_first_lag`
            exact, the rest as a sum of exponentials with relative weight error
            `<= soe_tol` (default 1e-8 in float64, 1e-6 otherwise), O(1) work and memory
            per step.  `'soe'` needs a constant `alpha`.
        save_every: return the states at steps `0, k, 2k, ...` and the last step only
            (with `memory='soe'` the memory then stays O(1) in the number of steps).
        adjoint: `False` (autograd through the scheme), or a
            [DiscreteAdjoint][spikede.solvers.adjoint.DiscreteAdjoint]: the same gradients from
            a reverse sweep, without keeping the graph of the solve; gradients reach `y0`,
            `alpha` and the adjoint's `params` (by default the parameters of `func` if it is an
            `nn.Module`).  `True` is `DiscreteAdjoint()`.
        adjoint_params: with `adjoint=True`, shorthand for `DiscreteAdjoint(params=...)`.
        checkpoint_every: with `adjoint=True`, shorthand for
            `DiscreteAdjoint(checkpoint_every=k)`: keep the solver's state only every `k`
            steps and recompute each stretch in the backward pass.  With `memory='soe'` and
            `save_every > 1` nothing then grows with the number of steps but the returned
            states and `O(N / k)` snapshots of `K + L0` rows; `save_every` may be any value
            here.  A multiple of `block` recomputes the exact same sums, bit for bit.
        event: `event(t_n, y_n)` is called after every step with the state the scheme
            proposes and returns the state to keep (e.g. a spike reset); the kept state is
            what enters the history, so the memory remembers the events.  Only for the
            schemes that store the state (`gl`, `l1`).
        implicit: evaluate `f` at the new point `(t_n, y_n)` and solve by Newton's method
            to `newton_tol` (default `256 eps`); stable on stiff problems.  The iterations keep
            the matrix `I - c df/dy` of the step's first guess while they contract fast enough
            ([spikede.solvers.newton][]); the gradients are those of the exact solution.  For
            `'trap'` this is the implicit product trapezoid rule, order 2 on smooth problems.  `None`
            (default): the method's own mode, explicit but for the `flmm-*` methods, which
            are implicit only.
        corrector_iters: corrector evaluations per step of the explicit `trap` (1 = PECE).
        jacobian: how Newton's method forms `df/dy` for `implicit=True`: `'dense'` (default; any
            `func`, `S x S` for a state of `S` elements) or `'blockwise'`: `func` couples only the
            last axis of the state (each leading index an independent system, e.g. a batch of
            neurons), so the Jacobian is `[..., C, C]` blocks from `C` reverse passes, or from
            `func.block_jacobian(t, y)` where `func` has that method (the blocks in closed form,
            as the neuron models give them).  A `func` that couples the leading axes gets wrong
            Newton steps then.  Not for the `flmm-*` methods (their first steps are solved
            together).
        block: steps whose far history is computed together (speed only).
        options: settings of the method.  For the torchdiffeq methods (`alpha == 1`) they are
            passed on.  The `flmm-*` methods take `{"starting_exponents": "up_to_one"}` (default:
            the starting weights are exact for `t^g`, every `g = k + j alpha <= 1`, as in
            Garrappa's code; smaller errors) or `"below_one"` (`g < 1` only, Lubich's set for
            order 2: the error is a clean `C h^2` from the coarsest grids, 1-14 times larger; see
            `spikede.solvers.flmm`).  The other fractional methods take none.

    Raises:
        ValueError: bad input values; the message names the parameter.
        TypeError: bad input types; the message names the parameter.
        ConvergenceError: an implicit step failed (the message names the step).
        FloatingPointError: the solution stopped being finite (the message names the step).
    """
    y0, derivatives = _initial_values(y0)
    if not callable(func):
        raise TypeError(f"func must be callable as func(t, y), got {type(func).__name__}")
    if isinstance(method, str) and method.lower() in SCHEMES:
        method = method.lower()
    if method not in SCHEMES:
        valid = FRACTIONAL_METHODS + _torchdiffeq_methods()
        if method not in valid:
            raise ValueError(f"unknown method {method!r}; valid methods are {', '.join(map(repr, valid))}")
    t, h, uneven = _check_grid(t, y0.device)

    if method not in SCHEMES:
        return _delegate_to_torchdiffeq(func, y0, derivatives, t, alpha, method, memory, options)
    scheme_options = _check_scheme_options(options, SCHEMES[method])
    alphas, coefficients = _alpha_terms(alpha, coefficients, method)
    memory = check_memory(memory)
    if memory == "soe" and any(isinstance(a, torch.Tensor) and a.requires_grad for a in alphas):
        raise ValueError(
            "memory='soe' compresses the weights of a fixed alpha; alpha requires grad. "
            "Use memory=None or an int window to learn alpha"
        )
    scheme_cls = SCHEMES[method]
    _check_high_order(alphas, derivatives, scheme_cls, memory, adjoint, checkpoint_every)
    if isinstance(alphas[0], torch.Tensor) and alphas[0].dim() == 1:
        _check_per_component(alphas[0], y0, scheme_cls, memory, uneven)
    dy0 = derivatives[0] if derivatives else None
    if event is not None:
        if not callable(event):
            raise TypeError(f"event must be callable as event(t, y), got {type(event).__name__}")
        if scheme_cls.stores_rhs:
            state_methods = [m for m, cls in SCHEMES.items() if not cls.stores_rhs]
            raise ValueError(
                f"event= needs a scheme whose history is the state, so that events are remembered; "
                f"method {method!r} stores f. Use one of {state_methods}"
            )
    corrector_iters = _check_positive_int(corrector_iters, "corrector_iters")
    if implicit is None:
        implicit = scheme_cls.implicit_modes[0]
    if not isinstance(implicit, bool) or implicit not in scheme_cls.implicit_modes:
        raise ValueError(f"method {method!r} takes implicit={' or '.join(map(str, scheme_cls.implicit_modes))} "
                         f"(or None), got implicit={implicit!r}")
    if scheme_cls.coupled_start and any(isinstance(a, torch.Tensor) and a.requires_grad for a in alphas):
        raise ValueError(f"method {method!r} computes its weights for a fixed alpha; alpha requires grad. "
                         "Use 'gl', 'l1', 'pred' or 'trap' to learn alpha")
    if implicit and corrector_iters != 1:
        raise ValueError(f"corrector_iters={corrector_iters!r} is an option of the explicit 'trap' (PECE); "
                         "implicit=True solves each step by Newton's method instead")
    newton_max_iters = _check_positive_int(newton_max_iters, "newton_max_iters")
    if jacobian not in ("dense", "blockwise"):
        raise ValueError(f"jacobian must be 'dense' or 'blockwise', got {jacobian!r}")
    if jacobian == "blockwise" and scheme_cls.coupled_start:
        raise ValueError(f"jacobian='blockwise' is not available for method {method!r}; use jacobian='dense'")
    newton_tol = _check_tolerance(newton_tol, "newton_tol")
    kernel_options = dict(block=_check_positive_int(block, "block"), soe_tol=_check_tolerance(soe_tol, "soe_tol", 1.0),
                          soe_first_lag=_check_soe_first_lag(soe_first_lag))
    save_every = _check_positive_int(save_every, "save_every")
    rhs = _checked_rhs(func, y0)
    block_jacobian = getattr(func, "block_jacobian", None)
    if uneven is not None:
        newton = dict(newton_tol=default_tolerance(y0.dtype) if newton_tol is None else newton_tol,
                      newton_max_iters=newton_max_iters, blockwise=jacobian == "blockwise",
                      block_jacobian=block_jacobian)
        return _solve_on_nonuniform_grid(rhs, y0, t, alphas, method, memory, implicit, adjoint, newton, save_every,
                                         event, uneven, corrector_iters, dy0)
    grid = t.to(y0.dtype).unbind(0)

    def build(start: torch.Tensor, orders: list, kernel: bool = True):
        problem = Problem(
            func=rhs, y0=start, t=grid, h=h, n_steps=t.numel() - 1,
            window=memory if isinstance(memory, int) else None, corrector_iters=corrector_iters,
            newton_tol=default_tolerance(y0.dtype) if newton_tol is None else float(newton_tol),
            newton_max_iters=newton_max_iters, dy0=dy0, jacobian=jacobian,
            block_jacobian=block_jacobian,
        )
        scheme = scheme_cls(problem, orders, coefficients, bool(implicit), scheme_options)
        return problem, scheme, make_kernel(scheme, problem.n_steps, start, memory, **kernel_options) if kernel else None

    strategy = _adjoint_strategy(adjoint, checkpoint_every, adjoint_params)
    if strategy is None:
        problem, scheme, _ = build(y0, alphas, kernel=False)
        f0 = None
        if compiled_applies(problem, scheme, memory, event):
            f0 = rhs(grid[0], y0)
            if not (f0.requires_grad and torch.is_grad_enabled()):
                history = history_for(scheme, problem.n_steps, memory, kernel_options)
                return integrate_compiled(problem, scheme, history, save_every, kernel_options["block"], f0)
        kernel = make_kernel(scheme, problem.n_steps, y0, memory, **kernel_options)
        return integrate(problem, scheme, kernel, save_every, event, f0)
    if event is not None and not isinstance(event, ReplayableEvent):
        raise ValueError("adjoint= with event= needs an event the reverse sweep can replay, as solve_hybrid's "
                         "(spikede.solvers.hybrid); a plain event function keeps its state to itself: use adjoint=False")
    if event is not None and implicit:
        raise ValueError("adjoint= with event= replays explicit steps only; use implicit=False or adjoint=False")
    if scheme_cls.coupled_start:
        raise ValueError(f"method {method!r} solves its first steps together, which the step-by-step reverse sweep "
                         "of the discrete adjoint does not follow; use adjoint=False (autograd)")
    return strategy.solve(func, build, y0, alphas, memory, kernel_options, save_every, event)


def _solve_on_nonuniform_grid(rhs, y0, t, alphas, method, memory, implicit, adjoint, newton: dict, save_every,
                              event, uneven: str, corrector_iters: int, dy0: torch.Tensor | None) -> torch.Tensor:
    """L1 or product integration on the given increasing grid (`spikede.solvers.nonuniform`); the
    arguments are checked (`newton`: the Newton options, as keywords of the solvers there)."""
    if method not in NONUNIFORM_METHODS:
        raise ValueError(f"t is not a uniform grid ({uneven}); method {method!r} needs one (use torch.linspace"
                         f"(t0, t1, n + 1)); non-uniform grids, e.g. graded ones, are solved by "
                         f"{', '.join(map(repr, NONUNIFORM_METHODS))}")
    for name, bad in (("memory", memory is not None), ("adjoint", adjoint is not False),
                      ("alpha (multi-term)", len(alphas) > 1),
                      ("corrector_iters > 1", corrector_iters != 1)):
        if bad:
            raise ValueError(f"method {method!r} on a non-uniform grid ({uneven}) keeps the full history and takes "
                             f"gradients by autograd: {name} is not available there")
    from .nonuniform import l1_nonuniform, product_nonuniform

    if method == "l1":
        return l1_nonuniform(rhs, y0, t, alphas[0], implicit=implicit, save_every=save_every, event=event, **newton)
    return product_nonuniform(rhs, y0, t, alphas[0], method=method, implicit=implicit, save_every=save_every,
                              dy0=dy0, **newton)


def _adjoint_strategy(adjoint, checkpoint_every, adjoint_params) -> DiscreteAdjoint | None:
    """`adjoint=` as a `DiscreteAdjoint` (or `None`); `checkpoint_every=`/`adjoint_params=` are its shorthand."""
    if isinstance(adjoint, DiscreteAdjoint):
        if checkpoint_every is not None or adjoint_params is not None:
            raise ValueError("give checkpoint_every= and adjoint_params= to DiscreteAdjoint(...), not to fdeint, "
                             "when adjoint= is a DiscreteAdjoint")
        return adjoint
    if not isinstance(adjoint, bool):
        raise TypeError(f"adjoint must be a bool or a DiscreteAdjoint, got {type(adjoint).__name__}: {adjoint!r}")
    if not adjoint:
        if checkpoint_every is not None:
            raise ValueError("checkpoint_every= is an option of the adjoint; pass adjoint=True with it")
        if adjoint_params is not None:
            raise ValueError("adjoint_params= is an option of the adjoint; pass adjoint=True with it")
        return None
    if checkpoint_every is not None:
        checkpoint_every = _check_positive_int(checkpoint_every, "checkpoint_every")
    return DiscreteAdjoint(checkpoint_every=checkpoint_every, params=adjoint_params)


def _check_scheme_options(options, scheme_cls) -> dict:
    """`options=` for a fractional method: the keys and values of `scheme_cls.settings`."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {type(options).__name__}: {options!r}")
    settings = scheme_cls.settings
    for name, value in options.items():
        if name not in settings:
            takes = (f"takes options {', '.join(map(repr, settings))}" if settings
                     else "takes no options (they are passed on to torchdiffeq methods only)")
            raise ValueError(f"method {scheme_cls.name!r} {takes}; got options={{{name!r}: ...}}")
        if value not in settings[name]:
            raise ValueError(f"options[{name!r}] for method {scheme_cls.name!r} must be one of "
                             f"{', '.join(map(repr, settings[name]))}, got {value!r}")
    return dict(options)


def _check_soe_first_lag(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ValueError(f"soe_first_lag must be an int >= 2, got {value!r}")
    return value


def _check_per_component(alpha: torch.Tensor, y0: torch.Tensor, scheme_cls, memory, uneven: str | None) -> None:
    """A 1-D alpha: one order per entry of y0's last axis, for the schemes and options that take it."""
    size = y0.shape[-1] if y0.dim() else None
    if alpha.numel() != size:
        raise ValueError(f"a 1-D alpha gives one order per component of y0's last axis: y0 has shape "
                         f"{tuple(y0.shape)}, alpha has {alpha.numel()} orders")
    if not scheme_cls.per_component:
        able = [name for name, cls in SCHEMES.items() if cls.per_component]
        raise ValueError(f"method {scheme_cls.name!r} takes one order for the whole state; per-component orders "
                         f"are solved by {', '.join(map(repr, able))}")
    for option, bad in (("memory='soe'", memory == "soe"), ("a non-uniform grid", uneven is not None)):
        if bad:
            raise ValueError(f"per-component orders (a 1-D alpha) use the full history or a window on a uniform "
                             f"grid: {option} is not available with them")


def _check_high_order(alphas: list, derivatives: list, scheme_cls, memory, adjoint, checkpoint_every) -> None:
    """`ceil(alpha)` initial values, and orders above 1 only where the method and options allow them."""
    top = max(float(a.detach().max()) if isinstance(a, torch.Tensor) else float(a) for a in alphas)
    needed = math.ceil(top)
    if len(derivatives) + 1 != needed:
        given = "a tensor" if not derivatives else f"{len(derivatives) + 1} initial values"
        wanted = "y0=(y(t0), y'(t0))" if needed == 2 else "y0 as one tensor y(t0)"
        raise ValueError(f"alpha={top:g} takes ceil(alpha)={needed} initial value(s): pass {wanted}; got {given}")
    if top <= 1.0:
        return
    if len(alphas) > 1:
        raise ValueError(f"multi-term equations take orders 0 < alpha <= 1; got an order {top:g}")
    if top > scheme_cls.max_alpha:
        able = [name for name, cls in SCHEMES.items() if cls.max_alpha >= top]
        raise ValueError(f"method {scheme_cls.name!r} takes 0 < alpha <= {scheme_cls.max_alpha:g}; alpha={top:g} "
                         f"is solved by {', '.join(map(repr, able))}")
    if memory == "soe":
        raise ValueError(f"memory='soe' compresses the weights of orders up to 1; alpha={top:g}: use memory=None "
                         "or an int window")
    if adjoint is not False or checkpoint_every is not None:
        raise ValueError(f"the discrete adjoint covers orders up to 1; alpha={top:g}: use adjoint=False (autograd)")


def _delegate_to_torchdiffeq(func, y0, derivatives, t, alpha, method, memory, options):
    order = None if isinstance(alpha, (list, tuple)) else float(alpha)
    if order not in (1.0, 2.0) or (isinstance(alpha, torch.Tensor) and alpha.requires_grad):
        raise ValueError(
            f"method {method!r} is an integer-order torchdiffeq solver; it needs alpha == 1 or 2 (a constant), got "
            f"alpha={alpha!r}. Fractional orders use one of {', '.join(map(repr, FRACTIONAL_METHODS))}"
        )
    if memory is not None:
        raise ValueError(f"memory={memory!r} has no meaning for the integer-order method {method!r}")
    if len(derivatives) + 1 != order:
        wanted = "y0=(y(t0), y'(t0))" if order == 2 else "y0 as one tensor y(t0)"
        raise ValueError(f"alpha={order:g} takes {order:g} initial value(s): pass {wanted}")
    import torchdiffeq

    t = t.to(y0.dtype)
    if order == 1.0:
        return torchdiffeq.odeint(func, y0, t, method=method, options=options)

    def first_order(t, state):  # y'' = f(t, y) as (y, y')' = (y', f(t, y))
        return torch.stack([state[1], func(t, state[0])])

    return torchdiffeq.odeint(first_order, torch.stack([y0, derivatives[0]]), t, method=method, options=options)[:, 0]


def fdeint_adjoint(func, y0, t, alpha, method="gl", memory=None, **options) -> torch.Tensor:
    """`fdeint` with `adjoint=True`: gradients by the discrete adjoint (same signature)."""
    return fdeint(func, y0, t, alpha, method, memory, adjoint=True, **options)
