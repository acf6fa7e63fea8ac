import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))


def test_all_examples_are_listed():
    names = {p.stem for p in EXAMPLES}
    assert {"fractional_lif_adaptation", "solver_accuracy", "mittag_leffler_relaxation",
            "custom_fractional_model", "train_fractional_snn", "fit_fractional_order",
            "model_analysis"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_in_quick_mode(script, tmp_path):
    out = subprocess.run([sys.executable, str(script), "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "wrote" in out.stdout
    assert any(p.suffix == ".png" and p.stat().st_size > 10000 for p in tmp_path.iterdir())
