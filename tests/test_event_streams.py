"""Event-camera streams in tonic's format (`spikede.event_streams`) and `--dataset events`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from spikede.data import DataError, load_dataset
from spikede.event_streams import bin_stream, load_event_folder, read_stream, write_moving_bars

EVENT = [("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)]


def _stream(rows) -> np.ndarray:
    return np.array(rows, dtype=EVENT)


def test_binning_by_hand():
    """Time span 0..100 in 4 bins of 25: t = 0, 30, 99, 100 fall in bins 0, 1, 3, 3."""
    events = _stream([(0, 0, 0, 1), (2, 1, 30, 0), (1, 2, 99, 1), (1, 2, 100, 0)])
    frames = bin_stream(events, 4, (3, 3, 2))
    expected = torch.zeros(4, 2, 3, 3, dtype=torch.bool)
    expected[0, 1, 0, 0] = expected[1, 0, 1, 2] = expected[3, 1, 2, 1] = expected[3, 0, 2, 1] = True
    assert torch.equal(frames, expected)
    assert not bin_stream(_stream([]), 4, (3, 3, 2)).any()


def test_the_generated_set_loads(tmp_path):
    write_moving_bars(tmp_path, per_class=3, test_per_class=2, size=12)
    x_train, y_train, x_test, y_test, classes = load_event_folder(tmp_path, 10)
    assert x_train.shape == (12, 10, 2, 12, 12) and x_test.shape == (8, 10, 2, 12, 12)
    assert classes == ["0", "1", "2", "3"] and y_train.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    # a bar moving right: its ON events' mean column grows from the first frame to the last
    on = x_train[0, :, 1].float()
    columns = torch.arange(12, dtype=torch.float32)
    mean_column = (on.sum(1) * columns).sum(1) / on.sum((1, 2))
    assert mean_column[-1] > mean_column[0] + 5
    data = load_dataset("events", tmp_path, timesteps=10)
    assert data.is_events and data.channels == 2 and data.image_shape == (12, 12) and data.n_classes == 4


def test_training_on_generated_events(tmp_path):
    write_moving_bars(tmp_path / "bars")
    out = subprocess.run([sys.executable, "-m", "spikede", "train", "--dataset", "events", "--data-dir",
                          str(tmp_path / "bars"), "--epochs", "12", "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, check=True, env={**os.environ})
    line = next(l for l in out.stdout.splitlines() if l.startswith("test accuracy"))
    assert float(line.split()[2]) >= 0.9  # four directions of motion; chance is 0.25


@pytest.mark.parametrize("make,match", [
    (lambda d: np.save(d / "train" / "0" / "a.npy", np.zeros(3)), r"is not an event stream: .* fields x, y, t, p"),
    (lambda d: np.save(d / "train" / "0" / "a.npy", np.zeros(2, dtype=[("x", "i2"), ("y", "i2"), ("t", "i8")])),
     r"missing \['p'\]"),
    (lambda d: np.save(d / "train" / "0" / "a.npy", _stream([(40, 0, 0, 1), (0, 0, 5, 1)])),
     r"outside the sensor 16x16"),
    (lambda d: (d / "train" / "0" / "a.npy").write_bytes(b"not numpy"), r"cannot read events from"),
    (lambda d: (d / "sensor_size.json").write_text(json.dumps([16, 16])), r"must hold \[width, height, polarities"),
    (lambda d: (d / "test" / "9").mkdir(), r"is a class that .* does not have"),
])
def test_bad_data_is_named(tmp_path, make, match):
    write_moving_bars(tmp_path, per_class=1, test_per_class=1)
    make(tmp_path)
    with pytest.raises(ValueError, match=match):
        load_event_folder(tmp_path, 4)


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match=r"does not exist; write it with tonic .*NMNIST"):
        load_dataset("events", tmp_path / "nmnist")
    with pytest.raises(DataError, match="--dataset events needs --data-dir"):
        load_dataset("events")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "test").mkdir()
    with pytest.raises(DataError, match="holds no class folders"):
        load_dataset("events", tmp_path / "empty")


def test_read_stream_accepts_float_time_and_bool_polarity(tmp_path):
    events = np.zeros(2, dtype=[("x", "i2"), ("y", "i2"), ("t", "f8"), ("p", "?")])
    events["t"] = [0.0, 1.5]
    np.save(tmp_path / "s.npy", events)
    assert len(read_stream(tmp_path / "s.npy")) == 2
