import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import spikede

ROOT = Path(__file__).parents[1]


def test_mkdocs_build_strict(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "index.html").exists()


def test_every_public_name_is_documented():
    api = (ROOT / "docs" / "api.md").read_text()
    documented_modules = set(re.findall(r"^::: (\S+)", api, flags=re.M))
    for name in spikede.__all__:
        obj = getattr(spikede, name)
        if inspect.ismodule(obj):
            continue
        module = getattr(obj, "__module__", None) or ""
        if not callable(obj) and not isinstance(obj, type):  # constants such as RESET_MODES
            continue
        assert module in documented_modules, (name, module)
        assert inspect.getdoc(obj) and len(inspect.getdoc(obj)) > 20, name
