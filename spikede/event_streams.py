"""Event-camera data: event streams as `tonic` writes them, binned to spike frames.

An event stream is a NumPy structured array with the fields `x`, `y` (pixel), `t` (time, e.g.
microseconds) and `p` (polarity, 0/1 or -1/1), the representation of `tonic`
(`tonic.datasets.NMNIST(...)[i]` gives `(events, label)`); `numpy.save` keeps it as a `.npy`
file.  A data set is a folder

    DIR/train/<label>/<sample>.npy
    DIR/test/<label>/<sample>.npy

with an optional `DIR/sensor_size.json` (`[width, height, polarities]`, as tonic's
`sensor_size`; default: the largest coordinates seen, and 2 polarities).  Each stream is binned
into `T` frames of equal duration over its own time span (tonic's `ToFrame(n_time_bins=T)`):
frame `k`, channel `p`, pixel `(y, x)` is 1 where at least one event of polarity `p` fell there
in bin `k`.  Nothing is downloaded: `write_moving_bars` writes a small generated data set, and
`MISSING_HELP` says how to write N-MNIST or a DVS data set with tonic.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

__all__ = ["FIELDS", "read_stream", "bin_stream", "load_event_folder", "write_moving_bars", "MISSING_HELP"]

FIELDS = ("x", "y", "t", "p")
MISSING_HELP = (
    "write it with tonic (pip install tonic; it downloads the data), e.g. for N-MNIST: "
    "for split, train in (('train', True), ('test', False)): "
    "for i, (events, label) in enumerate(tonic.datasets.NMNIST(save_to='raw', train=train)): "
    "numpy.save(f'DIR/{split}/{label}/{i}.npy', events); "
    "or try the generated set: python -c \"from spikede.event_streams import write_moving_bars; "
    "write_moving_bars('DIR')\""
)


class EventDataError(ValueError):
    """An event data set cannot be found or read; the message names the file and says what is wrong."""


def read_stream(path: str | Path) -> np.ndarray:
    """One event stream (a structured array with the fields x, y, t, p), checked."""
    path = Path(path)
    try:
        events = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise EventDataError(f"cannot read events from {path}: {err}") from None
    names = events.dtype.names or ()
    missing = [f for f in FIELDS if f not in names]
    if missing or events.ndim != 1:
        raise EventDataError(f"{path} is not an event stream: it needs a 1-D structured array with the fields "
                             f"{', '.join(FIELDS)} (tonic's format); missing {missing or 'none'}, shape {events.shape}")
    for field in FIELDS:
        if not np.issubdtype(events.dtype[field], np.integer) and events.dtype[field] != np.bool_:
            if field == "t" and np.issubdtype(events.dtype[field], np.floating):
                continue
            raise EventDataError(f"{path}: field {field!r} has dtype {events.dtype[field]}; it must be integer")
    if len(events) and (events["x"].min() < 0 or events["y"].min() < 0):
        raise EventDataError(f"{path}: negative pixel coordinates")
    return events


def bin_stream(events: np.ndarray, steps: int, sensor_size: tuple[int, int, int]) -> torch.Tensor:
    """Frames `[steps, polarities, height, width]` (bool) of one stream: equal time bins over its span."""
    width, height, polarities = sensor_size
    frames = torch.zeros(steps, polarities, height, width, dtype=torch.bool)
    if len(events) == 0:
        return frames
    x, y = events["x"].astype(np.int64), events["y"].astype(np.int64)
    p = (events["p"].astype(np.int64) > 0).astype(np.int64) if polarities == 2 else np.zeros(len(events), np.int64)
    if x.max() >= width or y.max() >= height:
        raise EventDataError(f"an event at ({x.max()}, {y.max()}) lies outside the sensor {width}x{height}")
    t = events["t"].astype(np.float64)
    span = t.max() - t.min()
    k = np.zeros(len(events), np.int64) if span == 0 else np.minimum((t - t.min()) / span * steps, steps - 1).astype(np.int64)
    frames[torch.from_numpy(k), torch.from_numpy(p), torch.from_numpy(y), torch.from_numpy(x)] = True
    return frames


def _labels(split: Path) -> list[Path]:
    folders = sorted(d for d in split.iterdir() if d.is_dir())
    try:
        return sorted(folders, key=lambda d: int(d.name))
    except ValueError:
        return folders


def load_event_folder(directory: str | Path, steps: int):
    """`(x_train, y_train, x_test, y_test, classes)` of a folder as described in the module:
    frames `[N, steps, polarities, height, width]` (bool) and integer labels."""
    directory = Path(directory)
    if not directory.is_dir():
        raise EventDataError(f"event data folder {directory} does not exist; {MISSING_HELP}")
    splits = {name: directory / name for name in ("train", "test")}
    for name, split in splits.items():
        if not split.is_dir():
            raise EventDataError(f"{directory} has no {name}/ folder (expected DIR/train/<label>/*.npy and "
                                 f"DIR/test/<label>/*.npy); {MISSING_HELP}")
    classes = [d.name for d in _labels(splits["train"])]
    if not classes:
        raise EventDataError(f"{splits['train']} holds no class folders; {MISSING_HELP}")
    streams = {}
    for name, split in splits.items():
        items = []
        for folder in _labels(split):
            if folder.name not in classes:
                raise EventDataError(f"{folder} is a class that {splits['train']} does not have")
            items += [(read_stream(f), classes.index(folder.name)) for f in sorted(folder.glob("*.npy"))]
        if not items:
            raise EventDataError(f"{split} holds no .npy event streams")
        streams[name] = items
    sensor_file = directory / "sensor_size.json"
    if sensor_file.is_file():
        sensor = tuple(int(v) for v in json.loads(sensor_file.read_text()))
        if len(sensor) != 3 or min(sensor) < 1 or sensor[2] not in (1, 2):
            raise EventDataError(f"{sensor_file} must hold [width, height, polarities (1 or 2)], got {list(sensor)}")
    else:
        every = [events for items in streams.values() for events, _ in items if len(events)]
        sensor = (max(int(e["x"].max()) for e in every) + 1, max(int(e["y"].max()) for e in every) + 1, 2)
    out = []
    for name in ("train", "test"):
        frames = torch.stack([bin_stream(events, steps, sensor) for events, _ in streams[name]])
        out += [frames, torch.tensor([label for _, label in streams[name]], dtype=torch.long)]
    return (*out, classes)


def _moving_bar(direction: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Events of a bar crossing a `size` x `size` sensor: 0 right, 1 left, 2 down, 3 up (ON at
    the leading edge, OFF at the trailing one), at a random speed, with background noise."""
    positions = rng.integers(size - 4, size + 1)
    duration = rng.uniform(50_000.0, 150_000.0)  # microseconds
    events = []
    for step in range(positions):
        line = step if direction in (0, 2) else size - 1 - step
        t = duration * step / positions
        for p, offset in ((1, 0), (0, -1 if direction in (0, 2) else 1)):
            where = line + offset
            if 0 <= where < size:
                for a in np.flatnonzero(rng.random(size) < 0.8):
                    x, y = (where, a) if direction in (0, 1) else (a, where)
                    events.append((x, y, t + rng.uniform(0, duration / positions), p))
    noise = int(0.05 * len(events))
    for _ in range(noise):
        events.append((rng.integers(size), rng.integers(size), rng.uniform(0, duration), rng.integers(2)))
    events.sort(key=lambda e: e[2])
    out = np.zeros(len(events), dtype=[("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])
    for i, (x, y, t, p) in enumerate(events):
        out[i] = (x, y, int(t), p)
    return out


def write_moving_bars(directory: str | Path, per_class: int = 24, test_per_class: int = 8, size: int = 16,
                      seed: int = 0) -> Path:
    """Write a small generated event data set (4 classes: a bar moving right, left, down, up) in
    the folder layout of the module; returns `directory`."""
    directory = Path(directory)
    rng = np.random.default_rng(seed)
    for split, count in (("train", per_class), ("test", test_per_class)):
        for label in range(4):
            folder = directory / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                np.save(folder / f"{i}.npy", _moving_bar(label, size, rng))
    (directory / "sensor_size.json").write_text(json.dumps([size, size, 2]))
    return directory
