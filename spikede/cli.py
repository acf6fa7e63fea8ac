"""The `spikede` command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

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


def _number(cast, check=None, rule: str = ""):
    """An argparse type: `cast(text)`, then `check(value)`; `rule` says what is allowed."""
    rule = rule or ("a number" if cast is float else "an integer")

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}") from None
        if check is not None and not check(value):
            raise argparse.ArgumentTypeError(f"expected {rule}, got {value}")
        return value

    return parse


_alpha_value = _number(float, lambda v: 0.0 < v <= 1.0, "alpha in (0, 1]")
_order_value = _number(float, lambda v: 0.0 < v <= 2.0, "alpha in (0, 2]")
_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_float_value = _number(float)
_int_value = _number(int)


def _convergence(args: argparse.Namespace) -> int:
    from .experiments import run

    lines, paths, seconds = run(args.out, args.alphas, args.n0, args.halvings)
    print("\n".join(lines))
    print(f"\nwrote {paths['png']}, {paths['csv']}, {paths['md']} ({seconds:.1f} s)")
    return 0


_window = _number(int, lambda v: v >= 1, "'full', 'soe' or a positive window of lags")


def _memory_value(text: str):
    if text in ("none", "full"):
        return None
    return "soe" if text == "soe" else _window(text)


def _train_config(args: argparse.Namespace):
    from .training import TrainConfig

    return TrainConfig(
        dataset=args.dataset, data_dir=args.data_dir, model=args.model, encoding=args.encoding, timesteps=args.timesteps,
        hidden=args.hidden, alpha=list(args.alpha), learn_alpha=args.learn_alpha, method=args.method,
        memory=args.memory, adjoint=args.adjoint, surrogate=args.surrogate, surrogate_scale=args.surrogate_scale, tau=args.tau,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
        out=args.out, limit=args.limit,
    )


def _summary_line(summary: dict) -> str:
    alphas = ", ".join(f"{a:.4f}" for a in summary["alphas"])
    return (f"test accuracy {summary['test_acc']:.4f} | mean hidden firing rate {summary['firing_rate']:.4f} "
            f"| alphas {alphas}")


def _train(args: argparse.Namespace) -> int:
    from .training import train

    config = _train_config(args)
    if not args.compare_alpha:
        if args.seeds is not None:
            raise ValueError("--seeds goes with --compare-alpha (a single run takes --seed)")
        summary = train(config, resume=args.resume)
        if summary:
            print(_summary_line(summary))
            print(f"outputs in {config.out}: {', '.join(summary['files'])}")
        return 0
    from .compare import compare_alphas, table_lines

    if args.resume:
        raise ValueError("--resume cannot be combined with --compare-alpha")
    rows = compare_alphas(config, args.compare_alpha, 3 if args.seeds is None else args.seeds)
    if rows:
        print("\n" + "\n".join(table_lines(rows)))
        print(f"outputs in {config.out}: compare.csv, compare.json, compare.png and one folder per alpha and seed")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .training import CHECKPOINT, evaluate_checkpoint

    path = Path(args.checkpoint)
    if path.is_dir():
        path = path / CHECKPOINT
    result = evaluate_checkpoint(path, device=args.device)
    print(f"{path} (epoch {result['epoch']}): " + _summary_line(result))
    return 0


class _Parser(argparse.ArgumentParser):
    """Errors in one line that names the option (no usage dump); `--help` shows the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="spikede",
        description="Fractional-order differential equations with spiking events, in PyTorch.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
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
        "--alphas", type=_order_value, nargs="+", default=[0.3, 0.5, 0.7, 0.9],
        help="orders in (0, 2] (default: 0.3 0.5 0.7 0.9); above 1 only the methods that take them run, with y'(0) = 0"
    )
    conv.add_argument("--n0", type=_positive_int, default=16, help="coarsest number of steps (default: 16)")
    conv.add_argument("--halvings", type=_positive_int, default=5, help="number of step halvings (default: 5)")
    conv.set_defaults(handler=_convergence)

    from .data import DATASETS, ENCODINGS
    from .training import MODELS
    from .neurons import NEURON_METHODS
    from .surrogate import available_surrogates

    tr = sub.add_parser(
        "train",
        help="train a fractional spiking network (default: scikit-learn digits, offline)",
        description="Train Linear -> FractionalLIF -> Linear -> FractionalLIF on spike-encoded images and "
        "report test accuracy. Under torchrun it uses DistributedDataParallel.",
    )
    tr.add_argument("--dataset", default="digits", help=f"one of {', '.join(DATASETS)} (default: digits)")
    tr.add_argument("--data-dir", default=None,
                    help="folder with the Fashion-MNIST IDX files, or (--dataset events) with train/ and test/ event streams")
    tr.add_argument("--model", default="mlp", choices=MODELS,
                    help="mlp: Linear -> spiking -> Linear -> spiking; conv: two Conv-BatchNorm-spiking blocks "
                         "with pooling, then Linear -> spiking (default: mlp)")
    tr.add_argument("--encoding", default="rate", choices=ENCODINGS, help="rate: Bernoulli spikes; rows: rows as steps")
    tr.add_argument("--timesteps", type=_int_value, default=16, help="time steps of the rate code (default: 16)")
    tr.add_argument("--hidden", type=_int_value, default=128, help="hidden neurons (default: 128)")
    tr.add_argument("--alpha", type=_float_value, nargs="+", default=[0.8], help="order, one or one per layer (default: 0.8)")
    tr.add_argument("--learn-alpha", action="store_true", help="learn the orders")
    tr.add_argument("--method", default="gl", choices=NEURON_METHODS, help="neuron scheme (default: gl)")
    tr.add_argument("--memory", type=_memory_value, default=None, help="full (default), soe, or a window of lags")
    tr.add_argument("--adjoint", action=argparse.BooleanOptionalAction, default=None,
                    help="train the fractional layers through the discrete adjoint (default: wherever it applies); "
                         "--no-adjoint: plain autograd")
    tr.add_argument("--surrogate", default="sigmoid", choices=available_surrogates(), help="surrogate (default: sigmoid)")
    tr.add_argument("--surrogate-scale", type=_float_value, default=None, help="surrogate hyper-parameter")
    tr.add_argument("--tau", type=_float_value, default=2.0, help="membrane time constant (default: 2)")
    tr.add_argument("--epochs", type=_int_value, default=15, help="epochs (default: 15)")
    tr.add_argument("--batch-size", type=_int_value, default=32, help="global batch size (default: 32)")
    tr.add_argument("--lr", type=_float_value, default=5e-3, help="Adam learning rate (default: 5e-3)")
    tr.add_argument("--seed", type=_int_value, default=0, help="seed of weights, data order and encodings")
    tr.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    tr.add_argument("--out", default="spikede-out/train", help="output folder (default: spikede-out/train)")
    tr.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    tr.add_argument("--compare-alpha", type=_alpha_value, nargs="+", default=None, metavar="ALPHA",
                    help="train once per alpha and seed; print mean +- std per alpha and write compare.png")
    tr.add_argument("--seeds", type=_positive_int, default=None,
                    help="with --compare-alpha: seeds per alpha, from --seed on (default: 3)")
    tr.add_argument("--limit", type=_int_value, default=None, help="use only the first N training samples")
    tr.set_defaults(handler=_train)

    ev = sub.add_parser("evaluate", help="test accuracy of a checkpoint written by spikede train")
    ev.add_argument("checkpoint", help="checkpoint.pt, or the folder spikede train wrote it to")
    ev.add_argument("--device", default="cpu")
    ev.set_defaults(handler=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .data import DataError
    from .training import CheckpointError, Interrupted

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except Interrupted as stop:
        print(f"spikede: {stop}", file=sys.stderr)
        return 130
    except (ValueError, TypeError, CheckpointError, DataError, OSError) as err:
        print(f"spikede: error: {err}", file=sys.stderr)
        return 2


def run() -> None:
    """The `spikede` command: `main()`, then the process's exit with its code.

    A process started by torchrun (`WORLD_SIZE` > 1) leaves with `os._exit` once its output is
    flushed: the collective library's threads can abort the process in C++ teardown after
    training finished (rank 1 of the gloo run of `tests/test_training.py` died with "terminate
    called without an active exception" in 2 of 23 runs on a loaded 2-core machine, after
    `destroy_process_group`, with every output written)."""
    code = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
