"""Reused CPU buffers (`spikede.solvers.buffers`): a buffer returns only when every tensor on it is
gone, the limit holds, and the compiled layer gives the same results on reused, dirty buffers."""

from __future__ import annotations

import gc

import pytest
import torch

from spikede import FractionalLIF
from spikede.solvers import buffers, native

from .spikes import same_spikes

SIZE = (buffers.MIN_BYTES // 8 + 8,)  # just above the threshold, in float64


@pytest.fixture
def fresh_buffers():
    buffers.release()
    buffers.set_limit(1024)
    yield
    buffers.release()
    buffers.set_limit(1024)


def test_a_freed_buffer_serves_the_next_request_of_its_size(fresh_buffers):
    like = torch.zeros((), dtype=torch.float64)
    first = buffers.empty(SIZE, like)
    assert first.shape == SIZE and first.dtype == torch.float64 and first.is_contiguous()
    address = first.data_ptr()
    del first
    assert buffers.cached_bytes() == SIZE[0] * 8
    second = buffers.empty(SIZE, like)
    assert second.data_ptr() == address and buffers.cached_bytes() == 0
    other = buffers.empty((SIZE[0] + 8,), like)  # another size: a buffer of its own
    assert other.data_ptr() != address


def test_a_view_keeps_its_buffer(fresh_buffers):
    like = torch.zeros((), dtype=torch.float32)
    shape = (2, SIZE[0])
    whole = buffers.empty(shape, like)
    address = whole.data_ptr()
    row = whole[1]
    del whole
    assert buffers.cached_bytes() == 0  # the row still lives on it
    again = buffers.empty(shape, like)
    assert again.data_ptr() != address
    row.fill_(3.0)
    del row
    assert buffers.cached_bytes() == 2 * SIZE[0] * 4
    assert buffers.empty(shape, like).data_ptr() == address


def test_the_limit_and_release(fresh_buffers):
    like = torch.zeros((), dtype=torch.float64)
    buffers.set_limit(0)
    t = buffers.empty(SIZE, like)
    del t
    assert buffers.cached_bytes() == 0
    buffers.set_limit(1024)
    a, b = buffers.empty(SIZE, like), buffers.empty(SIZE, like)
    del a, b
    assert buffers.cached_bytes() == 2 * SIZE[0] * 8
    buffers.set_limit(SIZE[0] * 8 >> 20)  # room for one of them (whole MiB, rounded down: none)
    assert buffers.cached_bytes() <= SIZE[0] * 8
    buffers.release()
    assert buffers.cached_bytes() == 0


def test_small_half_precision_and_bad_limits_are_plain(fresh_buffers):
    small = buffers.empty((4, 4), torch.zeros((), dtype=torch.float64))
    half = buffers.empty((SIZE[0] * 4,), torch.zeros((), dtype=torch.float16))
    del small, half
    assert buffers.cached_bytes() == 0  # neither came from a buffer
    with pytest.raises(ValueError, match="megabytes"):
        buffers.set_limit(-1)
    with pytest.raises(ValueError, match="megabytes"):
        buffers.set_limit(1.5)


def test_the_environment_limit_is_checked(monkeypatch):
    monkeypatch.setenv("SPIKEDE_BUFFER_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="SPIKEDE_BUFFER_CACHE_MB.*'lots'"):
        buffers._limit_from_env()
    monkeypatch.setenv("SPIKEDE_BUFFER_CACHE_MB", "64")
    assert buffers._limit_from_env() == 64 << 20


def test_compiled_layer_on_dirty_reused_buffers_equals_eager(engine_state, fresh_buffers, monkeypatch):
    """Every buffer of the compiled layer reused, filled with NaN before the second run: the same
    spikes and, to 1e-12 relative, the same gradients as the eager loop (a value read before it is
    written would turn them NaN)."""
    monkeypatch.setattr(buffers, "MIN_BYTES", 0)
    x = torch.rand(80, 3, 7, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 1.5

    def run(engine):
        native.set_engine(engine)
        neuron = FractionalLIF(alpha=0.6, tau=0.8, method="l1", reset="zero", memory="soe", learn_tau=True,
                               adjoint=True, record=True, dtype=torch.float64)
        xx = x.clone().requires_grad_()
        spikes = neuron(xx)
        (spikes * torch.linspace(-1, 1, spikes.numel(), dtype=torch.float64).view_as(spikes)).sum().backward()
        return spikes.detach().clone(), neuron.membrane.clone(), xx.grad.clone(), neuron.log_tau.grad.clone()

    run("compiled")
    gc.collect()  # the layer's graph holds its saved buffers in a reference cycle
    assert buffers.cached_bytes() > 0
    for stack in buffers._buffers.free.values():
        for raw in stack:
            raw.fill(0xFF)  # NaN in float32 and float64
    compiled, eager = run("compiled"), run("eager")
    assert same_spikes(compiled[0], eager[0]) and compiled[0].sum() > 20
    for a, b in zip(compiled[1:], eager[1:]):
        scale = b.abs().max().item()
        assert (a - b).abs().max().item() <= 1e-12 * scale
