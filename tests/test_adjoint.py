import pytest
import torch
from torch import nn

from spikede import FractionalIF, FractionalLIF, TimeDistributed

F64 = torch.float64


def gradients(adjoint, cls=FractionalLIF, **kwargs):
    torch.manual_seed(0)
    x = torch.rand(60, 3, 5, dtype=F64) * 2
    torch.manual_seed(1)
    w = (0.5 + torch.rand(5, dtype=F64)).requires_grad_(True)
    neuron = cls(alpha=0.7, surrogate="gaussian", learn_alpha=True, learn_tau=True, learn_threshold=True,
                 adjoint=adjoint, **kwargs).double()
    out = neuron(x * w)
    loss = (out * torch.linspace(0.5, 1.5, 60, dtype=F64)[:, None, None]).sum()
    return out.detach(), torch.autograd.grad(loss, [w, neuron.alpha_logit, neuron.log_tau, neuron.threshold])


@pytest.mark.parametrize("cls", [FractionalLIF, FractionalIF])
@pytest.mark.parametrize("method", ["gl", "l1"])
@pytest.mark.parametrize("memory", [None, 7])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_neuron_adjoint_equals_autograd(cls, method, memory, reset, detach_reset):
    kwargs = dict(method=method, memory=memory, reset=reset, v_reset=0.2, detach_reset=detach_reset)
    spikes, expected = gradients(False, cls, **kwargs)
    spikes_adj, got = gradients(True, cls, **kwargs)
    assert torch.equal(spikes, spikes_adj) and spikes.sum() > 10
    for name, a, b in zip(("input weight", "alpha", "tau", "threshold"), expected, got):
        assert (a - b).abs().max() <= 1e-9 * a.abs().max(), name


@pytest.mark.parametrize("memory", [None, "soe"])
def test_two_layer_network_adjoint_equals_autograd(memory):
    torch.manual_seed(0)
    x = torch.rand(80, 4, 6, dtype=F64) * 2
    results = []
    for adjoint in (False, True):
        torch.manual_seed(2)
        model = nn.Sequential(
            TimeDistributed(nn.Linear(6, 8)),
            FractionalLIF(alpha=0.6, memory=memory, learn_tau=True, learn_threshold=True, adjoint=adjoint,
                          surrogate="arctan"),
            TimeDistributed(nn.Linear(8, 3)),
            FractionalLIF(alpha=0.8, method="l1", memory=memory, learn_tau=True, learn_threshold=True, adjoint=adjoint),
        ).double()
        xi = x.clone().requires_grad_(True)
        out = model(xi)
        loss = (out.mean(0) ** 2).sum() + out.sum()
        results.append(torch.autograd.grad(loss, [xi, *model.parameters()]))
    for a, b in zip(*results):
        assert (a - b).abs().max() <= 1e-9 * max(a.abs().max(), 1e-12)


def test_adjoint_float32_and_errors():
    x = torch.rand(50, 2, 3, requires_grad=True)
    FractionalLIF(alpha=0.7, adjoint=True)(x).sum().backward()
    assert x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="adjoint=True needs step_mode='multi'"):
        FractionalLIF(adjoint=True, step_mode="single")
    with pytest.raises(ValueError, match="'noisy' surrogate is random"):
        FractionalLIF(adjoint=True, surrogate="noisy")(torch.rand(5, 2, requires_grad=True))
