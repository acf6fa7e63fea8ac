import subprocess
import sys

import spikede


def test_spikeDE_spelling_is_the_same_module():
    import spikeDE

    assert spikeDE is spikede
    from spikeDE import Surrogate, fire_and_reset, spike

    assert spike is spikede.spike and Surrogate is spikede.Surrogate and fire_and_reset is spikede.fire_and_reset


def test_cli_help_and_demo():
    out = subprocess.run([sys.executable, "-m", "spikede"], capture_output=True, text=True, check=True)
    assert "usage: spikede" in out.stdout
    out = subprocess.run([sys.executable, "-m", "spikede", "demo"], capture_output=True, text=True, check=True)
    assert "gaussian(1)" in out.stdout and "spike 1" in out.stdout


def test_convergence_command_writes_plot_and_tables(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "spikede", "convergence", "--out", str(tmp_path), "--n0", "8", "--halvings", "2", "--alphas", "0.5"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "trap" in out.stdout and "observed orders" in out.stdout
    for name in ("convergence.png", "convergence.csv", "convergence.md"):
        assert (tmp_path / name).stat().st_size > 0
    lines = (tmp_path / "convergence.csv").read_text().splitlines()
    assert lines[0] == "problem,method,alpha,n,h,error,order,theory"
    from spikede.experiments import VARIANTS

    assert len(VARIANTS) == sum(len(cls.implicit_modes) for cls in spikede.solvers.SCHEMES.values())
    assert len(lines) == 1 + 3 * len(VARIANTS) * 3  # problems x variants x grids


def test_convergence_command_rejects_bad_alpha():
    out = subprocess.run([sys.executable, "-m", "spikede", "convergence", "--alphas", "2.5"], capture_output=True, text=True)
    assert out.returncode == 2 and "expected alpha in (0, 2], got 2.5" in out.stderr


def test_convergence_study_above_order_one():
    """alpha = 1.5 runs only the methods that take it (y'(0) = 0) and measures their orders."""
    from spikede.experiments import convergence_study

    rows = convergence_study(alphas=(1.5,), n0=32, halvings=3)
    methods = {r.method for r in rows}
    assert methods == {"gl", "gl-implicit", "pred", "pred-implicit", "trap", "trap-implicit"}
    finest = {(r.problem, r.method): r.order for r in rows if r.n == 256}
    for problem in ("smooth", "nonlinear", "relaxation"):
        assert abs(finest[problem, "gl"] - 1.0) <= 0.15 and abs(finest[problem, "trap-implicit"] - 2.0) <= 0.15


def test_readme_usage_example_runs():
    import pathlib
    import re

    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
