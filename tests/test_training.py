import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from spikede.cli import main
from spikede.training import TrainConfig, evaluate_checkpoint, load_checkpoint, train

QUICK = ["--limit", "256", "--epochs", "2", "--timesteps", "8", "--hidden", "32", "--batch-size", "32"]


def run_cli(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "spikede", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, **kwargs)


def without_progress(stderr: str) -> str:
    """`stderr` without the progress bars (whose redraws would hide a rank's own error message)."""
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if line.strip() and "it/s" not in line]
    return "\n".join(lines)[:6000]


def weights(path):
    return load_checkpoint(path)["model"]


def assert_same_weights(a, b, atol):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].double(), b[key].double(), rtol=0, atol=atol), key


def test_train_writes_reports_and_evaluate_reproduces(tmp_path):
    out = run_cli("train", *QUICK, "--learn-alpha", "--out", str(tmp_path), check=True)
    summary = out.stdout.strip().splitlines()
    line = next(l for l in summary if l.startswith("test accuracy"))
    for name in ("checkpoint.pt", "metrics.csv", "metrics.json", "curves.png", "raster.png", "alpha.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    accuracy = float(line.split()[2])
    result = evaluate_checkpoint(tmp_path / "checkpoint.pt")
    assert result["test_acc"] == pytest.approx(accuracy, abs=5e-5)
    ev = run_cli("evaluate", str(tmp_path / "checkpoint.pt"), check=True)
    assert f"test accuracy {accuracy:.4f}" in ev.stdout


def test_a_torchrun_process_exits_with_its_code_and_flushed_output(tmp_path):
    """Under torchrun (`WORLD_SIZE` > 1) the command leaves by `os._exit` (see `spikede.cli.run`):
    its exit code and its buffered output must still come out."""
    # without PYTHONUNBUFFERED, output to a pipe stays in Python's buffer until flushed
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    env["WORLD_SIZE"] = "2"

    def command(*args):
        return subprocess.run([sys.executable, "-m", "spikede", *args], capture_output=True, text=True, env=env)

    missing = tmp_path / "none.pt"
    failed = command("evaluate", str(missing))
    assert failed.returncode == 2 and str(missing) in failed.stderr
    shown = command("demo")
    assert shown.returncode == 0 and "gaussian" in shown.stdout


@pytest.mark.slow
def test_distributed_two_processes_equal_one_process(tmp_path):
    """The default data set (1347 training images: the last global batch of 32 holds 3, split 2 + 1)."""
    common = ["--epochs", "2", "--timesteps", "8", "--hidden", "32"]
    single = run_cli("train", *common, "--out", str(tmp_path / "one"), env={"OMP_NUM_THREADS": "1"})
    assert single.returncode == 0, single.stderr
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "spikede", "train", *common, "--out", str(tmp_path / "two")]
    double = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "SPIKEDE_BACKEND": "gloo",
                                                                        "OMP_NUM_THREADS": "1"})
    assert double.returncode == 0, without_progress(double.stderr)
    # The same arithmetic but for the order of the sums over the batch (gradients all-reduced over
    # two halves): float32 rounding, amplified by two epochs of Adam, stays near 1e-7.
    assert_same_weights(weights(tmp_path / "one" / "checkpoint.pt"), weights(tmp_path / "two" / "checkpoint.pt"), 1e-6)
    one = load_checkpoint(tmp_path / "one" / "checkpoint.pt")["metrics"]
    two = load_checkpoint(tmp_path / "two" / "checkpoint.pt")["metrics"]
    for a, b in zip(one, two):  # the printed metrics are those of the whole data set, not rank 0's half
        assert b["train_loss"] == pytest.approx(a["train_loss"], abs=1e-5)
        assert b["train_acc"] == pytest.approx(a["train_acc"], abs=1e-9)
        assert b["test_acc"] == a["test_acc"]


def test_train_leaves_a_callers_process_group_alone(tmp_path, monkeypatch):
    """`train` closes only the process group it opened itself (under torchrun); one the caller
    opened (here a single-process gloo group) is still usable afterwards."""
    import torch.distributed as dist

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(29500 + os.getpid() % 1000))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        train(TrainConfig(epochs=1, timesteps=4, hidden=8, limit=64, out=str(tmp_path)), log=lambda *a: None)
        assert dist.is_initialized()
        total = torch.ones(1)
        dist.all_reduce(total)
        assert total.item() == 1.0
    finally:
        dist.destroy_process_group()


def test_epoch_batches_split_each_global_batch():
    from spikede.training import epoch_batches

    one = epoch_batches(103, 32, seed=4, epoch=2)
    assert [len(b) for b in one] == [32, 32, 32, 7]
    halves = [epoch_batches(103, 32, seed=4, epoch=2, rank=r, world=2) for r in range(2)]
    for b, (first, second) in enumerate(zip(*halves)):
        assert torch.equal(torch.cat([first, second]), one[b])  # integer indices
    assert [len(b) for b in halves[1]] == [16, 16, 16, 3]
    assert torch.equal(torch.sort(torch.cat(one)).values, torch.arange(103))  # every sample once


@pytest.mark.slow
def test_sigint_then_resume_equals_uninterrupted(tmp_path):
    # 40 short epochs (about 0.05 s each on the compiled engine): the signal, sent 0.3 s after the
    # first checkpoint, must land inside the training loop, not after it.
    common = ["--limit", "512", "--epochs", "40", "--timesteps", "16", "--hidden", "64", "--batch-size", "16"]
    reference = run_cli("train", *common, "--out", str(tmp_path / "ref"))
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "spikede", "train", *common, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the second epoch
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, (stdout, stderr)
    assert "interrupted: checkpoint saved" in stderr and "Traceback" not in stderr
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["epoch"] < 40
    resumed = run_cli("train", *common, "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(weights(tmp_path / "ref" / "checkpoint.pt"), weights(out / "checkpoint.pt"), 1e-6)


@pytest.mark.slow
def test_adjoint_training_gives_the_same_weights(tmp_path):
    common = ["--limit", "64", "--epochs", "1", "--timesteps", "8", "--hidden", "16", "--batch-size", "32"]
    run_cli("train", *common, "--no-adjoint", "--out", str(tmp_path / "autograd"), check=True)
    run_cli("train", *common, "--out", str(tmp_path / "adjoint"), check=True)  # the adjoint is the default
    assert_same_weights(weights(tmp_path / "autograd" / "checkpoint.pt"), weights(tmp_path / "adjoint" / "checkpoint.pt"),
                        1e-5)


def test_checkpoint_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "spikede-train-1", "payload": os.system}, path)
    out = run_cli("evaluate", str(path))
    assert out.returncode == 2 and "refused: it holds code" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "--dataset", "mnist"], "unknown dataset 'mnist'"),
        (["train", "--dataset", "fashion-mnist", "--data-dir", "/nonexistent"], "apt-get install dataset-fashion-mnist"),
        (["train", "--alpha", "1.5"], "--alpha must be in (0, 1]"),
        (["train", "--alpha", "0"], "--alpha must be in (0, 1]"),
        (["train", "--epochs", "-1"], "--epochs must be >= 0"),
        (["train", "--tau", "0"], "--tau must be a finite number > 0, got 0.0"),
        (["train", "--surrogate-scale", "-1"], "--surrogate-scale must be a finite number > 0"),
        (["train", "--compare-alpha", "0.8", "2.0"], "argument --compare-alpha: expected alpha in (0, 1], got 2.0"),
        (["train", "--compare-alpha", "0.8", "--seeds", "0"], "argument --seeds: expected a positive integer"),
        (["train", "--seeds", "2"], "--seeds goes with --compare-alpha"),
        (["train", "--compare-alpha", "0.8", "0.9", "--memory", "soe", "--learn-alpha"], "cannot learn it"),
        (["train", "--device", "foo"], "is not a torch device"),
        (["train", "--memory", "soe", "--learn-alpha"], "cannot learn it"),
        (["evaluate", "/nonexistent/checkpoint.pt"], "does not exist"),
        (["evaluate", "/"], "checkpoint /checkpoint.pt does not exist"),
    ],
)
def test_bad_input_is_one_clear_line(args, message, tmp_path, capsys):
    """In this process (`main`, as the command runs it; the checkpoint cases below start the command
    itself): a non-zero code and one line on stderr, before any training or output."""
    try:
        code = main([*args, "--out", str(tmp_path)] if args[0] == "train" else list(args))
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    stderr = capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # rejected before any training or output
    assert code != 0
    assert message in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_corrupt_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(os.urandom(2000))
    out = run_cli("evaluate", str(path))
    assert out.returncode == 2 and "not a valid torch checkpoint" in out.stderr
    out = run_cli("train", "--out", str(tmp_path), "--resume")
    assert out.returncode == 2 and "not a valid torch checkpoint" in out.stderr


def test_fashion_mnist_reader(tmp_path):
    import gzip
    import struct

    import numpy as np

    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 10)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        with gzip.open(tmp_path / f"{prefix}-images-idx3-ubyte.gz", "wb") as fh:
            fh.write(struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes())
        (tmp_path / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())
    from spikede.data import load_dataset

    data = load_dataset("fashion-mnist", tmp_path)
    assert data.x_train.shape == (20, 28, 28) and data.x_test.shape == (10, 28, 28)
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    summary = train(TrainConfig(dataset="fashion-mnist", data_dir=str(tmp_path), epochs=1, timesteps=4, hidden=8,
                                batch_size=10, out=str(tmp_path / "out"), encoding="rows"), log=lambda *_: None)
    assert 0.0 <= summary["test_acc"] <= 1.0


def test_incompatible_checkpoint(tmp_path):
    run_cli("train", *QUICK, "--out", str(tmp_path), check=True)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    state["config"]["hidden"] = 7  # the stored weights no longer fit the model it describes
    torch.save(state, tmp_path / "checkpoint.pt")
    out = run_cli("evaluate", str(tmp_path / "checkpoint.pt"))
    assert out.returncode == 2 and "does not match its model" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_evaluate_takes_the_output_folder(tmp_path):
    run_cli("train", *QUICK, "--out", str(tmp_path), check=True)
    by_folder = run_cli("evaluate", str(tmp_path), check=True)
    by_file = run_cli("evaluate", str(tmp_path / "checkpoint.pt"), check=True)
    assert by_folder.stdout == by_file.stdout and "test accuracy" in by_folder.stdout


def test_zero_epochs_lists_only_what_it_wrote(tmp_path):
    out = run_cli("train", "--epochs", "0", "--limit", "64", "--out", str(tmp_path), check=True)
    line = next(l for l in out.stdout.splitlines() if l.startswith("outputs in"))
    listed = set(line.split(": ", 1)[1].split(", "))
    assert listed == {p.name for p in tmp_path.iterdir()} == {"metrics.csv", "metrics.json", "raster.png"}


@pytest.mark.slow
def test_silent_layer_is_reported_with_advice(tmp_path):
    out = run_cli("train", *QUICK, "--tau", "1000", "--out", str(tmp_path), check=True)
    warnings = [l for l in out.stderr.splitlines() if l.startswith("spikede: warning:")]
    assert len(warnings) == 4  # two layers, two epochs
    assert "layers.1 (FractionalLIF) fired no spike in epoch 1" in warnings[0] and "lower --tau" in warnings[0]
    loud = run_cli("train", *QUICK, "--tau", "0.5", "--out", str(tmp_path / "loud"), check=True)
    assert "warning" not in loud.stderr


@pytest.mark.slow
def test_compare_alpha_over_seeds(tmp_path):
    out = run_cli("train", "--compare-alpha", "1.0", "0.7", "--seeds", "2", "--limit", "64", "--epochs", "2",
                  "--timesteps", "6", "--hidden", "16", "--tau", "0.5", "--out", str(tmp_path), check=True)
    rows = json.loads((tmp_path / "compare.json").read_text())
    assert [r["alpha"] for r in rows] == [1.0, 0.7] and all(r["seeds"] == [0, 1] for r in rows)
    for row in rows:
        accs = [r["test_acc"] for r in row["runs"]]
        assert row["test_acc_mean"] == pytest.approx(sum(accs) / 2)
        assert row["test_acc_std"] == pytest.approx(abs(accs[0] - accs[1]) / 2**0.5)
        for r in row["runs"]:  # each run is a full training run of its own
            state = load_checkpoint(tmp_path / f"alpha-{row['alpha']:g}" / f"seed-{r['seed']}" / "checkpoint.pt")
            assert state["config"]["seed"] == r["seed"] and state["metrics"][-1]["test_acc"] == r["test_acc"]
        assert f"{row['test_acc_mean']:.4f} +- {row['test_acc_std']:.4f}" in out.stdout
    assert (tmp_path / "compare.png").stat().st_size > 10000
    assert len((tmp_path / "compare.csv").read_text().splitlines()) == 1 + 4


def test_conv_model_trains_and_evaluates(tmp_path):
    """`--model conv`: Conv-BatchNorm-FractionalLIF blocks; a short run learns (well above 10%
    chance on the 450 test digits) and its checkpoint evaluates to the same accuracy."""
    out = run_cli("train", "--model", "conv", "--limit", "512", "--epochs", "3", "--timesteps", "8",
                  "--out", str(tmp_path), check=True)
    line = next(l for l in out.stdout.splitlines() if l.startswith("test accuracy"))
    accuracy = float(line.split()[2])
    assert accuracy >= 0.6
    result = evaluate_checkpoint(tmp_path / "checkpoint.pt")
    assert result["test_acc"] == pytest.approx(accuracy, abs=5e-5)
    assert len(result["alphas"]) == 3  # two conv blocks and the output layer


def test_conv_model_refuses_row_sequences():
    out = run_cli("train", "--model", "conv", "--encoding", "rows", "--epochs", "0")
    assert out.returncode != 0 and "--model conv takes images: use --encoding rate" in out.stderr
