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
