"""The ``spikede`` command line."""

from __future__ import annotations

import argparse
import sys

import torch

from .events import fire_and_reset
from .surrogate import Surrogate, available_surrogates, spike


def _demo(args: argparse.Namespace) -> int:
    x = torch.linspace(-2.0, 2.0, 9, dtype=torch.float64)
    print("Surrogate bumps sigma'(x) (backward of the spike H(x), H(0) = 1):")
    print("x".rjust(12) + "".join(f"{v:9.2f}" for v in x.tolist()))
    for name in available_surrogates():
        xr = x.clone().requires_grad_(True)
        out = spike(xr, name, training=False)
        (grad,) = torch.autograd.grad(out.sum(), xr)
        label = f"{name}({Surrogate(name).scale:g})"
        print(label.rjust(12) + "".join(f"{g:9.4f}" for g in grad.tolist()))

    print("\nEvent layer on a ramp of inputs, threshold 1, reset='subtract':")
    v = torch.zeros((), dtype=torch.float64)
    drive = [0.4, 0.5, 0.3, 0.6, 0.9, 0.1, 0.2]
    for step, i_n in enumerate(drive):
        proposed = v + i_n
        s, v = fire_and_reset(proposed, 1.0, "sigmoid")
        print(f"  step {step}: input {i_n:.1f}  v {proposed.item():.2f}  spike {int(s.item())}  v_after {v.item():.2f}")
    return 0


def _alpha_value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"alpha must be a number in (0, 1], got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"alpha must be in (0, 1], got {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _convergence(args: argparse.Namespace) -> int:
    from .experiments import run

    lines, paths, seconds = run(args.out, args.alphas, args.n0, args.halvings)
    print("\n".join(lines))
    print(f"\nwrote {paths['png']}, {paths['csv']}, {paths['md']} ({seconds:.1f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikede",
        description="Fractional-order differential equations with spiking events, in PyTorch.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="print the surrogate gradients and an event-layer trace")
    demo.set_defaults(handler=_demo)
    conv = sub.add_parser(
        "convergence",
        help="solver-accuracy experiment: error and observed order of every method",
        description="Solve three test problems with every fdeint method at h, h/2, ...; print the "
        "observed orders and write convergence.png/.csv/.md to --out.",
    )
    conv.add_argument("--out", default="spikede-out", help="output folder (default: spikede-out)")
    conv.add_argument(
        "--alphas", type=_alpha_value, nargs="+", default=[0.3, 0.5, 0.7, 0.9], help="orders (default: 0.3 0.5 0.7 0.9)"
    )
    conv.add_argument("--n0", type=_positive_int, default=16, help="coarsest number of steps (default: 16)")
    conv.add_argument("--halvings", type=_positive_int, default=5, help="number of step halvings (default: 5)")
    conv.set_defaults(handler=_convergence)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
