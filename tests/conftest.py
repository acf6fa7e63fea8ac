"""Test-session settings.

The suite runs with one intra-op thread (``torch.set_num_threads(1)``, and
``OMP_NUM_THREADS=1`` for the subprocesses it starts).  The tests check numbers,
not speed; on a 2-core machine that runs other jobs, several intra-op threads per
small tensor operation make the suite several times slower without changing a
result.  Thread robustness of the library itself is measured in ``benchmarks/``.

Tests marked ``slow`` are left out of the default run (``pytest -q``) and run with
``pytest -q -m slow``; ``.ci/run`` runs both.
"""

import os

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
torch.set_num_threads(1)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test, left out of the default run (pytest -m slow)")


@pytest.fixture
def engine_state():
    """Restore the compiled engine's choice and loaded library after a test that changes them."""
    from spikede.solvers import native

    saved = native._engine, native._library, native._failure
    yield
    native._engine, native._library, native._failure = saved
