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
    with pytest.raises(TypeError, match="floating-point"):
        LIFNeuron()(torch.ones(3, 2, dtype=torch.long))


def test_seed_snippet_runs():
    from spikeDE import LIFNeuron as SeedLIF

    neuron = SeedLIF(tau=2.0, threshold=1.0, surrogate="arctan", surrogate_scale=2.0)
    assert neuron.surrogate.name == "arctan" and neuron.surrogate.scale == 2.0
