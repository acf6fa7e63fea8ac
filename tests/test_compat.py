"""`spikede.compat.SNNWrapper`: the reference fractional SNN's calling code, run on spikede.

The calling code below is the reference's README quick start, its per-layer-alpha README
example and the configurations of its `examples/example_per_layer_alpha.py`, written out here
(their models and calls, not their files).
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn

import spikede
from spikeDE import LIFNeuron, SNNWrapper
from spikede import FractionalLIF, fdeint
from spikede.compat import layer_orders

from .spikes import same_spikes


class MySNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 20)
        self.lif1 = LIFNeuron(tau=2.0, threshold=1.0)
        self.fc2 = nn.Linear(20, 5)
        self.lif2 = LIFNeuron(tau=2.0, threshold=1.0)

    def forward(self, x):
        x = self.lif1(self.fc1(x))
        x = self.lif2(self.fc2(x))
        return x


class SimpleSNN(nn.Module):
    """The per-layer example's network: Linear -> BatchNorm1d -> LIF, twice."""

    def __init__(self, input_dim=10, hidden_dim=20, output_dim=10):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.bn1 = nn.BatchNorm1d(hidden_dim)
        self.lif1 = LIFNeuron(tau=2.0, threshold=1.0)
        self.fc2 = nn.Linear(hidden_dim, output_dim)
        self.bn2 = nn.BatchNorm1d(output_dim)
        self.lif2 = LIFNeuron(tau=2.0, threshold=1.0)

    def forward(self, x):
        x = self.lif2(self.bn2(self.fc2(self.lif1(self.bn1(self.fc1(x))))))
        return x


class OneLayer(nn.Module):
    """Linear -> LIFNeuron."""

    def __init__(self, inputs: int, outputs: int, tau: float):
        super().__init__()
        self.fc = nn.Linear(inputs, outputs)
        self.lif = LIFNeuron(tau=tau, threshold=1.0)

    def forward(self, x):
        return self.lif(self.fc(x))


def test_readme_quick_start():
    torch.manual_seed(0)
    model = MySNN()
    net = SNNWrapper(
        base=model,
        integrator='fdeint',
        alpha=0.7,
        method='gl',
        learn_alpha=False
    )
    net._set_neuron_shapes(input_shape=(1, 10))
    time_steps = 50
    batch_size = 4
    x_time = torch.linspace(0, 1, time_steps)
    x_input = torch.randn(time_steps, batch_size, 10)
    output = net(x_input, x_time)
    assert output.shape == (50, 4, 5)
    assert set(output.unique().tolist()) <= {0.0, 1.0}


def test_readme_per_layer_example_learns_its_orders():
    torch.manual_seed(0)
    model = MySNN()
    net = SNNWrapper(
        base=model,
        integrator='fdeint',
        alpha=[0.3, 0.8],
        alpha_mode='per_layer',
        learn_alpha=True
    )
    net._set_neuron_shapes(input_shape=(1, 10))
    assert [round(a.item(), 6) for a in net.get_per_layer_alpha()] == [0.3, 0.8]
    x, x_time = torch.randn(8, 4, 10) * 3, torch.linspace(0, 1, 8)
    net(x, x_time).sum().backward()
    grads = [p.grad for name, p in net.named_parameters() if name.endswith("alpha_logit")]
    assert len(grads) == 2 and all(g is not None and torch.isfinite(g) for g in grads)
    with pytest.raises(ValueError, match=r"x_time must be a 1-D floating-point tensor .*got a torch.int64 tensor "
                                         r"of shape \(8,\)$"):
        net(x, torch.arange(8))


def test_the_basic_training_example_runs_and_trains():
    """The reference's examples/example_basic.py loop (30 Adam steps on random data, per-layer
    alpha learned); its loss on a fixed batch falls."""
    torch.manual_seed(0)
    net = SNNWrapper(MySNN(), integrator='fdeint', alpha=[0.3, 0.7], alpha_mode='per_layer', learn_alpha=True)
    net._set_neuron_shapes(input_shape=(1, 10))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    x = torch.randn(8, 4, 10) * 8  # strong enough that the output layer fires (log 5 otherwise, no gradient)
    x_time = torch.linspace(0, 1, 8)
    target = torch.randint(0, 5, (4,))
    losses = []
    for epoch in range(30):
        output = net(x, x_time, method='gl')
        output = output.mean(0)
        loss = nn.CrossEntropyLoss()(output.squeeze(0), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        alphas = net.get_per_layer_alpha()
        assert len([a.tolist() for a in alphas]) == 2
    assert losses[-1] < 0.8 * losses[0]


def _run(net):
    net._set_neuron_shapes(input_shape=(1, 10))
    x = torch.randn(8, 4, 10)
    x_time = torch.linspace(0, 1, 8)
    return net(x, x_time, method='gl', options={'step_size': 0.1, 'memory': -1})


@pytest.mark.parametrize("case,kwargs,orders", [
    ("A_scalar", dict(alpha=0.5, learn_alpha=False), [[0.5], [0.5]]),
    ("A", dict(alpha=[0.3, 0.7], alpha_mode='per_layer', learn_alpha=[True, False]), [[0.3], [0.7]]),
    ("B", dict(alpha=[0.3, 0.5, 0.7], multi_coefficient=[1.0, 0.5, 0.2], alpha_mode='multiterm', learn_alpha=False,
               learn_coefficient=True), [[0.3, 0.5, 0.7]] * 2),
    ("C", dict(alpha=[[0.3, 0.5], [0.4, 0.6, 0.8]], multi_coefficient=[[1.0, 0.5], [1.0, 0.3, 0.1]],
               learn_alpha=[True, False], learn_coefficient=[True, True]), [[0.3, 0.5], [0.4, 0.6, 0.8]]),
    ("B", dict(alpha=[0.3, 0.5, 0.7], multi_coefficient=[[1.0, 0.5, 0.2], [0.8, 0.3, 0.1]], alpha_mode='multiterm'),
     [[0.3, 0.5, 0.7]] * 2),
    ("B", dict(alpha=[0.3, 0.5, 0.7], multi_coefficient=[1.0, 0.5, 0.2], alpha_mode='auto'), [[0.3, 0.5, 0.7]] * 2),
    ("B", dict(alpha=[0.3, 0.5], multi_coefficient=[[1.0, 0.5], [0.8, 0.3]], alpha_mode='auto'), [[0.3, 0.5]] * 2),
])
def test_the_per_layer_example_configurations(case, kwargs, orders):
    torch.manual_seed(0)
    net = SNNWrapper(SimpleSNN(), integrator='fdeint', **kwargs)
    output = _run(net)
    assert output.shape == (8, 4, 10)
    assert net._alpha_case == case
    got = [[round(v, 6) for v in torch.atleast_1d(p).tolist()] for p in net.per_layer_alpha_params]
    assert got == orders
    learn = kwargs.get("learn_alpha", False)
    learn = learn if isinstance(learn, list) else [learn, learn]
    assert [p.requires_grad for p in net.per_layer_alpha_params] == learn


@pytest.mark.parametrize("alpha,case,message", [([0.3, 0.7], "A", "read as one order per layer"),
                                                ([0.3, 0.5, 0.7], "B", "read as the orders of a multi-term")])
def test_auto_mode_guesses_with_a_warning(alpha, case, message):
    with pytest.warns(UserWarning, match=message):
        net = SNNWrapper(SimpleSNN(), integrator='fdeint', alpha=alpha, alpha_mode='auto')
    assert net._alpha_case == case
    assert _run(net).shape == (8, 4, 10)


def test_the_wrapper_is_the_fractional_neuron_step_by_step():
    """No hidden rule: the wrapper's spikes are those of FractionalLIF layers in multi-step mode
    over the same linear layers (float64: identical 0/1 decisions on these inputs)."""
    torch.manual_seed(1)
    model = MySNN().double()
    with torch.no_grad():
        model.fc2.bias.fill_(3.0)  # a steady drive above threshold: the output layer fires
    net = SNNWrapper(model, integrator='fdeint', alpha=0.6, method='l1')
    x = torch.randn(30, 3, 10, dtype=torch.float64) * 10
    ours = net(x, torch.linspace(0.0, 2.9, 30, dtype=torch.float64))
    kw = dict(alpha=0.6, tau=2.0, threshold=1.0, dt=0.1, method='l1', dtype=torch.float64)
    h = FractionalLIF(**kw)(model.fc1(x))
    direct = FractionalLIF(**kw)(model.fc2(h))
    assert h.sum() > 10 and direct.sum() > 10 and same_spikes(ours.detach(), direct.detach())


def test_multi_term_layer_equals_fdeint():
    """A multi-term layer below threshold integrates sum_j w_j tau D^a_j v = -v + I as fdeint does."""
    class Lone(nn.Module):
        def __init__(self):
            super().__init__()
            self.lif = LIFNeuron(tau=2.0, threshold=1e6, record=True)

        def forward(self, x):
            return self.lif(x)

    net = SNNWrapper(Lone().double(), integrator='fdeint', alpha=[0.4, 0.9], multi_coefficient=[1.0, 0.5],
                     alpha_mode='multiterm')
    current = torch.rand(40, 1, 3, dtype=torch.float64)
    t = torch.linspace(0.0, 3.9, 40, dtype=torch.float64)
    net(current, t)
    neuron = net.neurons[0]
    assert neuron.v is not None
    weights = neuron.coefficients.tolist()

    def rhs(s, v):
        k = min(int(round(float(s) / 0.1)), 39)
        return (-v + current[k, 0]) / 2.0

    grid = torch.linspace(0.0, 4.0, 41, dtype=torch.float64)
    expected = fdeint(rhs, torch.zeros(3, dtype=torch.float64), grid, [0.4, 0.9], method='gl',
                      coefficients=weights)
    assert torch.allclose(neuron.v[0], expected[-1], rtol=0, atol=1e-12)


def test_odeint_keeps_the_integer_order_neurons():
    torch.manual_seed(0)
    model = MySNN()
    net = SNNWrapper(model, integrator='odeint')
    x = torch.randn(12, 2, 10) * 3
    out = net(x, torch.linspace(0.0, 1.1, 12))
    reference = MySNN()
    reference.load_state_dict(model.state_dict())
    reference.lif1.dt = reference.lif2.dt = 0.1
    assert same_spikes(out.detach(), reference(x).detach())  # the same LIF layers, step by step vs multi-step
    assert all(type(n) is LIFNeuron for n in net.neurons)


@pytest.mark.parametrize("call,match", [
    (lambda net, x: net(x, torch.linspace(0, 1, 7)), "x_time has 7 time points but x has 8 steps"),
    (lambda net, x: net(x, torch.tensor([0.0, 0.1, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])), "x_time must be uniform"),
    (lambda net, x: net(x, torch.linspace(0, 1, 8), method='trap'), "method must be one of 'gl', 'l1'"),
    (lambda net, x: net(x, torch.linspace(0, 1, 8), options={'stepsize': 0.1}), "options takes 'step_size'"),
    (lambda net, x: net(x, torch.linspace(0, 1, 8), output_time=torch.linspace(0, 1, 9)), "output_time is not used"),
])
def test_bad_calls_name_the_problem(call, match):
    net = SNNWrapper(MySNN(), integrator='fdeint', alpha=0.5)
    with pytest.raises(ValueError, match=match):
        call(net, torch.randn(8, 2, 10))


@pytest.mark.parametrize("kwargs,match", [
    (dict(integrator='rk4'), "integrator must be one of 'fdeint', 'odeint'"),
    (dict(alpha=[0.3, 0.5, 0.7], alpha_mode='per_layer'), r"needs one order per neuron layer \(2\), got 3"),
    (dict(alpha=0.5, alpha_mode='layers'), "alpha_mode must be one of"),
    (dict(alpha=[[0.3, 0.5]]), r"a nested alpha needs one entry per neuron layer \(2\), got 1"),
    (dict(alpha=[0.3, 0.5], multi_coefficient=[1.0]), "multi_coefficient has 1 weights for 2 orders"),
    (dict(alpha=0.5, learn_alpha=[True]), "learn_alpha must be a bool or a list of 2 bools"),
    (dict(interpolation_method='cubic'), "interpolation_method must be 'linear'"),
])
def test_bad_configurations_name_the_problem(kwargs, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=match):
            SNNWrapper(MySNN(), integrator=kwargs.pop("integrator", 'fdeint'), **kwargs)


def test_layer_orders_is_the_public_parser():
    assert layer_orders([[0.3, 0.5], 0.8], 2) == ("C", [([0.3, 0.5], [1.0, 1.0]), ([0.8], None)])
    assert spikede.SNNWrapper is SNNWrapper


def _reference_by_hand(model: MySNN, x: torch.Tensor, alpha: float, h: float) -> torch.Tensor:
    """The reference's rule written out, layer by layer, for MySNN (tau 2, threshold 1):
    s_k = H(v_k + (I_k - v_k)/tau - theta), v_{k+1} = h^a ((I_k - v_k)/tau - theta s_k/tau)
    - sum_{j=1}^{k+1} g_j v_{k+1-j}, v_0 = 0, g the Grünwald–Letnikov weights."""
    steps = x.shape[0]
    g = [1.0]
    for j in range(1, steps + 2):
        g.append(g[-1] * (1.0 - (1.0 + alpha) / j))
    tau, theta = 2.0, 1.0
    out = []
    v1, v2 = [torch.zeros(x.shape[1], 20, dtype=x.dtype)], [torch.zeros(x.shape[1], 5, dtype=x.dtype)]
    for k in range(steps):
        spikes = []
        for fc, v in ((model.fc1, v1), (model.fc2, v2)):
            current = fc(x[k] if fc is model.fc1 else spikes[-1])
            drive = (current - v[k]) / tau
            s = (v[k] + drive - theta >= 0).to(x.dtype)
            v.append(h**alpha * (drive - theta * s / tau) - sum(g[j] * v[k + 1 - j] for j in range(1, k + 2)))
            spikes.append(s)
        out.append(spikes[-1])
    return torch.stack(out)


def test_reference_rule_equals_a_hand_written_reference():
    torch.manual_seed(3)
    model = MySNN().double()
    with torch.no_grad():
        model.fc2.bias.fill_(1.5)  # the output layer fires
    x = torch.rand(40, 3, 10, dtype=torch.float64) * 4
    net = SNNWrapper(model, integrator='fdeint', alpha=0.7, reference_rule=True)
    with torch.no_grad():
        ours = net(x, torch.linspace(0.0, 3.9, 40, dtype=torch.float64))
        by_hand = _reference_by_hand(model, x, 0.7, 0.1)
    assert by_hand.sum() > 20  # the output layer fires
    assert same_spikes(ours, by_hand)


def test_reference_rule_fires_far_more_than_spikedes():
    """The look-ahead ignores dt: at dt = 0.1 the reference's rule fires many times more."""
    torch.manual_seed(0)
    model = OneLayer(10, 20, tau=2.0).double()
    x = torch.rand(100, 4, 10, dtype=torch.float64) * 3
    t = torch.linspace(0.0, 9.9, 100, dtype=torch.float64)
    with torch.no_grad():
        ours, theirs = (SNNWrapper(model, integrator='fdeint', alpha=0.7, reference_rule=rule)(x, t).sum().item()
                        for rule in (False, True))
    assert theirs > 5 * max(ours, 1.0)


def test_both_rules_coincide_at_order_one_unit_step_and_tau():
    torch.manual_seed(2)
    model = OneLayer(6, 8, tau=1.0).double()
    x = torch.randn(50, 3, 6, dtype=torch.float64) * 2
    t = torch.arange(50, dtype=torch.float64)  # h = 1
    with torch.no_grad():
        ours = SNNWrapper(model, integrator='fdeint', alpha=1.0)(x, t)
        theirs = SNNWrapper(model, integrator='fdeint', alpha=1.0, reference_rule=True)(x, t)
    assert ours.sum() > 50 and same_spikes(ours, theirs)


def test_reference_rule_refuses_other_schemes():
    with pytest.raises(ValueError, match="method='gl' and reset='subtract'"):
        SNNWrapper(MySNN(), integrator='fdeint', alpha=0.7, method='l1', reference_rule=True)
    net = SNNWrapper(MySNN(), integrator='fdeint', alpha=0.7, reference_rule=True)
    with pytest.raises(ValueError, match="reference_rule=True is defined for method='gl'"):
        net(torch.randn(4, 2, 10), torch.linspace(0, 1, 4), method='l1')
