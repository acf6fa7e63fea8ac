"""`fdeint`'s compiled loop (`spikede.solvers.blocks.integrate_compiled`) against the eager one.

Both loops sum the same history terms in another order (the compiled near history adds lag by
lag, the eager one through a matrix product), so the states are held to a tolerance: 1e-12
relative in float64 and 1e-5 in float32, a few hundred roundings of the dtype over the sums.
"""

from __future__ import annotations

import importlib

import pytest
import torch

from spikede import fdeint
from spikede.solvers import blocks, convolution, native

FDEINT_MODULE = importlib.import_module("spikede.solvers.fdeint")  # the name `fdeint` is the function
TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5}


def _rhs(t, y):
    return -y + 0.5 * torch.sin(y) + torch.cos(3.0 * t)


def _solve(engine: str, *args, **kwargs) -> torch.Tensor:
    native.set_engine(engine)
    with torch.no_grad():
        return fdeint(*args, **kwargs)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / a.abs().max()).item()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("method", ["gl", "l1"])
@pytest.mark.parametrize("memory", [None, 20, "soe"])
@pytest.mark.parametrize("save_every", [1, 7])
def test_compiled_loop_equals_eager(engine_state, dtype, method, memory, save_every):
    y0 = torch.randn(3, 5, generator=torch.Generator().manual_seed(1), dtype=dtype)
    t = torch.linspace(0.0, 5.0, 211, dtype=dtype)  # 210 steps: blocks of 16, the last one partial
    args = (_rhs, y0, t, 0.6)
    kwargs = dict(method=method, memory=memory, save_every=save_every, block=16)
    eager, compiled = _solve("eager", *args, **kwargs), _solve("compiled", *args, **kwargs)
    assert compiled.shape == eager.shape == (210 // save_every + 1 + (210 % save_every != 0), 3, 5)
    assert compiled.dtype == dtype
    assert _relative(eager, compiled) <= TOLERANCE[dtype]


def test_multi_term_gl_and_long_soe(engine_state):
    y0 = torch.linspace(-1.0, 1.0, 64, dtype=torch.float64)
    t = torch.linspace(0.0, 20.0, 2001, dtype=torch.float64)
    for kwargs in (dict(alpha=[0.9, 0.4], coefficients=[1.0, 0.5]), dict(alpha=0.5, memory="soe")):
        eager = _solve("eager", _rhs, y0, t, **kwargs)
        compiled = _solve("compiled", _rhs, y0, t, **kwargs)
        assert _relative(eager, compiled) <= 1e-12


def test_the_function_is_called_once_per_step(engine_state):
    calls = []

    def counted(t, y):
        calls.append(float(t))
        return -y

    t = torch.linspace(0.0, 1.0, 41, dtype=torch.float64)
    _solve("compiled", counted, torch.ones(2, dtype=torch.float64), t, 0.7)
    assert calls == [float(v) for v in t[:-1]]  # f(t_0) .. f(t_{N-1}): the explicit step needs no f(t_N)


def test_non_contiguous_answer(engine_state):
    y0 = torch.randn(4, 6, dtype=torch.float64)
    t = torch.linspace(0.0, 2.0, 50, dtype=torch.float64)

    def transposed(t, y):
        return (-y.t()).t()  # same shape, not contiguous

    eager, compiled = _solve("eager", transposed, y0, t, 0.5), _solve("compiled", transposed, y0, t, 0.5)
    assert _relative(eager, compiled) <= 1e-12


def test_an_answer_that_changes_dtype_is_refused(engine_state):
    def drifting(t, y):
        return -y if float(t) < 0.5 else (-y).float()

    with pytest.raises(TypeError, match=r"func\(t, y\) returned a torch.float32 tensor .* for step \d+"):
        _solve("compiled", drifting, torch.ones(3, dtype=torch.float64), torch.linspace(0.0, 1.0, 20), 0.5)


def test_blow_up_names_the_step(engine_state):
    t = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    with pytest.raises(FloatingPointError, match="not finite from step 3 on"):
        _solve("compiled", lambda t, y: torch.where(t > 0.015, torch.full_like(y, float("inf")), -y),
               torch.ones(2, dtype=torch.float64), t, 0.5)


def test_gradients_keep_the_eager_loop(engine_state):
    """With autograd needed (y0, alpha or func's answer requiring grad) the compiled loop does not
    run: its gradients equal the eager loop's."""
    native.set_engine("compiled")
    t = torch.linspace(0.0, 1.0, 30, dtype=torch.float64)
    y0 = torch.tensor([1.0, -0.5], dtype=torch.float64, requires_grad=True)
    rate = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    fdeint(lambda t, y: -rate * y, y0, t, 0.6)[-1].sum().backward()
    native.set_engine("eager")
    y0_e, rate_e = y0.detach().clone().requires_grad_(), rate.detach().clone().requires_grad_()
    fdeint(lambda t, y: -rate_e * y, y0_e, t, 0.6)[-1].sum().backward()
    assert torch.allclose(y0.grad, y0_e.grad, rtol=1e-13, atol=0) and torch.allclose(rate.grad, rate_e.grad, rtol=1e-13)


@pytest.mark.parametrize("kwargs", [dict(implicit=True), dict(method="trap"),
                                    dict(event=lambda t, y: y)])
def test_other_solves_stay_eager(engine_state, monkeypatch, kwargs):
    def refuse(*args, **kw):
        raise AssertionError("integrate_compiled must not run here")

    monkeypatch.setattr(FDEINT_MODULE, "integrate_compiled", refuse)
    native.set_engine("compiled")
    with torch.no_grad():
        out = fdeint(_rhs, torch.ones(3, dtype=torch.float64), torch.linspace(0.0, 1.0, 40, dtype=torch.float64),
                     0.6, **kwargs)
    assert torch.isfinite(out).all()


def test_applies_only_where_it_should(engine_state):
    native.set_engine("compiled")
    t = torch.linspace(0.0, 1.0, 10)
    calls = []
    original = blocks.integrate_compiled

    def spy(*args, **kw):
        calls.append(args[0].dtype)
        return original(*args, **kw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FDEINT_MODULE, "integrate_compiled", spy)
        with torch.no_grad():
            fdeint(_rhs, torch.ones(2), t, 0.5)
            fdeint(_rhs, torch.ones(2, dtype=torch.float16), t.half(), 0.5)
        native.set_engine("eager")
        with torch.no_grad():
            fdeint(_rhs, torch.ones(2), t, 0.5)
    assert calls == [torch.float32]


@pytest.mark.parametrize("fft_min_rows,split_min_rows", [(16, 16), (10**9, 32), (10**9, 10**9)],
                         ids=["fft", "split", "products"])
def test_dyadic_far_sums_equal_the_full_products(fft_min_rows, split_min_rows):
    """DyadicHistory pairs every (step block, earlier row block) once, in squares of doubling size;
    its far sums, forward and backward, are FullHistory's to rounding (float64, 1e-12 relative:
    the FFT's error is a few ulps of the largest term).  'split': squares of 32 rows or more
    computed whole, those of 256 and 512 rows split once and twice (the last with 389 of its 512
    sums inside the sequence, so with weights padded beyond the last lag)."""
    generator = torch.Generator().manual_seed(2)
    steps, block, width = 901, 16, 7  # 57 blocks, the last partial; squares of 16 .. 512 rows
    weights = torch.rand(steps + 1, generator=generator, dtype=torch.float64)
    rows = torch.randn(steps + 1, width, generator=generator, dtype=torch.float64)
    grads = torch.randn(steps, width, generator=generator, dtype=torch.float64)
    dyadic = blocks.DyadicHistory(weights, block, fft_min_rows, split_min_rows)
    full = blocks.FullHistory(weights, None)

    def in_step_order(far_and_step):
        far, step = far_and_step
        return far if step > 0 else far.flip(0)

    errors = []
    for history in (dyadic, full):
        history.start(rows[0])
    for n0 in range(1, steps + 1, block):
        b = min(block, steps + 1 - n0)
        got, want = (in_step_order(h.forward_far(rows, n0, b)) for h in (dyadic, full))
        errors.append(_relative(want, got))
    for history in (dyadic, full):
        history.start(torch.zeros(width, dtype=torch.float64))
    for top in range(steps, 0, -block):
        b = top - max(1, top - block + 1) + 1
        got, want = (in_step_order(h.backward_far(grads, top, b)) for h in (dyadic, full))
        errors.append(_relative(want, got))
    assert max(errors) <= 1e-12


@pytest.mark.parametrize("hankel", [False, True], ids=["toeplitz", "hankel"])
@pytest.mark.parametrize("size", [6, 96, 256, 512])
def test_split_square_product_equals_the_dense_product(hankel, size):
    """The halving split (three products of half the size) against the dense matrix, float64: within
    2e-15 of `|M| |rows|` (a few ulps: each halving adds one rounding to every term), also with fewer lags
    than the square needs (zero beyond) and more columns than one pass takes."""
    generator = torch.Generator().manual_seed(size)
    rows = torch.randn(size, 1500, generator=generator, dtype=torch.float64)
    for lags in (torch.randn(2 * size + 3, generator=generator, dtype=torch.float64),
                 torch.randn(size + 5, generator=generator, dtype=torch.float64)):
        t = torch.cat([lags, lags.new_zeros(2 * size)])
        q, s = torch.arange(size)[:, None], torch.arange(size)
        matrix = t[q + s] if hankel else t[q - s + size - 1]
        got = convolution.split_square_product(rows, lags, hankel)
        assert (got - matrix @ rows).abs().max() <= 2e-15 * (matrix.abs() @ rows.abs()).max()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_long_full_history_through_the_fft_squares(engine_state, dtype):
    """2100 steps in blocks of 64: the square at step 1025 has 1024 rows (split three times), the
    rest of the far sums are products of 64 to 512 rows."""
    y0 = torch.linspace(-1.0, 1.0, 6, dtype=dtype)
    t = torch.linspace(0.0, 10.0, 2101, dtype=dtype)
    eager, compiled = (_solve(engine, _rhs, y0, t, 0.6, block=64) for engine in ("eager", "compiled"))
    assert _relative(eager, compiled) <= TOLERANCE[dtype]
