import math

import pytest
import torch
from torch import nn

import spikede
from spikede import (
    FractionalIF,
    FractionalLIF,
    IFNeuron,
    LIFNeuron,
    Surrogate,
    TimeDistributed,
    fdeint,
    fractionalize,
    latency_encode,
    rate_encode,
)
from spikede.special import mittag_leffler

F64 = torch.float64


def random_input(steps=60, batch=3, width=5, scale=1.6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(steps, batch, width, generator=g, dtype=F64) * scale


def test_lif_hand_computed_trace():
    x = torch.tensor([1.0, 1.5, 0.2, 2.0], dtype=F64).reshape(4, 1)
    neuron = LIFNeuron(tau=2.0, threshold=1.0, record=True)
    s = neuron(x)
    # v1 = 0.5; v2 = 0.5 + 0.5 (1.5 - 0.5) = 1.0 -> spike (H(0) = 1), 0.0;
    # v3 = 0.5 * 0.2 = 0.1; v4 = 0.1 + 0.5 (2.0 - 0.1) = 1.05 -> spike, 0.05
    assert s[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert torch.allclose(neuron.membrane[:, 0], torch.tensor([0.5, 0.0, 0.1, 0.05], dtype=F64), rtol=0, atol=1e-15)


def test_if_hand_computed_trace():
    x = torch.tensor([0.4, 0.4, 0.4, 0.9], dtype=F64).reshape(4, 1)
    neuron = IFNeuron(record=True, reset="zero")
    assert neuron(x)[:, 0].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert torch.allclose(neuron.membrane[:, 0], torch.tensor([0.4, 0.8, 0.0, 0.9], dtype=F64), rtol=0, atol=1e-15)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_fractional_alpha_one_is_lif(reset):
    x = random_input()
    lif = LIFNeuron(tau=3.0, reset=reset, v_reset=-0.2, record=True)
    frac = FractionalLIF(alpha=1.0, tau=3.0, reset=reset, v_reset=-0.2, record=True)
    assert torch.equal(lif(x), frac(x))  # 0/1 spike trains: equal
    # Two code paths (Euler update vs. the GL step with weights 1, -1, 0, ...): the same arithmetic up to
    # the order of exact zero terms, so the potentials agree to a few ulps of O(1) values.
    assert torch.allclose(lif.membrane, frac.membrane, rtol=0, atol=1e-14)
    assert torch.equal(IFNeuron()(x), FractionalIF(alpha=1.0)(x))


def test_fractional_alpha_one_with_resting_potential():
    x = random_input() - 0.3
    lif = LIFNeuron(v_rest=-0.3, record=True)
    frac = FractionalLIF(alpha=1.0, v_rest=-0.3, record=True)
    assert torch.equal(lif(x), frac(x))
    # v_rest + (v - v_rest) is v up to one rounding: potentials agree to the last bits
    assert torch.allclose(lif.membrane, frac.membrane, rtol=0, atol=1e-14)


@pytest.mark.parametrize("cls", [FractionalLIF, LIFNeuron])
def test_multi_and_single_step_agree(cls):
    x = random_input(steps=150)  # more than the single-step history's first capacity (64)
    kwargs = dict(alpha=0.7) if cls is FractionalLIF else {}
    multi = cls(record=True, **kwargs)
    single = cls(step_mode="single", record=True, **kwargs)
    s_multi = multi(x)
    s_single = torch.stack([single(xt) for xt in x.unbind(0)])
    assert torch.equal(s_multi, s_single)  # 0/1 spike trains: equal
    # The single-step history grows its buffer (capacity 64, then 128, ...) and so sums the same
    # lags in other blocks than the multi-step run: BLAS may round differently (2.2e-16 seen from
    # step 128 on).  A relative error of a few eps per step over 150 steps stays far below 1e-12.
    assert torch.allclose(multi.membrane, single.membrane, rtol=0, atol=1e-12)
    spikede.reset(single)
    assert single.membrane is None
    assert torch.equal(torch.stack([single(xt) for xt in x.unbind(0)]), s_multi)


def naive_fractional_lif(x, alpha, tau, threshold, dt, reset, v_reset=0.0, v_rest=0.0, window=None, method="gl"):
    """Straight loops: the Caputo-corrected GL (or L1) scheme with the event layer."""
    steps = x.shape[0]
    if method == "gl":
        w = [1.0]
        for j in range(1, steps + 1):
            w.append(w[-1] * (1 - (1 + alpha) / j))
        coef = dt**alpha
    else:
        w = [(j + 1) ** (1 - alpha) - j ** (1 - alpha) for j in range(steps + 1)]
        coef = math.gamma(2 - alpha) * dt**alpha
    vs = [torch.full_like(x[0], v_rest)]
    us = [torch.zeros_like(x[0])]
    spikes = []
    for n in range(1, steps + 1):
        hist = torch.zeros_like(x[0])
        for j in range(1, n + 1):
            if window is None or j <= window:
                hist = hist + w[j] * us[n - j]
        drive = (-(vs[-1] - v_rest) + x[n - 1]) / tau
        base = v_rest if method == "gl" else vs[-1]
        v = base + coef * drive - hist
        s = (v >= threshold).to(x.dtype)
        if reset == "subtract":
            v = v - threshold * s
        elif reset == "zero":
            v = torch.where(s > 0, torch.full_like(v, v_reset), v)
        us.append(v - v_rest if method == "gl" else v - vs[-1])
        vs.append(v)
        spikes.append(s)
    return torch.stack(spikes), torch.stack(vs[1:])


@pytest.mark.parametrize("method", ["gl", "l1"])
@pytest.mark.parametrize("reset,window", [("subtract", None), ("zero", None), ("subtract", 10)])
def test_fractional_lif_matches_independent_scheme(method, reset, window):
    x = random_input(steps=80, scale=2.0)
    neuron = FractionalLIF(alpha=0.7, tau=2.5, threshold=1.0, dt=0.5, method=method, reset=reset, v_reset=0.1,
                           memory=window, record=True)
    s = neuron(x)
    s_ref, v_ref = naive_fractional_lif(x, 0.7, 2.5, 1.0, 0.5, reset, 0.1, window=window, method=method)
    assert s.sum() > 20
    assert torch.equal(s, s_ref)
    assert torch.allclose(neuron.membrane, v_ref, rtol=0, atol=1e-12)


def spike_times(alpha, steps=6000, dt=0.1):
    neuron = FractionalLIF(alpha=alpha, tau=5.0, threshold=1.0, dt=dt, reset="zero")
    s = neuron(torch.full((steps, 1), 1.5, dtype=F64))[:, 0]
    return torch.nonzero(s)[:, 0].double() * dt


def test_spike_timing_adaptation_teka_2014():
    """Teka, Marinov & Santamaria 2014, Fig. 1E and 1G: lower alpha -> longer first-spike latency;
    for alpha < 1 the interspike intervals shrink over time (the memory of the resets), for
    alpha = 1 they are constant."""
    latencies, adaptation = {}, {}
    for alpha in (1.0, 0.9, 0.7, 0.5):
        times = spike_times(alpha)
        assert len(times) >= 6, alpha
        isi = torch.diff(times)
        latencies[alpha] = times[0].item()
        adaptation[alpha] = (isi[0] - isi[-1]).item()
        if alpha == 1.0:
            assert (isi - isi[0]).abs().max() <= 0.1 + 1e-9  # regular firing (one step of jitter)
        else:
            quarter = len(isi) // 4  # ISIs fall and then settle (on the dt = 0.1 grid)
            assert isi[:5].mean() > isi[-quarter:].mean() + 0.1 and isi[0] > isi[-1] + 0.2
    assert latencies[1.0] < latencies[0.9] < latencies[0.7] < latencies[0.5]
    assert adaptation[0.9] < adaptation[0.7] < adaptation[0.5]


def test_subthreshold_step_response_is_mittag_leffler():
    # tau D^a v = -v + I, v(0) = 0: v(t) = I (1 - E_a(-t^a / tau))
    alpha, tau, current, t_end = 0.6, 2.0, 0.8, 4.0
    errors = []
    for steps in (200, 400, 800):
        dt = t_end / steps
        neuron = FractionalLIF(alpha=alpha, tau=tau, threshold=100.0, dt=dt, record=True)
        neuron(torch.full((steps, 1), current, dtype=F64))
        t = torch.arange(1, steps + 1, dtype=F64) * dt
        exact = current * (1 - mittag_leffler(-(t**alpha) / tau, alpha))
        errors.append((neuron.membrane[:, 0] - exact).abs()[steps // 4 :].max().item())
    assert errors[-1] < 2e-3
    assert 1.7 < errors[0] / errors[1] < 2.3 and 1.7 < errors[1] / errors[2] < 2.3  # first order in dt


def smooth_network(alpha=0.6, seed=0):
    """Linear -> FractionalLIF with the noise-free soft spike: a smooth map, checkable by finite differences."""
    torch.manual_seed(seed)
    linear = nn.Linear(4, 3).double()
    neuron = FractionalLIF(alpha=alpha, tau=1.5, threshold=0.8, surrogate=Surrogate("noisy", 3.0, noise=False),
                           learn_alpha=True, learn_tau=True, learn_threshold=True).double()
    return nn.Sequential(TimeDistributed(linear), neuron)


def test_gradients_match_finite_differences():
    model = smooth_network()
    x = random_input(steps=25, batch=2, width=4, scale=2.0, seed=3)

    def loss():
        return (model(x) * torch.linspace(0.5, 1.5, 25, dtype=F64)[:, None, None]).sum()

    params = dict(model.named_parameters())
    grads = dict(zip(params, torch.autograd.grad(loss(), list(params.values()))))
    eps = 1e-6
    for name, p in params.items():
        flat = p.data.view(-1)
        for i in range(min(flat.numel(), 4)):
            old = flat[i].item()
            flat[i] = old + eps
            up = loss().item()
            flat[i] = old - eps
            down = loss().item()
            flat[i] = old
            fd = (up - down) / (2 * eps)
            assert abs(grads[name].view(-1)[i].item() - fd) <= 1e-6 * max(1.0, abs(fd)), (name, i)
    assert {"1.alpha_logit", "1.log_tau", "1.threshold", "0.layer.weight"} <= set(params)


def test_hard_spikes_give_surrogate_gradients_to_all_parameters():
    torch.manual_seed(0)
    model = nn.Sequential(TimeDistributed(nn.Linear(5, 4)), FractionalLIF(learn_alpha=True, learn_tau=True,
                                                                         learn_threshold=True, surrogate="gaussian"))
    out = model(torch.rand(30, 2, 5) * 2)
    out.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_learned_parameters_stay_in_range_and_state_dict_round_trips():
    neuron = FractionalLIF(alpha=0.6, tau=3.0, learn_alpha=True, learn_tau=True, learn_threshold=True)
    with torch.no_grad():
        neuron.alpha_logit.fill_(40.0)
        neuron.log_tau.fill_(-40.0)
    assert 0 < neuron.alpha.item() <= 1.0 and neuron.tau.item() > 0
    with torch.no_grad():
        neuron.alpha_logit.fill_(0.3)
        neuron.log_tau.fill_(0.7)
        neuron.threshold.fill_(1.2)
    clone = FractionalLIF(alpha=0.5, learn_alpha=True, learn_tau=True, learn_threshold=True)
    clone.load_state_dict(neuron.state_dict())
    x = random_input().float()
    assert torch.equal(neuron(x), clone(x))
    fixed = FractionalLIF(alpha=0.65)
    copy = FractionalLIF(alpha=0.9)
    copy.load_state_dict(fixed.state_dict())
    assert copy.alpha.item() == pytest.approx(0.65)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_follows_input(dtype):
    x = random_input().to(dtype)
    for neuron in (FractionalLIF(record=True), LIFNeuron(record=True)):
        s = neuron(x)
        assert s.dtype == dtype and neuron.membrane.dtype == dtype and s.shape == x.shape


def test_float32_agrees_with_float64():
    x = random_input(scale=1.3)
    n64 = FractionalLIF(alpha=0.75, record=True)
    n32 = FractionalLIF(alpha=0.75, record=True)
    n64(x)
    n32(x.float())
    assert (n64.membrane - n32.membrane.double()).abs().max() < 1e-4


def test_sequential_network_trains_on_toy_task():
    torch.manual_seed(0)
    steps, batch = 20, 64
    x = torch.rand(batch, 6)
    labels = (x[:, :3].sum(1) > x[:, 3:].sum(1)).long()
    model = nn.Sequential(
        TimeDistributed(nn.Linear(6, 32)),
        FractionalLIF(alpha=0.8, surrogate="gaussian", learn_alpha=True),
        TimeDistributed(nn.Linear(32, 2)),
        FractionalLIF(alpha=0.8, surrogate="gaussian"),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    inputs = x.expand(steps, batch, 6) * 1.5
    losses = []
    for _ in range(40):
        rate = model(inputs).mean(0)
        loss = nn.functional.cross_entropy(rate * 5, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    accuracy = (model(inputs).mean(0).argmax(1) == labels).float().mean().item()
    assert accuracy > 0.8


def test_fractionalize_and_reset():
    model = nn.Sequential(TimeDistributed(nn.Linear(3, 4)), LIFNeuron(tau=3.0, surrogate="arctan"),
                          TimeDistributed(nn.Linear(4, 2)), LIFNeuron(threshold=0.5), IFNeuron())
    frac = fractionalize(model, alpha=[0.9, 0.6], method="l1")
    assert isinstance(model[1], LIFNeuron) and not isinstance(model[1], FractionalLIF)  # original untouched
    assert isinstance(frac[1], FractionalLIF) and frac[1].alpha.item() == pytest.approx(0.9)
    assert frac[1].tau.item() == pytest.approx(3.0) and frac[1].surrogate.name == "arctan" and frac[1].method == "l1"
    assert frac[3].alpha.item() == pytest.approx(0.6) and frac[3].threshold.item() == pytest.approx(0.5)
    assert type(frac[4]) is IFNeuron
    one = fractionalize(model, alpha=1.0)
    x = torch.rand(10, 2, 3)
    assert torch.equal(one(x), model(x))
    with pytest.raises(ValueError, match="2 LIFNeuron layers"):
        fractionalize(model, alpha=[0.9])
    with pytest.raises(TypeError, match="model must be an nn.Module holding LIFNeuron layers, got list"):
        fractionalize([LIFNeuron()])
    with pytest.raises(TypeError, match=r"layer must be an nn.Module \(e.g. nn.Linear\(784, 256\)\), got function"):
        TimeDistributed(lambda x: x)
    single = nn.Sequential(LIFNeuron(step_mode="single"), FractionalLIF(step_mode="single"))
    single(torch.rand(2, 3))
    with pytest.raises(ValueError, match="reset"):
        single(torch.rand(5, 3))
    spikede.reset(single)
    assert single(torch.rand(5, 3)).shape == (5, 3)


def test_encoders():
    g = torch.Generator().manual_seed(0)
    x = torch.tensor([0.0, 0.25, 1.0])
    rates = rate_encode(x, 4000, generator=g)
    assert rates.shape == (4000, 3)
    assert torch.allclose(rates.mean(0), x, atol=0.03) and rates[:, 0].sum() == 0 and rates[:, 2].sum() == 4000
    lat = latency_encode(x, 5)
    assert lat.tolist() == [[0, 0, 1], [0, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rate_encode(torch.tensor([1.5]), 3)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(alpha=0.0), ValueError, "alpha must satisfy"),
        (dict(alpha=1.2), ValueError, "alpha must satisfy"),
        (dict(tau=0.0), ValueError, "tau must be"),
        (dict(tau=-1.0), ValueError, "tau must be"),
        (dict(reset="soft"), ValueError, "unknown reset 'soft'"),
        (dict(surrogate="relu"), ValueError, "unknown surrogate 'relu'"),
        (dict(method="trap"), ValueError, "unknown method 'trap' for a spiking neuron; valid methods are 'gl', 'l1'"),
        (dict(step_mode="batch"), ValueError, "unknown step_mode"),
        (dict(alpha=1.0, learn_alpha=True), ValueError, "learn_alpha=True needs alpha < 1"),
        (dict(memory=0), ValueError, "memory"),
        (dict(dt=0), ValueError, "dt must be"),
        (dict(dtype=torch.int64), TypeError, r"dtype must be a floating-point dtype .* got torch.int64"),
        (dict(dtype="float64"), TypeError, "dtype must be a torch.dtype or None, got str"),
    ],
)
def test_bad_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        FractionalLIF(**kwargs)


def test_bad_input_rank():
    with pytest.raises(ValueError, match=r"step_mode='multi' expects input \[T, B, ...\]"):
        FractionalLIF()(torch.rand(5))
    with pytest.raises(ValueError, match="step_mode='single' expects"):
        LIFNeuron(step_mode="single")(torch.tensor(1.0))
    with pytest.raises(TypeError, match=r"input must be a floating-point tensor, got a torch.int64 tensor of shape \(3, 2\); use"):
        LIFNeuron()(torch.ones(3, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="input must be a floating-point tensor, got list"):
        FractionalLIF()([[0.5, 0.5]])


def test_seed_snippet_runs():
    from spikeDE import LIFNeuron as SeedLIF

    neuron = SeedLIF(tau=2.0, threshold=1.0, surrogate="arctan", surrogate_scale=2.0)
    assert neuron.surrogate.name == "arctan" and neuron.surrogate.scale == 2.0


NEURON_CLASSES = [LIFNeuron, IFNeuron, FractionalLIF, FractionalIF]


@pytest.mark.parametrize("cls", NEURON_CLASSES)
def test_factory_dtype_keeps_parameters_exact(cls):
    neuron = cls(tau=0.3, threshold=0.7, learn_threshold=True, dtype=F64)
    assert neuron.threshold.dtype == F64 and neuron.threshold.item() == 0.7
    assert neuron.tau.dtype == F64 and neuron.tau.item() == 0.3  # stored as given, not exp(log(0.3))
    learned = cls(tau=2.0, learn_tau=True, dtype=F64)
    assert learned.log_tau.dtype == F64 and learned.log_tau.item() == math.log(2.0)
    assert cls(dtype=torch.float32).threshold.dtype == torch.float32
    assert cls(device="cpu").threshold.device.type == "cpu"
    with pytest.raises(TypeError, match="dtype"):
        cls(dtype="float64")


def test_fractional_factory_dtype_for_alpha():
    neuron = FractionalLIF(alpha=0.7, learn_alpha=True, dtype=F64)
    assert neuron.alpha_logit.dtype == F64
    assert neuron.alpha.item() == pytest.approx(0.7, rel=2e-16, abs=0)  # sigmoid(logit(0.7)): one rounding
    assert FractionalLIF(alpha=0.7, dtype=torch.float32).alpha.dtype == F64  # the order is a float64 constant


class _IndependentSigmoidSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        s = 1.0 / (1.0 + torch.exp(-5.0 * x))
        return grad * 5.0 * s * (1.0 - s)


def test_lif_float64_gradients_equal_an_independent_lif():
    """SpikingJelly's LIFNode (decay_input=True, soft reset, v_reset=None) written out: v <- v + (x - v) / tau,
    s = H(v - theta), v <- v - theta s, with the sigmoid surrogate (kappa = 5) of the seed document."""
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(40, 4, 6, generator=g, dtype=F64) * 2.5).requires_grad_(True)
    weights = torch.randn(40, 4, 6, generator=g, dtype=F64)
    neuron = LIFNeuron(tau=2.0, threshold=1.0, surrogate="sigmoid", dtype=F64)
    spikes = neuron(x)
    (ours,) = torch.autograd.grad((spikes * weights).sum(), x)
    v = torch.zeros_like(x[0])
    reference = []
    for xt in x.unbind(0):
        v = v + (xt - v) / 2.0
        s = _IndependentSigmoidSpike.apply(v - 1.0)
        v = v - 1.0 * s
        reference.append(s)
    reference = torch.stack(reference)
    (theirs,) = torch.autograd.grad((reference * weights).sum(), x)
    assert torch.equal(spikes, reference) and spikes.sum() > 50  # 0/1 spike trains
    assert (ours - theirs).abs().max() <= 1e-15


@pytest.mark.parametrize("cls", NEURON_CLASSES)
def test_habits_from_snntorch_and_spikingjelly(cls):
    x = random_input(steps=30)
    multi = cls(step_mode="m", return_membrane=True)
    single = cls(step_mode="S", return_membrane=True)
    assert multi.step_mode == "multi" and single.step_mode == "single"
    spikes, membrane = multi(x)
    assert spikes.shape == membrane.shape == x.shape
    assert torch.equal(multi.v, membrane[-1]) and multi.mem is not None and torch.equal(multi.mem, multi.v)
    steps = [single(xt) for xt in x.unbind(0)]
    assert all(isinstance(out, tuple) and len(out) == 2 for out in steps)
    assert torch.equal(torch.stack([s for s, _ in steps]), spikes)
    # different drivers of the same update (see test_multi_and_single_step_agree)
    assert torch.allclose(torch.stack([m for _, m in steps]), membrane, rtol=0, atol=1e-12)
    assert torch.allclose(single.v, membrane[-1], rtol=0, atol=1e-12)
    spikede.reset_net(single)
    assert single.v is None and spikede.reset_net is spikede.reset
    with pytest.raises(ValueError, match="'multi' \\(or 'm'\\) and 'single' \\(or 's'\\)"):
        cls(step_mode="x")


def test_method_names_are_case_insensitive():
    x = random_input(steps=40)
    assert FractionalLIF(method="L1").method == "l1"
    assert torch.equal(FractionalLIF(method="GL")(x), FractionalLIF(method="gl")(x))


def test_return_membrane_carries_gradients():
    x = random_input(steps=20).requires_grad_(True)
    spikes, membrane = FractionalLIF(alpha=0.7, return_membrane=True)(x)
    (g,) = torch.autograd.grad(membrane.sum(), x)
    assert g.abs().sum() > 0


@pytest.mark.parametrize("cls", NEURON_CLASSES)
def test_empty_sequence_gives_empty_spikes(cls):
    x = torch.rand(0, 3, 4, dtype=F64, requires_grad=True)
    out = cls()(x)
    assert out.shape == (0, 3, 4) and out.dtype == F64
    spikes, membrane = cls(return_membrane=True)(x)
    assert spikes.shape == membrane.shape == (0, 3, 4)


@pytest.mark.parametrize("cls", NEURON_CLASSES)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_input_propagates_as_nan_spikes(cls, bad):
    x = torch.full((6, 1, 2), 0.3, dtype=F64)
    x[2, 0, 0] = bad
    s = cls()(x)
    after = s[2:, 0, 0]
    if math.isnan(bad):
        assert torch.isnan(after).all()
    else:  # an infinite potential fires, then stays infinite (IF) or becomes inf - inf = NaN
        assert after[0] == 1 and ((after == 1) | torch.isnan(after)).all()
    assert not torch.isnan(s[:, 0, 1]).any()  # the other neuron is untouched


def test_nan_order_gives_nan_spikes():
    neuron = FractionalLIF(alpha=0.7, learn_alpha=True)
    with torch.no_grad():
        neuron.alpha_logit.fill_(math.nan)
    assert torch.isnan(neuron(random_input(steps=5).float())).all()


@pytest.mark.parametrize("name", ["threshold", "v_rest", "v_reset"])
def test_nan_parameters_are_value_errors(name):
    with pytest.raises(ValueError, match=f"{name} must be finite, got nan"):
        FractionalLIF(**{name: math.nan})
    with pytest.raises(TypeError, match=f"{name} must be a real number"):
        LIFNeuron(**{name: "1.0"})


def test_multi_term_neuron_equals_multi_term_fdeint():
    """tau sum_i c_i D^{a_i} v = -(v - v_rest) + I, without spikes, against fdeint(gl, coefficients=)."""
    alphas, weights, tau, v_rest, dt = [0.3, 0.6, 0.9], [0.5, 1.5, 1.0], 2.0, -0.2, 0.5
    x = random_input(steps=80, scale=1.0)
    neuron = FractionalLIF(alpha=alphas, coefficients=weights, tau=tau, v_rest=v_rest, dt=dt, threshold=100.0,
                           record=True, dtype=F64)
    neuron(x)
    t = torch.linspace(0, 80 * dt, 81, dtype=F64)

    def drive(t, y):  # the step that produces v_n uses I_n: f(t_{n-1}, .) reads input n
        n = int(round(t.item() / dt))
        return (-(y - v_rest) + x[n]) / tau

    y = fdeint(drive, torch.full_like(x[0], v_rest), t, alphas, method="gl", coefficients=weights)
    assert (y[1:] - neuron.membrane).abs().max() <= 1e-12
    single = FractionalLIF(alpha=[0.6, 0.6], record=True, dtype=F64, threshold=100.0)
    plain = FractionalLIF(alpha=0.6, record=True, dtype=F64, threshold=100.0)
    single(x), plain(x)
    assert (single.membrane - plain.membrane).abs().max() <= 1e-12  # equal orders, default weights 1/K


@pytest.mark.parametrize("method", ["gl", "l1"])
@pytest.mark.parametrize("memory", [None, 7, "soe"])
def test_multi_term_adjoint_equals_autograd(method, memory):
    learn = memory != "soe"  # soe compresses the weights of fixed orders
    results = []
    for adjoint in (False, True):
        torch.manual_seed(0)
        neuron = FractionalLIF(alpha=[0.4, 0.8], coefficients=[0.7, 1.3], method=method, memory=memory,
                               learn_alpha=learn, learn_coefficients=learn, learn_tau=True, adjoint=adjoint, dtype=F64)
        w = torch.randn(3, 4, dtype=F64, requires_grad=True)
        x = random_input(steps=60, width=3, scale=2.0)
        out = neuron(x @ w)
        loss = (out * torch.linspace(0, 1, 60, dtype=F64)[:, None, None]).sum()
        params = [w, neuron.log_tau] + ([neuron.alpha_logit, neuron.log_coefficients] if learn else [])
        results.append((out.detach(), torch.autograd.grad(loss, params)))
    (s_a, g_a), (s_b, g_b) = results
    assert torch.equal(s_a, s_b) and s_a.sum() > 10  # 0/1 spike trains
    for a, b in zip(g_a, g_b):
        assert (a - b).abs().max() <= 1e-9 * a.abs().max(), (a, b)


def test_multi_term_orders_and_weights_train():
    torch.manual_seed(0)
    layer = TimeDistributed(nn.Linear(8, 6).double())
    neuron = FractionalLIF(alpha=[0.5, 0.9], coefficients=[1.0, 1.0], learn_alpha=True, learn_coefficients=True,
                           surrogate="arctan", dtype=F64)
    x = torch.rand(40, 16, 8, dtype=F64)
    target = torch.linspace(0.05, 0.6, 6, dtype=F64)  # a firing rate per output neuron
    optimizer = torch.optim.Adam(list(layer.parameters()) + list(neuron.parameters()), lr=0.05)
    start = (neuron.alpha.detach().clone(), neuron.coefficients.detach().clone())
    losses = []
    for _ in range(40):
        loss = ((neuron(layer(x)).mean((0, 1)) - target) ** 2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    assert not torch.allclose(neuron.alpha, start[0]) and not torch.allclose(neuron.coefficients, start[1])


def test_multi_term_arguments_are_checked():
    with pytest.raises(ValueError, match="coefficients must be a list of 2 numbers"):
        FractionalLIF(alpha=[0.3, 0.6], coefficients=[1.0])
    with pytest.raises(ValueError, match="coefficients must be > 0"):
        FractionalLIF(alpha=[0.3, 0.6], coefficients=[1.0, -1.0])
    with pytest.raises(ValueError, match="alpha\\[1\\] must satisfy 0 < alpha\\[1\\] <= 1, got 1.5"):
        FractionalLIF(alpha=[0.3, 1.5])
    with pytest.raises(ValueError, match="go with a list of orders"):
        FractionalLIF(alpha=0.5, coefficients=[1.0])
    with pytest.raises(ValueError, match="learn_alpha=True needs alpha < 1"):
        FractionalLIF(alpha=[0.5, 1.0], learn_alpha=True)
    model = nn.Sequential(LIFNeuron(), LIFNeuron())
    layers = fractionalize(model, alpha=[[0.3, 0.7], 0.8])
    assert layers[0].alpha.tolist() == pytest.approx([0.3, 0.7]) and layers[1].alpha.dim() == 0


def test_state_dicts_from_before_tau_was_stored_as_given_still_load():
    """Checkpoints of 0.1.0 hold a fixed tau as a `log_tau` buffer."""
    neuron = FractionalLIF(alpha=0.7, tau=3.0)
    old = {k: v for k, v in neuron.state_dict().items() if k != "tau_fixed"}
    old["log_tau"] = torch.tensor(math.log(5.0))
    fresh = FractionalLIF(alpha=0.7, tau=3.0)
    fresh.load_state_dict(old)
    assert fresh.tau.item() == pytest.approx(5.0, rel=1e-6)
