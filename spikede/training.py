"""Training fractional spiking networks: the model, the loop, checkpoints and scale-out.

`train(config)` is what `spikede train` runs.  Data order and input encodings are
functions of `(seed, epoch, sample index)`, checkpoints hold everything the loop needs
(model, optimizer, epoch, batch position, metrics), and a resumed or interrupted run
therefore ends with exactly the weights of an uninterrupted one.  Under `torchrun` the
loop runs with `torch.distributed` (gloo on CPU, nccl on CUDA), DistributedDataParallel
and each global batch split between the processes (`epoch_batches`), so that two processes train
the same weights as one; rank 0 alone writes files and shows progress.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from .data import Dataset, encode, load_dataset
from .network import TimeDistributed
from .neurons import FractionalLIF, LIFNeuron, SpikingNeuron
from .solvers.engine import step_threads

__all__ = ["TrainConfig", "SpikingMLP", "SpikingConvNet", "MODELS", "build_model", "train", "evaluate_checkpoint", "load_checkpoint",
           "epoch_batches", "CheckpointError", "Interrupted"]

CHECKPOINT = "checkpoint.pt"


class CheckpointError(ValueError):
    """A checkpoint cannot be loaded (corrupt, unsafe or incompatible); the message says why."""


class Interrupted(RuntimeError):
    """Training stopped on SIGINT after saving a checkpoint."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in every checkpoint)."""

    dataset: str = "digits"
    data_dir: str | None = None
    model: str = "mlp"
    encoding: str = "rate"
    timesteps: int = 16
    hidden: int = 128
    alpha: list[float] = field(default_factory=lambda: [0.8])
    learn_alpha: bool = False
    method: str = "gl"
    memory: int | str | None = None
    adjoint: bool | None = None
    surrogate: str = "sigmoid"
    surrogate_scale: float | None = None
    tau: float = 2.0
    epochs: int = 15
    batch_size: int = 32
    lr: float = 5e-3
    seed: int = 0
    device: str = "cpu"
    out: str = "spikede-out/train"
    limit: int | None = None  # use only the first N training samples (quick runs, tests)

    def layer_alphas(self) -> list[float]:
        return self.alpha * 2 if len(self.alpha) == 1 else list(self.alpha)

    def validate(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"--model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.dataset == "events" and self.encoding != "rate":
            raise ValueError("--dataset events gives spike trains already: --encoding does not apply (leave it rate)")
        if self.model == "conv" and self.encoding != "rate":
            raise ValueError("--model conv takes images: use --encoding rate (rows feeds an image's rows as steps)")
        if len(self.alpha) not in (1, 2):
            raise ValueError(f"--alpha takes one value or one per layer (2: the hidden and the output layers), "
                             f"got {len(self.alpha)}")
        for a in self.alpha:
            if not 0.0 < a <= 1.0:
                raise ValueError(f"--alpha must be in (0, 1], got {a}")
        if self.learn_alpha and any(a >= 1.0 for a in self.alpha):
            raise ValueError("--learn-alpha needs alpha < 1 (it is learned as sigmoid(a))")
        for name in ("epochs",):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must be >= 0, got {getattr(self, name)}")
        for name in ("timesteps", "hidden", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "tau"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"--{name} must be a finite number > 0, got {value}")
        if self.surrogate_scale is not None and not (self.surrogate_scale > 0 and math.isfinite(self.surrogate_scale)):
            raise ValueError(f"--surrogate-scale must be a finite number > 0, got {self.surrogate_scale}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {self.limit}")
        check_device(self.device)


def check_device(name: str) -> torch.device:
    """`torch.device(name)` if this machine has it, else a ValueError that says why."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r} is not a torch device (e.g. 'cpu', 'cuda', 'cuda:1')") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name!r}: CUDA is not available on this machine; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"--device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


class SpikingMLP(nn.Module):
    """Linear -> spiking layer -> Linear -> spiking layer; the output is the spike train `[T, B, classes]`.

    A layer with `alpha = 1` (and nothing learned about alpha) is a `LIFNeuron`,
    otherwise a `FractionalLIF`.
    """

    def __init__(self, in_features: int, hidden: int, classes: int, config: TrainConfig):
        super().__init__()
        layers = []
        for width_in, width_out, alpha in zip((in_features, hidden), (hidden, classes), config.layer_alphas()):
            layers += [TimeDistributed(nn.Linear(width_in, width_out)), _spiking_layer(config, alpha)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def alphas(self) -> list[float]:
        return _alphas(self)

    def hidden_spikes(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes of the hidden layer `[T, B, hidden]` (for rasters and firing rates)."""
        return self.layers[1](self.layers[0](x))


def _alphas(model: nn.Module) -> list[float]:
    """The order of every spiking layer of `model`, in order (1.0 for an integer-order one)."""
    return [m.alpha.item() if isinstance(m, FractionalLIF) else 1.0
            for m in model.modules() if isinstance(m, (FractionalLIF, LIFNeuron))]


def _spiking_layer(config: TrainConfig, alpha: float) -> nn.Module:
    """A `LIFNeuron` for `alpha = 1` (nothing learned about alpha), else a `FractionalLIF`."""
    common = dict(tau=config.tau, surrogate=config.surrogate, surrogate_scale=config.surrogate_scale)
    if alpha == 1.0 and not config.learn_alpha:
        return LIFNeuron(**common)
    return FractionalLIF(alpha=alpha, method=config.method, memory=config.memory, learn_alpha=config.learn_alpha,
                         adjoint=config.adjoint, **common)


class SpikingConvNet(nn.Module):
    """Two Conv-BatchNorm-spiking blocks with 2x2 average pooling, then Linear -> spiking layer.

    Input `[T, B, C * H * W]` (rate-coded images, `C = 1`, or event frames), output the spike
    train `[T, B, classes]`.  The convolutions have `hidden / 8` and `hidden / 4` channels (16
    and 32 for the default 128);
    both conv blocks take the first order of `--alpha`, the output layer the last.  Each
    stateless layer sees every step at once (`TimeDistributed` folds time into the batch).
    """

    def __init__(self, image_shape: tuple[int, int], hidden: int, classes: int, config: TrainConfig,
                 channels: int = 1):
        super().__init__()
        self.image_shape, self.channels = image_shape, channels
        first, second = max(1, hidden // 8), max(1, hidden // 4)
        hidden_alpha, output_alpha = config.layer_alphas()
        height, width = image_shape
        pooled = (height // 4) * (width // 4)
        if pooled == 0:
            raise ValueError(f"--model conv needs images of at least 4x4 pixels, got {height}x{width}")
        self.features = nn.Sequential(
            TimeDistributed(nn.Conv2d(channels, first, 3, padding=1, bias=False)), TimeDistributed(nn.BatchNorm2d(first)),
            _spiking_layer(config, hidden_alpha), TimeDistributed(nn.AvgPool2d(2)),
            TimeDistributed(nn.Conv2d(first, second, 3, padding=1, bias=False)), TimeDistributed(nn.BatchNorm2d(second)),
            _spiking_layer(config, hidden_alpha), TimeDistributed(nn.AvgPool2d(2)),
        )
        self.classifier = nn.Sequential(TimeDistributed(nn.Linear(second * pooled, classes)),
                                        _spiking_layer(config, output_alpha))

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], x.shape[1], self.channels, *self.image_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(self._images(x))
        return self.classifier(features.flatten(2))

    def alphas(self) -> list[float]:
        return _alphas(self)

    def hidden_spikes(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes of the first spiking layer, flattened `[T, B, channels * H * W]`."""
        return self.features[:3](self._images(x)).flatten(2)


MODELS = ("mlp", "conv")


def build_model(config: TrainConfig, data: Dataset) -> nn.Module:
    height, width = data.image_shape
    torch.manual_seed(config.seed)
    if config.model == "conv":
        return SpikingConvNet((height, width), config.hidden, data.n_classes, config, data.channels)
    in_features = width if config.encoding == "rows" else data.channels * height * width
    return SpikingMLP(in_features, config.hidden, data.n_classes, config)


def _steps(config: TrainConfig, data: Dataset) -> int:
    if data.is_events:
        return data.x_train.shape[1]
    return data.image_shape[0] if config.encoding == "rows" else config.timesteps


RATE_SCALE = 10.0  # logits = RATE_SCALE * output firing rate


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return RATE_SCALE * model(x).mean(0)


TEST_EPOCH_KEY = -1  # the test set's encoding noise is fixed (it does not change with the epoch)


@torch.no_grad()
def evaluate(model: nn.Module, config: TrainConfig, data: Dataset, batch_size: int = 256) -> tuple[float, float]:
    """`(accuracy, mean hidden firing rate)` on the test split, deterministic."""
    model.eval()
    core = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    correct, rate, count = 0, 0.0, 0
    steps = _steps(config, data)
    for start in range(0, len(data.x_test), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data.x_test)))
        x = encode(data.x_test[idx], idx, config.encoding, steps, config.seed, TEST_EPOCH_KEY).to(config.device)
        with step_threads(x):
            correct += (_logits(core, x).argmax(1).cpu() == data.y_test[idx]).sum().item()
            rate += core.hidden_spikes(x).mean().item() * len(idx)
        count += len(idx)
    model.train()
    return correct / count, rate / count


def _atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint as data only (`weights_only=True`); raise `CheckpointError` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file, or a pickle that is more than data
        found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", str(err))
        reason = f"it holds code ({found.group(1)}), not only data" if found else "it is not a valid torch checkpoint"
        raise CheckpointError(f"checkpoint {path} refused: {reason}; only tensors and plain data are loaded") from None
    if not isinstance(state, dict) or state.get("format") != "spikede-train-1":
        raise CheckpointError(f"{path} is not a spikede training checkpoint (format 'spikede-train-1')")
    return state


def _checkpoint(model, optimizer, config, epoch, batch, metrics, alpha_history) -> dict:
    core = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    return {
        "format": "spikede-train-1",
        "config": asdict(config),
        "model": core.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "batch": batch,
        "metrics": metrics,
        "alpha_history": alpha_history,
    }


def _start_process_group() -> bool:
    """Initialise the process group under torchrun (`WORLD_SIZE` > 1) unless the caller has;
    `True` if this call did, and so owns its teardown."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1 or dist.is_initialized():
        return False
    backend = "nccl" if torch.cuda.is_available() and os.environ.get("SPIKEDE_BACKEND") != "gloo" else "gloo"
    dist.init_process_group(backend)
    return True


def epoch_batches(n_samples: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1):
    """The samples of each batch that process `rank` of `world` trains on in `epoch`.

    One global order (a permutation seeded by `seed + epoch`) is cut into global batches of
    `batch_size`, the last one shorter; each global batch is then split into `world`
    contiguous parts (sizes differing by at most one).  Every process therefore sees its
    share of exactly the batches a single process would train on, and no sample is
    repeated to even out the last batch.
    """
    generator = torch.Generator()
    generator.manual_seed(seed + epoch)
    order = torch.randperm(n_samples, generator=generator)
    return [batch.tensor_split(world)[rank] for batch in order.split(batch_size)]


class _SpikeCounter:
    """Counts the spikes of every spiking layer while training (forward hooks, no device sync)."""

    def __init__(self, model: nn.Module):
        self.layers = [(name, m) for name, m in model.named_modules() if isinstance(m, SpikingNeuron)]
        self.counts = None
        self._handles = [m.register_forward_hook(self._hook(i)) for i, (_, m) in enumerate(self.layers)]

    def _hook(self, index: int):
        def count(module, inputs, output):
            if module.training:
                spikes = output[0] if isinstance(output, tuple) else output
                self.counts[index] += spikes.detach().sum().to(self.counts.dtype)

        return count

    def start(self, device) -> None:
        self.counts = torch.zeros(len(self.layers), dtype=torch.float64, device=device)

    def silent(self, world: int) -> list[str]:
        """Names of the layers that fired no spike since `start` (summed over all processes)."""
        if world > 1:
            dist.all_reduce(self.counts)
        return [f"{name} ({type(m).__name__})" for (name, m), c in zip(self.layers, self.counts.tolist()) if c == 0]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


SILENT_ADVICE = ("no spike means no forward signal, and the surrogate gradient only reaches potentials near the "
                 "threshold: lower --tau (the potential follows its input faster), use a broader surrogate "
                 "(e.g. --surrogate arctan or a larger --surrogate-scale), or raise --lr")


def _warn(message: str) -> None:
    print(f"spikede: warning: {message}", file=sys.stderr, flush=True)


def train(config: TrainConfig, resume: bool = False, log=print, warn=_warn) -> dict:
    """Train, writing checkpoints, metrics and plots to `config.out` (rank 0); return the summary.

    The summary holds the test accuracy, firing rate and alphas, and `files`: the names of the
    files written to `config.out`.  Under torchrun the gradients, the printed loss and the
    accuracy are those of the whole global batch (see `epoch_batches`): two processes train
    the same weights as one.  `warn(message)` is told of every spiking layer that stayed
    silent for a whole epoch.
    """
    config.validate()
    owned = _start_process_group()
    try:
        rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        return _train(config, resume, log, warn, rank, world)
    finally:
        # A process that exits with the group alive can abort (SIGABRT) in the collective
        # library's teardown while the interpreter shuts down; close it while all is alive.
        if owned:
            dist.destroy_process_group()


def _train(config: TrainConfig, resume: bool, log, warn, rank: int, world: int) -> dict:
    from tqdm import tqdm

    out = Path(config.out)
    state = None
    if resume:
        state = load_checkpoint(out / CHECKPOINT)
        saved = TrainConfig(**state["config"])
        saved.epochs, saved.out, saved.device = config.epochs, config.out, config.device
        config = saved
    data = load_dataset(config.dataset, config.data_dir, config.timesteps)
    if config.limit is not None:
        data = Dataset(data.name, data.x_train[: config.limit], data.y_train[: config.limit], data.x_test, data.y_test)
    model = build_model(config, data).to(config.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    metrics, alpha_history, start_epoch, start_batch = [], [model.alphas()], 0, 0
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(f"checkpoint does not match the model: {str(err).splitlines()[0]}") from None
        metrics, alpha_history = state["metrics"], state["alpha_history"]
        start_epoch, start_batch = state["epoch"], state["batch"]
    counter = _SpikeCounter(model)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)
    steps = _steps(config, data)
    stop = {"now": False}
    previous = signal.signal(signal.SIGINT, lambda *_: stop.update(now=True)) if rank == 0 else None
    written = set()
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    try:
        for epoch in range(start_epoch, config.epochs):
            batches = epoch_batches(len(data.x_train), config.batch_size, config.seed, epoch, rank, world)
            started = time.perf_counter()
            totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, seen
            counter.start(config.device)
            bar = tqdm(total=len(batches), desc=f"epoch {epoch + 1}/{config.epochs}", disable=rank != 0,
                       leave=False, dynamic_ncols=True)
            bar.update(start_batch)
            for b in range(start_batch, len(batches)):
                idx = batches[b]
                x = encode(data.x_train[idx], idx, config.encoding, steps, config.seed, epoch).to(config.device)
                y = data.y_train[idx].to(config.device)
                global_size = min(config.batch_size, len(data.x_train) - b * config.batch_size)
                with step_threads(x):  # a small network's batch is many small operations
                    loss_sum, correct = _train_step(model, optimizer, x, y, world / global_size)
                totals += torch.tensor([loss_sum, correct, len(idx)], dtype=torch.float64)
                bar.set_postfix(loss=f"{totals[0] / max(totals[2], 1):.3f}", acc=f"{totals[1] / max(totals[2], 1):.3f}")
                bar.update(1)
                if _should_stop(stop, world, config.device):
                    if rank == 0:
                        _atomic_save(_checkpoint(model, optimizer, config, epoch, b + 1, metrics, alpha_history),
                                     out / CHECKPOINT)
                    bar.close()
                    raise Interrupted(f"interrupted: checkpoint saved to {out / CHECKPOINT} "
                                      f"(epoch {epoch + 1}, batch {b + 1}); continue with --resume")
            bar.close()
            start_batch = 0
            totals = _sum_over_processes(totals, world, config.device)
            silent = counter.silent(world)
            if rank == 0:
                for layer in silent:
                    warn(f"spiking layer {layer} fired no spike in epoch {epoch + 1}; {SILENT_ADVICE}")
                core = model.module if world > 1 else model
                test_acc, rate = evaluate(core, config, data)
                alpha_history.append(core.alphas())
                seen = max(totals[2].item(), 1.0)
                record = {"epoch": epoch + 1, "train_loss": totals[0].item() / seen,
                          "train_acc": totals[1].item() / seen, "test_acc": test_acc, "firing_rate": rate,
                          "alphas": core.alphas(), "seconds": time.perf_counter() - started}
                metrics.append(record)
                log(f"epoch {epoch + 1}/{config.epochs}: loss {record['train_loss']:.4f} "
                    f"train acc {record['train_acc']:.3f} test acc {test_acc:.3f} rate {rate:.3f} "
                    f"alpha {', '.join(f'{a:.3f}' for a in record['alphas'])} ({record['seconds']:.1f} s)")
                _atomic_save(_checkpoint(model, optimizer, config, epoch + 1, 0, metrics, alpha_history),
                             out / CHECKPOINT)
                written.add(CHECKPOINT)
    finally:
        counter.remove()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    core = model.module if world > 1 else model
    summary = {}
    if rank == 0:
        test_acc, rate = evaluate(core, config, data)
        written |= set(_write_reports(out, metrics, alpha_history, core, config, data))
        summary = {"test_acc": test_acc, "firing_rate": rate, "alphas": core.alphas(), "epochs": config.epochs,
                   "files": sorted(written)}
    if world > 1:
        dist.barrier()
    return summary


def _train_step(model, optimizer, x, y, scale: float) -> tuple[float, int]:
    """One optimizer step on the loss `scale * sum of cross-entropies`; returns that sum and the hits.

    DDP averages the gradients of the `world` processes: with `scale = world / global batch size`
    that average is the gradient of the mean over the global batch.
    """
    logits = _logits(model, x)
    loss_sum = nn.functional.cross_entropy(logits, y, reduction="sum")
    optimizer.zero_grad(set_to_none=True)
    (loss_sum * scale).backward()
    optimizer.step()
    return loss_sum.item(), int((logits.argmax(1) == y).sum().item())


def _sum_over_processes(values: torch.Tensor, world: int, device: str) -> torch.Tensor:
    if world == 1:
        return values
    values = values.to(device)
    dist.all_reduce(values)
    return values.cpu()


def _should_stop(stop: dict, world: int, device: str) -> bool:
    if world == 1:
        return stop["now"]
    flag = torch.tensor([1.0 if stop["now"] else 0.0], device=device)
    dist.all_reduce(flag)  # rank 0 owns the signal handler; everyone stops together
    return bool(flag.item() > 0)


def _alpha_label(config: TrainConfig) -> str:
    alphas = config.layer_alphas()
    text = f"{alphas[0]:g}" if len(set(alphas)) == 1 else ", ".join(f"{a:g}" for a in alphas)
    return ("initial alpha " if config.learn_alpha else "alpha ") + text


def _integer_ticks(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _write_reports(out: Path, metrics, alpha_history, model, config, data) -> list[str]:
    """Write the metrics and figures; return the names of the files written."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = ["metrics.json", "metrics.csv"]
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    with open(out / "metrics.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["epoch", "train_loss", "train_acc", "test_acc", "firing_rate", "alphas", "seconds"])
        for m in metrics:
            writer.writerow([m["epoch"], m["train_loss"], m["train_acc"], m["test_acc"], m["firing_rate"],
                             " ".join(f"{a:.6f}" for a in m["alphas"]), m["seconds"]])
    if metrics:
        epochs = [m["epoch"] for m in metrics]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
        ax1.plot(epochs, [m["train_loss"] for m in metrics], "o-", label="train loss")
        ax1.set_xlabel("epoch")
        ax1.set_ylabel("cross-entropy")
        ax1.legend()
        ax2.plot(epochs, [m["train_acc"] for m in metrics], "o-", label="train")
        ax2.plot(epochs, [m["test_acc"] for m in metrics], "s-", label="test")
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("accuracy")
        ax2.legend()
        for ax in (ax1, ax2):
            _integer_ticks(ax.xaxis)
        fig.suptitle(f"{config.dataset}: {_alpha_label(config)}, {config.encoding} coding, T = {_steps(config, data)}")
        fig.tight_layout()
        fig.savefig(out / "curves.png", dpi=110)
        plt.close(fig)
        written.append("curves.png")
    with torch.no_grad():
        idx = torch.arange(1)
        x = encode(data.x_test[idx], idx, config.encoding, _steps(config, data), config.seed, TEST_EPOCH_KEY)
        hidden = model.hidden_spikes(x.to(config.device))[:, 0].cpu()
        output = model(x.to(config.device))[:, 0].cpu()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), gridspec_kw={"width_ratios": [2, 3, 2]})
    for ax, spikes, title in zip(axes, (x[:, 0], hidden, output), ("input", "hidden layer", "output layer")):
        t, n = torch.nonzero(spikes, as_tuple=True)
        ax.scatter(t.numpy(), n.numpy(), s=4, marker="|", color="k")
        ax.set_xlabel("time step")
        ax.set_ylabel("neuron")
        ax.set_title(title)
        ax.set_xlim(-0.5, spikes.shape[0] - 0.5)
        ax.set_ylim(-0.5, spikes.shape[1] - 0.5)
        _integer_ticks(ax.xaxis)
        _integer_ticks(ax.yaxis)
    fig.suptitle(f"spike raster of test sample 0 (label {int(data.y_test[0])}, "
                 f"predicted {int(output.mean(0).argmax())})")
    fig.tight_layout()
    fig.savefig(out / "raster.png", dpi=110)
    plt.close(fig)
    written.append("raster.png")
    if config.learn_alpha and len(alpha_history) > 1:
        history = torch.tensor(alpha_history)
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for layer in range(history.shape[1]):
            ax.plot(range(len(history)), history[:, layer].numpy(), "o-", label=f"layer {layer + 1}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("alpha")
        ax.set_title("learned fractional orders")
        _integer_ticks(ax.xaxis)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "alpha.png", dpi=110)
        plt.close(fig)
        written.append("alpha.png")
    return written


def evaluate_checkpoint(path: str | Path, device: str = "cpu") -> dict:
    """Rebuild the model of a checkpoint and measure its test accuracy (deterministic)."""
    state = load_checkpoint(path)
    try:
        config = TrainConfig(**state["config"])
    except TypeError as err:
        raise CheckpointError(f"checkpoint {path} has an incompatible configuration: {err}") from None
    config.device = str(check_device(device))
    data = load_dataset(config.dataset, config.data_dir, config.timesteps)
    model = build_model(config, data).to(config.device)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as err:
        raise CheckpointError(f"checkpoint {path} does not match its model: {str(err).splitlines()[0]}") from None
    accuracy, rate = evaluate(model, config, data)
    return {"test_acc": accuracy, "firing_rate": rate, "alphas": model.alphas(), "epoch": state["epoch"]}
