"""The compiled engine (`spikede.fused`) against the eager loop, and how it is chosen.

Both engines sum the same history terms in a different order (the compiled near history adds lag
by lag, the eager one through a matrix product), so states and gradients are compared with a
tolerance: 1e-12 relative in float64 and 1e-5 relative in float32 (a few hundred roundings of
the dtype over the history sums), while the 0/1 spikes must be identical on these inputs.
"""

from __future__ import annotations

import os
import shutil
import warnings

import pytest
import torch

from spikede import FractionalIF, FractionalLIF, fused
from spikede.solvers import native

from .spikes import same_spikes

TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5}


def _close(a: torch.Tensor, b: torch.Tensor, dtype) -> bool:
    scale = max(a.abs().max().item(), b.abs().max().item(), 1e-30)
    return (a - b).abs().max().item() <= TOLERANCE[dtype] * scale


def _run(engine: str, make, x: torch.Tensor, seed: int = 0):
    native.set_engine(engine)
    torch.manual_seed(seed)
    neuron = make()
    x = x.clone().requires_grad_()
    spikes = neuron(x)
    weights = torch.linspace(-1.0, 1.0, spikes.numel(), dtype=x.dtype).reshape(spikes.shape)
    (spikes * weights).sum().backward()
    grads = [x.grad] + [p.grad for _, p in sorted(neuron.named_parameters())]
    return spikes.detach(), grads


def _assert_engines_agree(make, x: torch.Tensor) -> None:
    """float64: identical spikes, every gradient within 1e-12 relative."""
    spikes_e, grads_e = _run("eager", make, x)
    spikes_c, grads_c = _run("compiled", make, x)
    assert spikes_e.sum() > 0.05 * spikes_e.numel()  # resets enter the history
    assert same_spikes(spikes_e, spikes_c)
    for a, b in zip(grads_e, grads_c):
        assert _close(a, b, torch.float64)


@pytest.fixture
def short_blocks(monkeypatch):
    """Blocks of 16 steps: the layers here are narrow, and `fused.block_for` would run their 60 to 90
    steps as one kernel call, with no far history at all."""
    monkeypatch.setattr(fused, "block_for", lambda width: 16)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("method", ["gl", "l1"])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("memory", [None, 7, "soe"])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_compiled_equals_eager(engine_state, short_blocks, dtype, method, reset, memory, detach_reset):
    """Five blocks of 16 steps and a last of 11: the far history of every memory kernel, forward and backward."""
    def make():
        return FractionalLIF(alpha=0.7, tau=0.8, threshold=0.6, method=method, reset=reset, memory=memory,
                             detach_reset=detach_reset, v_reset=-0.1, v_rest=0.05, learn_alpha=memory != "soe",
                             learn_tau=True, learn_threshold=True, dtype=dtype)

    x = torch.rand(75, 3, 5, generator=torch.Generator().manual_seed(3), dtype=dtype) * 1.5
    spikes_e, grads_e = _run("eager", make, x)
    spikes_c, grads_c = _run("compiled", make, x)
    assert spikes_e.sum() > 20  # the layer fires, so resets enter the history
    assert same_spikes(spikes_e, spikes_c)
    assert len(grads_e) == 3 + (memory != "soe")
    assert _close(grads_e[0], grads_c[0], dtype)  # the input gradient
    if dtype == torch.float64:
        for a, b in zip(grads_e[1:], grads_c[1:]):
            assert _close(a, b, dtype)
        return
    # float32 parameter gradients are sums of T x m terms that cancel and pass through the
    # recurrence; the eager loop adds them in float32 and is itself up to 4e-5 (relative) away from
    # the float64 gradient on these inputs.  So both engines are held to the float64 gradient with
    # one bound, 1e-4 relative, instead of to each other at 1e-5.
    def make64():
        return make().double()

    spikes_64, grads_64 = _run("eager", make64, x.double())
    assert same_spikes(spikes_64, spikes_e.double())
    for eager, compiled, exact in zip(grads_e[1:], grads_c[1:], grads_64[1:]):
        bound = 1e-4 * exact.abs().max().item()
        assert (eager.double() - exact).abs().max().item() <= bound
        assert (compiled.double() - exact).abs().max().item() <= bound


@pytest.fixture
def doubled_sigmoid():
    """A surrogate the kernels do not know ('doubled_sigmoid', twice the sigmoid's bump), registered for
    one test and removed after it."""
    from spikede.surrogate import _REGISTRY, register_surrogate

    register_surrogate("doubled_sigmoid", lambda x, k: 2.0 * k * torch.sigmoid(k * x) * (1 - torch.sigmoid(k * x)), 2.0)
    yield "doubled_sigmoid"
    _REGISTRY.pop("doubled_sigmoid")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("surrogate,scale", [("sigmoid", 4.0), ("arctan", 5.0), ("linear", 0.5), ("gaussian", 0.4),
                                             ("doubled_sigmoid", 2.0)])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_compiled_surrogate_bumps_equal_eager(engine_state, doubled_sigmoid, dtype, surrogate, scale, reset):
    """The kernels compute the built-in surrogates' bumps themselves (`SurrogateSpec.native`) and call the
    derivative of any other: input and threshold gradients within the engines' tolerance of the eager
    adjoint's.  'doubled_sigmoid' is registered here, so it takes the second path."""
    from spikede.surrogate import _REGISTRY

    assert (_REGISTRY[surrogate].native != 0) == (surrogate != doubled_sigmoid)

    def make():
        return FractionalLIF(alpha=0.7, tau=0.8, threshold=0.6, surrogate=surrogate, surrogate_scale=scale,
                             reset=reset, learn_threshold=True, dtype=dtype)

    x = torch.rand(70, 3, 5, generator=torch.Generator().manual_seed(5), dtype=dtype) * 1.5
    spikes_e, grads_e = _run("eager", make, x)
    spikes_c, grads_c = _run("compiled", make, x)
    assert spikes_e.sum() > 20 and same_spikes(spikes_e, spikes_c)
    assert grads_e[0].abs().max() > 0
    for a, b in zip(grads_e[: 1 if dtype == torch.float32 else None], grads_c):
        assert _close(a, b, dtype)


@pytest.mark.parametrize("method", ["gl", "l1"])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_a_surrogate_the_kernels_do_not_know_over_several_blocks(engine_state, short_blocks, doubled_sigmoid, method,
                                                                  reset):
    """A registered surrogate's bumps come from the proposed potentials `lif_proposed` forms from the
    spike bits and stored rows (the same the reverse sweep forms for itself), block after block
    (16-step blocks carry the potential down from one to the next): gl and l1, every reset, all
    gradients within 1e-12 of the eager adjoint's (float64)."""

    def make():
        return FractionalLIF(alpha=0.7, tau=0.8, threshold=0.6, method=method, reset=reset, v_reset=-0.1,
                             v_rest=0.05, surrogate=doubled_sigmoid, learn_tau=True, learn_threshold=True,
                             learn_alpha=True, dtype=torch.float64)

    _assert_engines_agree(make, torch.rand(70, 3, 5, generator=torch.Generator().manual_seed(9),
                                           dtype=torch.float64) * 1.5)


@pytest.mark.parametrize("surrogate,scale", [("sigmoid", 400.0), ("gaussian", 0.01)])
def test_compiled_surrogate_bumps_hold_where_exp_overflows_and_underflows(engine_state, surrogate, scale):
    """The kernels' own `exp` (vectorised, `csrc/kernels.c`): with one step the input gradient is the
    bump itself, here at exponents from -1e5 to +1e3, where exp underflows, overflows or neither:
    within 1e-12 of the largest bump, finite everywhere, and the bumps of the middle range are not
    zero (float64)."""

    def make():
        return FractionalLIF(alpha=0.7, tau=0.8, threshold=0.6, surrogate=surrogate, surrogate_scale=scale,
                             learn_threshold=True, dtype=torch.float64)

    x = torch.linspace(-6.0, 6.0, 4001, dtype=torch.float64)[None]  # p - theta from -5.6 to 5.4
    assert fused.applies(make(), x)
    _, (eager, *_) = _run("eager", make, x)
    _, (compiled, *_) = _run("compiled", make, x)
    assert torch.isfinite(compiled).all() and (compiled != 0).sum() > 100
    assert _close(eager, compiled, torch.float64)


@pytest.mark.parametrize("cls", [FractionalLIF, FractionalIF])
@pytest.mark.parametrize("method", ["gl", "l1"])
def test_compiled_equals_eager_multi_term(engine_state, cls, method):
    def make():
        return cls(alpha=[0.4, 0.9], coefficients=[0.3, 0.7], learn_coefficients=True, learn_alpha=True,
                   method=method, dtype=torch.float64)

    x = torch.rand(70, 2, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 2.0
    _assert_engines_agree(make, x)


@pytest.mark.parametrize("method", ["gl", "l1"])
def test_compiled_equals_eager_soe_over_many_blocks(engine_state, method):
    def make():
        return FractionalLIF(alpha=0.55, tau=0.7, method=method, memory="soe", learn_tau=True, dtype=torch.float64)

    x = torch.rand(400, 2, 4, generator=torch.Generator().manual_seed(6), dtype=torch.float64) * 1.5
    _assert_engines_agree(make, x)


@pytest.mark.parametrize("option", ["record", "return_membrane"])
def test_compiled_inference_and_membrane(engine_state, option):
    x = torch.rand(90, 4, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 1.5
    out = {}
    for engine in ("eager", "compiled"):
        native.set_engine(engine)
        neuron = FractionalLIF(alpha=0.6, method="l1", dtype=torch.float64, **{option: True})
        with torch.no_grad():
            result = neuron(x)
        spikes, membrane = result if option == "return_membrane" else (result, neuron.membrane)
        out[engine] = spikes, membrane, neuron._last_v
    assert same_spikes(out["eager"][0], out["compiled"][0])
    assert _close(out["eager"][1], out["compiled"][1], torch.float64)
    assert _close(out["eager"][2], out["compiled"][2], torch.float64)


def test_compiled_spikes_equal_a_hand_computed_trace(engine_state):
    """alpha = 1 (gl weights -1, 0, 0, ...): v_n = v_{n-1} + dt/tau (I - v_{n-1}), subtract reset, by hand."""
    native.set_engine("compiled")
    x = torch.tensor([[1.5], [1.5], [0.0], [3.0], [1.5]], dtype=torch.float64)
    spikes = FractionalLIF(alpha=1.0, tau=2.0, dt=1.0, dtype=torch.float64)(x.clone().requires_grad_())
    v, expected = 0.0, []
    for current in x[:, 0].tolist():
        v = v + 0.5 * (current - v)
        s = 1.0 if v >= 1.0 else 0.0
        v -= s
        expected.append(s)
    assert expected == [0.0, 1.0, 0.0, 1.0, 1.0]
    assert spikes[:, 0].tolist() == expected


def test_block_length_follows_the_layer_width():
    """Wide layers take 32-step blocks; narrower ones longer blocks (fewer calls around the kernels)."""
    assert [fused.block_for(width) for width in (1, 511, 512, 2047, 2048, 1 << 20)] == [128, 128, 64, 64, 32, 32]


@pytest.mark.parametrize("method", ["gl", "l1"])
@pytest.mark.parametrize("memory", [None, 7, "soe"])
def test_compiled_equals_eager_in_the_blocks_it_chooses(engine_state, monkeypatch, method, memory):
    """15 neurons over 150 steps: the chosen blocks (`fused.block_for`: 128 steps, then 22), as
    against the fixed short blocks of the tests above; the kernels see 128-step blocks."""
    chosen = []

    def recording(width, choose=fused.block_for):
        chosen.append(choose(width))
        return chosen[-1]

    monkeypatch.setattr(fused, "block_for", recording)

    def make():
        return FractionalLIF(alpha=0.7, tau=0.8, threshold=0.6, method=method, memory=memory, learn_tau=True,
                             learn_threshold=True, learn_alpha=memory != "soe", dtype=torch.float64)

    _assert_engines_agree(make, torch.rand(150, 3, 5, generator=torch.Generator().manual_seed(8),
                                           dtype=torch.float64) * 1.5)
    assert chosen == [128]


def test_compiled_equals_eager_over_several_neuron_chunks(engine_state):
    """1047 neurons: three of the kernels' 512-neuron chunks, the last not a whole number of bytes of
    spike bits; the backward reads its spikes from the bits the forward kernel wrote."""
    def make():
        return FractionalLIF(alpha=0.7, tau=0.8, threshold=0.6, learn_tau=True, dtype=torch.float64)

    _assert_engines_agree(make, torch.rand(70, 3, 349, generator=torch.Generator().manual_seed(3),
                                           dtype=torch.float64) * 1.5)


def test_the_kept_scheme_follows_the_order_the_step_and_the_length(engine_state):
    """The compiled forward keeps the layer's scheme for the next call (fused.scheme_for); a changed
    order (a learned one after an optimiser step), step size or sequence length gives a new one:
    the same membrane potentials as a fresh layer built with the new values (float64, 1e-12)."""
    native.set_engine("compiled")
    x = torch.rand(60, 3, 5, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 1.5

    def membrane(neuron, inputs):
        with torch.no_grad():
            return neuron(inputs)[1]

    layer = FractionalLIF(alpha=0.6, learn_alpha=True, return_membrane=True, dtype=torch.float64)
    membrane(layer, x)
    for change in ("order", "step", "length"):
        if change == "order":
            with torch.no_grad():
                layer.alpha_logit.add_(0.5)
        if change == "step":
            layer.dt = 0.5
        if change == "length":
            x = x[:40]
        fresh = FractionalLIF(alpha=layer.alpha.item(), dt=layer.dt, return_membrane=True, dtype=torch.float64)
        assert _close(membrane(layer, x), membrane(fresh, x), torch.float64), change
    assert layer.__dict__["_kept_scheme"][1].weights.shape[-1] == 41  # kept for the last call: 40 steps


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_runs_eager(engine_state, dtype):
    native.set_engine("compiled")
    neuron = FractionalLIF(alpha=0.7, dtype=dtype)
    x = torch.rand(20, 2, 3, dtype=dtype, requires_grad=True)
    assert not fused.applies(neuron, x)
    neuron(x * 3).sum().backward()
    assert x.grad is not None and x.grad.dtype == dtype


def test_failed_build_falls_back_once_with_a_notice(engine_state, monkeypatch, tmp_path):
    monkeypatch.setenv("CC", "no-such-compiler-spikede")
    monkeypatch.setenv("SPIKEDE_CACHE_DIR", str(tmp_path))
    native.set_engine("auto")
    native._library, native._failure = None, None
    neuron = FractionalLIF(alpha=0.7)
    x = torch.rand(10, 2, 3)
    with pytest.warns(native.EngineWarning, match="no-such-compiler-spikede"):
        assert not fused.applies(neuron, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not fused.applies(neuron, x)  # said once
        neuron(x)
    assert native.engine_status()["build_error"].startswith("no C compiler")
    native.set_engine("compiled")
    with pytest.raises(RuntimeError, match="engine='compiled'"):
        native.compiled_kernels()


def test_the_build_is_cached(engine_state, monkeypatch, tmp_path):
    monkeypatch.setenv("SPIKEDE_CACHE_DIR", str(tmp_path))
    native._build()
    (library,) = tmp_path.glob("kernels-*.so")
    stamp = library.stat().st_mtime_ns
    def no_compiler(*args, **kwargs):
        raise AssertionError("a cache hit must not run the compiler")

    monkeypatch.setattr(native.subprocess, "run", no_compiler)
    native._build()
    assert library.stat().st_mtime_ns == stamp


def test_engine_names_are_checked(engine_state, monkeypatch):
    with pytest.raises(ValueError, match="engine must be one of 'auto', 'compiled', 'eager', got 'fast'"):
        native.set_engine("fast")
    native._engine = None
    monkeypatch.setenv("SPIKEDE_ENGINE", "turbo")
    with pytest.raises(ValueError, match="SPIKEDE_ENGINE must be one of 'auto', 'compiled', 'eager', got 'turbo'"):
        native.compiled_kernels()


@pytest.mark.skipif(shutil.which("cc") is None or not hasattr(os, "getuid"), reason="needs cc and a POSIX shell")
def test_a_compiler_without_native_flags_still_builds(engine_state, monkeypatch, tmp_path):
    """A compiler that rejects -march=native gets a second, portable build."""
    wrapper = tmp_path / "picky-cc"
    wrapper.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = "-march=native" ] && exit 1; done\nexec cc "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("CC", str(wrapper))
    monkeypatch.setenv("SPIKEDE_CACHE_DIR", str(tmp_path / "cache"))
    library = native._build()
    assert library.lif_forward_f64 is not None
    assert len(list((tmp_path / "cache").glob("kernels-*.so"))) == 1


@pytest.mark.parametrize("memory", [None, "soe"])
def test_expanded_gradient_and_strided_input(engine_state, memory):
    """`spikes.sum()` hands the backward an expanded (stride 0) gradient, and a transposed input is
    not contiguous: the kernels must see the same numbers as the eager loop."""
    base = torch.randn(6, 40, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 2.0
    grads = {}
    for engine in ("eager", "compiled"):
        native.set_engine(engine)
        neuron = FractionalLIF(alpha=0.7, memory=memory, learn_tau=True, learn_threshold=True, dtype=torch.float64)
        x = base.clone().requires_grad_()
        spikes = neuron(x.transpose(0, 1))  # [40, 6, 3], not contiguous
        assert spikes.sum() > 10
        grads[engine] = torch.autograd.grad(spikes.sum(), [x, neuron.log_tau, neuron.threshold])
    for a, b in zip(grads["eager"], grads["compiled"]):
        assert _close(a, b, torch.float64)
