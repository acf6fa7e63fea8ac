"""Offline real datasets as spike trains: scikit-learn's digits, Fashion-MNIST (IDX files) and
event-camera streams.

Nothing is downloaded.  `digits` is scikit-learn's bundled copy of the UCI handwritten
digits (1,797 images of 8x8 pixels, 16 grey levels); Fashion-MNIST is read from the IDX
files that Debian's `dataset-fashion-mnist` package installs; `events` reads a folder of
event streams in tonic's format, binned into `--timesteps` frames (`spikede.event_streams`).

Encodings of images (`[T, B, features]`; event frames are spike trains already and are
flattened as they are):

* `rate`: pixel intensity `x` in [0, 1] fires with probability `x` at every step.
  The noise of sample `i` in a given epoch is drawn from a generator seeded by
  `(seed, epoch, i)`, so an encoding does not depend on how samples are batched or
  split across processes (which makes resumed and distributed runs exactly reproducible).
* `rows`: the image's rows are the time steps (`T` = image height), a sequence task.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["Dataset", "DATASETS", "ENCODINGS", "load_dataset", "encode", "FASHION_MNIST_DIR"]

DATASETS = ("digits", "fashion-mnist", "events")
ENCODINGS = ("rate", "rows")
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


class DataError(ValueError):
    """A dataset cannot be found or read; the message says how to get it."""


@dataclass(frozen=True)
class Dataset:
    """Images scaled to [0, 1] (`[N, H, W]` float32), or event frames (`[N, T, C, H, W]` bool), and
    integer labels, split into train and test."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.x_train.shape[-2:])

    @property
    def channels(self) -> int:
        """Input channels: the polarities of event frames, 1 for images."""
        return self.x_train.shape[2] if self.is_events else 1

    @property
    def is_events(self) -> bool:
        """Whether the samples are event frames `[T, C, H, W]` (already spike trains)."""
        return self.x_train.dim() == 5

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def _digits(test_fraction: float = 0.25) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0
    x_train, x_test, y_train, y_test = train_test_split(
        images, bunch.target, test_size=test_fraction, stratify=bunch.target, random_state=0
    )
    return Dataset("digits", torch.from_numpy(x_train), torch.from_numpy(y_train).long(),
                   torch.from_numpy(x_test), torch.from_numpy(y_test).long())


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            magic, = struct.unpack(">I", fh.read(4))
            ndim = magic & 0xFF
            if magic >> 8 != 0x08 or ndim not in (1, 3):
                raise DataError(f"{path} is not an IDX file of unsigned bytes (magic {magic:#x})")
            shape = struct.unpack(">" + "I" * ndim, fh.read(4 * ndim))
            data = np.frombuffer(fh.read(), dtype=np.uint8)
    except (OSError, EOFError, struct.error) as err:
        raise DataError(f"cannot read {path}: {err}") from None
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {data.size}")
    return data.reshape(shape)


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise DataError(
        f"Fashion-MNIST file {stem}[.gz] not found in {directory}; install it with "
        "'apt-get install dataset-fashion-mnist' or pass --data-dir to a folder with the IDX files"
    )


def _fashion_mnist(data_dir: str | Path | None) -> Dataset:
    directory = Path(data_dir or FASHION_MNIST_DIR)
    if not directory.is_dir():
        raise DataError(
            f"data directory {directory} does not exist; install Fashion-MNIST with "
            "'apt-get install dataset-fashion-mnist' or pass --data-dir to a folder with the IDX files"
        )
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = _read_idx(_find(directory, f"{prefix}-images-idx3-ubyte"))
        labels = _read_idx(_find(directory, f"{prefix}-labels-idx1-ubyte"))
        if len(images) != len(labels):
            raise DataError(f"{split} split: {len(images)} images but {len(labels)} labels in {directory}")
        parts[split] = (torch.from_numpy(images.astype(np.float32) / 255.0), torch.from_numpy(labels.astype(np.int64)))
    return Dataset("fashion-mnist", *parts["train"], *parts["test"])


def load_dataset(name: str, data_dir: str | Path | None = None, timesteps: int = 16) -> Dataset:
    """Load `'digits'` (fixed stratified 75/25 split), `'fashion-mnist'` (its own split) or
    `'events'` (the folder `data_dir`, its own split, binned into `timesteps` frames)."""
    if name == "digits":
        return _digits()
    if name == "fashion-mnist":
        return _fashion_mnist(data_dir)
    if name == "events":
        from .event_streams import EventDataError, MISSING_HELP, load_event_folder

        if data_dir is None:
            raise DataError(f"--dataset events needs --data-dir, a folder of event streams; {MISSING_HELP}")
        try:
            x_train, y_train, x_test, y_test, _ = load_event_folder(data_dir, timesteps)
        except EventDataError as err:
            raise DataError(str(err)) from None
        return Dataset("events", x_train, y_train, x_test, y_test)
    raise DataError(f"unknown dataset {name!r}; valid datasets are {', '.join(map(repr, DATASETS))}")


def encode(images: torch.Tensor, indices: torch.Tensor, encoding: str, steps: int, seed: int, epoch: int) -> torch.Tensor:
    """Spike trains `[T, B, features]` for images `[B, H, W]` whose dataset indices are `indices`
    (event frames `[B, T, C, H, W]` are flattened as they are)."""
    if images.dim() == 5:
        return images.transpose(0, 1).flatten(2).float()
    if encoding == "rows":
        return images.permute(1, 0, 2).contiguous()
    if encoding != "rate":
        raise ValueError(f"unknown encoding {encoding!r}; valid encodings are {', '.join(map(repr, ENCODINGS))}")
    flat = images.reshape(images.shape[0], -1)
    noise = torch.empty(steps, *flat.shape, dtype=flat.dtype)
    generator = torch.Generator()
    for column, index in enumerate(indices.tolist()):
        generator.manual_seed((seed * 1_000_003 + epoch) * 10_000_019 + index)
        noise[:, column] = torch.rand(steps, flat.shape[1], generator=generator)
    return (noise < flat).to(flat.dtype)
