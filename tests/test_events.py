import pytest
import torch

from spikede import EventParams, Surrogate, apply_events, fire_and_reset

V = torch.tensor([0.4, 1.0, 1.7, -0.2], dtype=torch.float64)


def test_subtract_reset_by_hand():
    s, v = fire_and_reset(V, 1.0)
    assert s.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert torch.allclose(v, torch.tensor([0.4, 0.0, 0.7, -0.2], dtype=torch.float64), rtol=0, atol=1e-15)


def test_zero_reset_by_hand():
    s, v = fire_and_reset(V, 1.0, reset="zero", v_reset=0.3)
    assert s.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert v.tolist() == [0.4, 0.3, 0.3, -0.2]


def test_no_reset_by_hand():
    s, v = fire_and_reset(V, 1.0, reset="none")
    assert s.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert v.tolist() == V.tolist()


def test_tensor_threshold_broadcasts_and_learns():
    v = torch.tensor([[0.5, 0.5], [1.5, 1.5]], dtype=torch.float64)
    theta = torch.tensor([0.4, 1.0], dtype=torch.float64, requires_grad=True)
    s, v_after = fire_and_reset(v, theta, "linear")
    assert s.tolist() == [[1.0, 0.0], [1.0, 1.0]]
    # d(sum v_after)/d theta for subtract: sum over rows of -s + theta * bump(v - theta);
    # the linear bump is 1/2 inside |v - theta| <= 1: column 0 has x = 0.1 (in), 1.1 (out),
    # column 1 has x = -0.5, 0.5 (both in).
    v_after.sum().backward()
    expected = torch.tensor([-2.0 + 0.4 * 0.5, -1.0 + 1.0 * 1.0], dtype=torch.float64)
    assert torch.allclose(theta.grad, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_detach_reset_cuts_reset_gradient(reset):
    v = torch.tensor([0.8, 1.2], dtype=torch.float64, requires_grad=True)
    bump = Surrogate("gaussian").derivative(v.detach() - 1.0)
    _, attached = fire_and_reset(v, 1.0, "gaussian", reset=reset, v_reset=0.0)
    (g_attached,) = torch.autograd.grad(attached.sum(), v)
    _, detached = fire_and_reset(v, 1.0, "gaussian", reset=reset, v_reset=0.0, detach_reset=True)
    (g_detached,) = torch.autograd.grad(detached.sum(), v)
    s = torch.tensor([0.0, 1.0], dtype=torch.float64)
    if reset == "subtract":  # v - theta s: 1 - theta sigma'  vs  1
        assert torch.allclose(g_attached, 1.0 - bump, rtol=0, atol=1e-15)
        assert torch.equal(g_detached, torch.ones(2, dtype=torch.float64))
    else:  # (1 - s) v + s v_reset: (1 - s) - v sigma'  vs  (1 - s)
        assert torch.allclose(g_attached, (1 - s) - v.detach() * bump, rtol=0, atol=1e-15)
        assert torch.equal(g_detached, 1 - s)


def test_spike_output_keeps_gradient_with_detach_reset():
    v = torch.tensor([0.9], dtype=torch.float64, requires_grad=True)
    s, _ = fire_and_reset(v, 1.0, "sigmoid", detach_reset=True)
    (g,) = torch.autograd.grad(s.sum(), v)
    assert g.item() > 0


def test_surrogate_module_and_params_record():
    p = EventParams(reset="zero", v_reset=-0.5)
    s, v = apply_events(V, 1.0, Surrogate("arctan", 2.0), p)
    assert v.tolist() == [0.4, -0.5, -0.5, -0.2]
    with pytest.raises(ValueError, match="surrogate_scale must be None"):
        fire_and_reset(V, 1.0, Surrogate("arctan"), surrogate_scale=2.0)


def test_bad_reset_raises():
    with pytest.raises(ValueError, match="unknown reset 'soft'.*'subtract', 'zero', 'none'"):
        fire_and_reset(V, 1.0, reset="soft")
    with pytest.raises(ValueError, match="unknown reset"):
        EventParams(reset="hard")
