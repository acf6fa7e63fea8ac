"""A batch of fractional AdEx neurons in one call, against pycaputo's AdEx solver for one neuron.

Ours: `--neurons` AdEx neurons with different parameters (a, b, tau_w and the step current drawn
uniformly around the Naud et al. 2008 ranges, seeded), alpha 0.8, explicit L1 with the
sum-of-exponentials memory, `--steps` steps of 0.05 ms, float64, in one `spikede.models.simulate`
call (no state kept but the last; spike times kept).  pycaputo: its L1 integrate-and-fire stepper
for AdEx (`CaputoAdExIntegrateFireL1Model`, full history, fixed step) on one neuron (Naud 4a)
for `--pycaputo-steps` steps.  Printed: wall time, cost per neuron-step, and the ratio
pycaputo / ours per neuron-step, with 1 intra-op thread and with torch's default, measured in
this run.  pycaputo is a test extra (`pip install pycaputo`); without it only our figures print.

`--gradients N STEPS`: instead, the forward and backward pass of N AdEx neurons over STEPS steps
(alpha 0.8, learnable; full history; surrogate spikes; loss = spike count + mean voltage) by
autograd and by the discrete adjoint (`adjoint=True`), each in a fresh process: wall time and
peak resident memory, and the ratios adjoint / autograd.

    python benchmarks/models.py [--neurons 10000] [--steps 10000] [--pycaputo-steps 10000] [--seed 0]
    python benchmarks/models.py --gradients 1000 2000

`--single STEPS`: one AdEx neuron (Naud 'adapting', alpha 0.8, 0.05 ms steps, 1 thread): the cost
per step of an explicit step and of an implicit step with the model's closed-form Jacobian and with
reverse-pass Jacobians, and the ratio of the two implicit costs, measured in this run.

    python benchmarks/models.py --single 4000
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import torch

from spikede.models import AdEx, simulate


def batch(neurons: int, seed: int):
    generator = torch.Generator().manual_seed(seed)

    def uniform(low, high):
        return torch.empty(neurons, dtype=torch.float64).uniform_(low, high, generator=generator)

    model = AdEx(C=uniform(100.0, 200.0), g_L=uniform(10.0, 18.0), a=uniform(-10.0, 4.0), b=uniform(0.0, 120.0),
                 tau_w=uniform(30.0, 300.0), V_reset=uniform(-58.0, -46.0))
    return model, uniform(300.0, 900.0)


def ours(neurons: int, steps: int, seed: int, threads: str) -> tuple[float, int]:
    previous = torch.get_num_threads()
    if threads != "default":
        torch.set_num_threads(int(threads))
    try:
        model, current = batch(neurons, seed)
        t = torch.linspace(0.0, steps * 0.05, steps + 1, dtype=torch.float64)
        simulate(model, t[:50], current=current, alpha=0.8, memory="soe", save_spikes=False)  # warm up
        start = time.perf_counter()
        solution = simulate(model, t, current=current, alpha=0.8, memory="soe", save_spikes=False, save_every=steps)
        return time.perf_counter() - start, int(solution.spike_count.sum())
    finally:
        torch.set_num_threads(previous)


def pycaputo_one_neuron(steps: int) -> tuple[float, int] | None:
    try:
        import numpy as np
        from pycaputo.controller import make_fixed_controller
        from pycaputo.derivatives import CaputoDerivative
        from pycaputo.integrate_fire import ad_ex
        from pycaputo.integrate_fire.base import StepAccepted
        from pycaputo.stepping import evolve
    except ImportError:
        return None
    alpha = 0.8
    model = ad_ex.AdExModel(ad_ex.get_ad_ex_parameters("Naud4a").nondim(alpha))
    step = 0.05 / model.param.ref.T_ref  # 0.05 ms in pycaputo's time unit
    control = make_fixed_controller(step, tstart=0.0, tfinal=steps * step)
    y0 = np.array([model.param.e_leak, 0.0])
    stepper = ad_ex.CaputoAdExIntegrateFireL1Model(ds=(CaputoDerivative(alpha), CaputoDerivative(alpha)),
                                                   control=control, y0=(y0,), source=model)
    start = time.perf_counter()
    spikes = sum(1 for event in evolve(stepper, dtinit=step) if isinstance(event, StepAccepted) and event.spiked)
    return time.perf_counter() - start, spikes


def gradient_child(adjoint: bool, neurons: int, steps: int) -> None:
    """One forward and backward pass; prints `seconds peak_rss_mib`."""
    torch.set_num_threads(1)
    model, current = batch(neurons, 0)
    b = model.b.clone().requires_grad_(True)
    alpha = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    t = torch.linspace(0.0, steps * 0.05, steps + 1, dtype=torch.float64)
    start = time.perf_counter()
    solution = simulate(model.replace(b=b), t, current=current, alpha=alpha, surrogate="sigmoid", surrogate_scale=0.5,
                        adjoint=adjoint)
    (solution.spikes.sum() + solution.y[..., 0].mean()).backward()
    seconds = time.perf_counter() - start
    print(f"{seconds} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}")


def single(steps: int) -> None:
    torch.set_num_threads(1)
    model, current = AdEx.pattern("adapting")
    t = torch.linspace(0.0, steps * 0.05, steps + 1, dtype=torch.float64)
    simulate(model, t[:50], current=current, alpha=0.8, implicit=True)  # warm up

    def cost(**options) -> float:
        start = time.perf_counter()
        simulate(model, t, current=current, alpha=0.8, save_spikes=False, **options)
        return (time.perf_counter() - start) / steps * 1e6

    explicit, closed = cost(), cost(implicit=True)
    own = AdEx.jacobian
    AdEx.jacobian = None  # Newton falls back to C reverse passes per iteration
    try:
        reverse = cost(implicit=True)
    finally:
        AdEx.jacobian = own
    print(f"one AdEx neuron, {steps} steps: explicit {explicit:.0f} us/step; implicit, closed-form Jacobian "
          f"{closed:.0f} us/step; implicit, reverse-pass Jacobian {reverse:.0f} us/step ({reverse / closed:.2f}x)")


def gradients(neurons: int, steps: int) -> None:
    figures = {}
    for adjoint in (False, True):
        out = subprocess.run([sys.executable, __file__, "--gradient-child", str(int(adjoint)), str(neurons), str(steps)],
                             capture_output=True, text=True, check=True).stdout.split()
        figures[adjoint] = float(out[0]), float(out[1])
        print(f"{'adjoint ' if adjoint else 'autograd'}: {neurons} AdEx x {steps} steps, forward+backward "
              f"{figures[adjoint][0]:.2f} s, peak RSS {figures[adjoint][1]:.0f} MiB")
    print(f"adjoint / autograd: time {figures[True][0] / figures[False][0]:.2f}x, "
          f"peak RSS {figures[True][1] / figures[False][1]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neurons", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--pycaputo-steps", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gradients", type=int, nargs=2, metavar=("NEURONS", "STEPS"))
    parser.add_argument("--gradient-child", type=int, nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--single", type=int, metavar="STEPS")
    args = parser.parse_args()
    if args.single:
        single(args.single)
        return
    if args.gradient_child:
        gradient_child(bool(args.gradient_child[0]), *args.gradient_child[1:])
        return
    if args.gradients:
        gradients(*args.gradients)
        return

    reference = pycaputo_one_neuron(args.pycaputo_steps)
    if reference is None:
        print("pycaputo is not installed (pip install pycaputo): only spikede's figures are printed")
    else:
        seconds, spikes = reference
        per_step = seconds / args.pycaputo_steps
        print(f"pycaputo AdEx L1, 1 neuron x {args.pycaputo_steps} steps: {seconds:.2f} s, {spikes} spikes, "
              f"{per_step * 1e9:,.0f} ns per neuron-step")
    for threads in ("1", "default"):
        seconds, spikes = ours(args.neurons, args.steps, args.seed, threads)
        per = seconds / (args.neurons * args.steps)
        line = (f"spikede AdEx soe, {args.neurons} neurons x {args.steps} steps, threads={threads}: {seconds:.2f} s, "
                f"{spikes} spikes, {per * 1e9:.1f} ns per neuron-step")
        if reference is not None:
            line += f", {per_step / per:,.0f}x cheaper than pycaputo"
        print(line)


if __name__ == "__main__":
    main()
