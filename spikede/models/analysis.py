r"""Spike-train statistics for the model examples: ISIs, latency, adaptation, f–I curves, firing patterns.

Each statistic takes the spike times of one neuron (a 1-D tensor, e.g.
`solution.times_of(i)`) and returns a Python float (`nan` where it is undefined, e.g. the
mean ISI of fewer than two spikes).
"""

from __future__ import annotations

import math

import torch

from .base import NeuronModel, simulate

__all__ = [
    "interspike_intervals", "isi_statistics", "first_spike_latency", "adaptation_index", "firing_rate", "fi_curve",
    "classify_firing", "INITIATION_CLASSES", "STEADY_CLASSES",
]


def _times(spike_times: torch.Tensor) -> torch.Tensor:
    if not isinstance(spike_times, torch.Tensor) or spike_times.dim() != 1:
        raise TypeError(f"spike_times must be a 1-D tensor of one neuron's spike times, got {spike_times!r}")
    return spike_times.detach().to(torch.float64)


def interspike_intervals(spike_times: torch.Tensor) -> torch.Tensor:
    """The intervals between consecutive spikes, `[K - 1]`."""
    return torch.diff(_times(spike_times))


def isi_statistics(spike_times: torch.Tensor) -> dict[str, float]:
    """Mean, standard deviation and coefficient of variation (std / mean) of the ISIs."""
    isi = interspike_intervals(spike_times)
    if isi.numel() == 0:
        return {"mean": math.nan, "std": math.nan, "cv": math.nan}
    mean = float(isi.mean())
    std = float(isi.std(unbiased=False))
    return {"mean": mean, "std": std, "cv": std / mean}


def first_spike_latency(spike_times: torch.Tensor, onset: float = 0.0) -> float:
    """Time from the stimulus `onset` to the first spike (`nan` without a spike)."""
    times = _times(spike_times)
    after = times[times >= onset]
    return float(after[0] - onset) if after.numel() else math.nan


def adaptation_index(spike_times: torch.Tensor, skip: int = 4) -> float:
    r"""The adaptation index of Naud et al. (2008): the mean relative change of consecutive ISIs.

    With the intervals $\mathrm{ISI}_1, \dots, \mathrm{ISI}_M$ and the first $k$ = `skip` left out
    (the transient),

    $$
    A = \frac{1}{M - k - 1} \sum_{i=k+1}^{M-1}
        \frac{\mathrm{ISI}_{i+1} - \mathrm{ISI}_i}{\mathrm{ISI}_{i+1} + \mathrm{ISI}_i}.
    $$

    Positive: the neuron slows down (adaptation); negative: it accelerates; near 0: tonic.
    `nan` with fewer than `skip + 2` ISIs.
    """
    if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
        raise ValueError(f"skip must be an int >= 0, got {skip!r}")
    isi = interspike_intervals(spike_times)[skip:]
    if isi.numel() < 2:
        return math.nan
    return _mean_relative_change(isi)


def _mean_relative_change(isi: torch.Tensor) -> float:
    """The mean of `(ISI_{i+1} - ISI_i) / (ISI_{i+1} + ISI_i)` (the adaptation index's sum)."""
    return float(((isi[1:] - isi[:-1]) / (isi[1:] + isi[:-1])).mean())


def firing_rate(spike_times: torch.Tensor, duration: float, onset: float = 0.0) -> float:
    """Spikes per unit time in `[onset, onset + duration]` (per ms for the models in ms: x 1000 for Hz)."""
    if not duration > 0:
        raise ValueError(f"duration must be > 0, got {duration!r}")
    times = _times(spike_times)
    return float(((times >= onset) & (times <= onset + duration)).sum()) / duration


def fi_curve(model: NeuronModel, currents: torch.Tensor, t: torch.Tensor, *, alpha=1.0,
             transient: float = 0.0, **options) -> torch.Tensor:
    """Firing rate (spikes per unit of `t`) against a constant input current, one batched solve.

    `currents` is a 1-D tensor; the model's parameters must be scalars (or broadcast against
    `currents[:, None]` if batched).  Spikes before `t[0] + transient` are not counted.  Further
    `options` go to [simulate][spikede.models.base.simulate].
    """
    if not isinstance(currents, torch.Tensor) or currents.dim() != 1:
        raise TypeError(f"currents must be a 1-D tensor, got {currents!r}")
    start = float(t[0]) + transient
    duration = float(t[-1]) - start
    if not duration > 0:
        raise ValueError(f"transient={transient!r} leaves no time to count spikes in t = [{float(t[0])}, "
                         f"{float(t[-1])}]")
    solution = simulate(model, t, current=currents.to(t.dtype), alpha=alpha, save_every=t.numel() - 1,
                        save_spikes=False, **options)
    counted = solution.spike_times.detach() >= start
    index = solution.spike_index[counted]
    counts = torch.zeros(solution.batch_shape, dtype=torch.float64, device=currents.device)
    counts.index_put_(tuple(index.unbind(1)), torch.ones(index.shape[0], dtype=torch.float64,
                                                         device=currents.device), accumulate=True)
    return counts / duration


INITIATION_CLASSES = ("tonic", "initial_burst", "delayed")
STEADY_CLASSES = ("silent", "transient", "tonic", "adapting", "accelerating", "bursting", "irregular")


def classify_firing(spike_times: torch.Tensor, duration: float, onset: float = 0.0) -> tuple[str, str]:
    """Name the response to a current step as `(initiation, steady_state)`, the two-part
    electrophysiological taxonomy that Naud et al. (2008) use for the AdEx patterns.

    The rules (ISIs measured after `onset`; the thresholds are this library's choice):

    - no spike: `('silent', 'silent')`; spiking that ends in the first half of the step (fewer
      than 3 spikes, or the last one before `onset + duration / 2`): steady state `'transient'`;
    - initiation `'initial_burst'`: one of the first three ISIs is followed by one over 3 times
      longer, and the ISIs from there on have a CV below 0.25; `'delayed'`: the first-spike
      latency exceeds twice the mean ISI; else `'tonic'`;
    - steady state (over the ISIs after an initial burst, else all of them): `'bursting'` when at
      least two ISIs exceed 3 times the median and long and short ones alternate more than twice;
      `'irregular'` when the later half of the ISIs has a CV above 0.25; `'adapting'` /
      `'accelerating'` when the adaptation index (no ISI skipped) is above 0.05 / below -0.05 or
      the last ISI is 1.5 times longer / shorter than the first; else `'tonic'`.
    """
    if not duration > 0:
        raise ValueError(f"duration must be > 0, got {duration!r}")
    times = _times(spike_times)
    times = times[times >= onset]
    if times.numel() == 0:
        return "silent", "silent"
    isi = torch.diff(times)
    initiation, start = "tonic", 0
    jumps = [i for i in range(min(3, isi.numel() - 1)) if float(isi[i + 1]) > 3.0 * float(isi[i])]
    if jumps and isi.numel() - jumps[0] - 1 >= 3 and _cv(isi[jumps[0] + 1:]) < 0.25:
        initiation, start = "initial_burst", jumps[0] + 1
    elif isi.numel() and float(times[0]) - onset > 2.0 * float(isi.mean()):
        initiation = "delayed"
    if times.numel() < 3 or float(times[-1]) < onset + duration / 2:
        return initiation, "transient"
    return initiation, _steady_state(isi[start:])


def _cv(isi: torch.Tensor) -> float:
    return float(isi.std(unbiased=False) / isi.mean())


def _steady_state(isi: torch.Tensor) -> str:
    long = isi > 3.0 * float(isi.median())
    if int(long.sum()) >= 2 and int((long[1:] != long[:-1]).sum()) > 2:
        return "bursting"
    later = isi[isi.numel() // 2:]
    if later.numel() >= 3 and _cv(later) > 0.25:
        return "irregular"
    if isi.numel() < 2:
        return "tonic"
    index = _mean_relative_change(isi)
    ratio = float(isi[-1] / isi[0])
    if index > 0.05 or ratio > 1.5:
        return "adapting"
    if index < -0.05 or ratio < 1 / 1.5:
        return "accelerating"
    return "tonic"
