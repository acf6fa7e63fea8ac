import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import spikede

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The docs site built once with `mkdocs build --strict` (warnings, e.g. broken references, fail)."""
    out = tmp_path_factory.mktemp("site")
    env = {k: v for k, v in os.environ.items() if k != "NO_MKDOCS_2_WARNING"}
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                           cwd=ROOT, capture_output=True, text=True, env=env)
    assert build.returncode == 0, build.stderr[-3000:]
    assert "end of life" not in (build.stdout + build.stderr).lower()  # no theme banner
    return out


def _text(html: str) -> str:
    """What a reader sees: no scripts, styles, MathML or tags."""
    html = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    html = re.sub(r"<math\b.*?</math>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", "", html)


def test_site_builds_with_every_page(site):
    for page in ("index.html", "api/index.html", "coming-from-snntorch-spikingjelly/index.html",
                 "tutorials/solvers/index.html"):
        assert (site / page).stat().st_size > 1000, page


def test_api_reference_renders_markdown_not_restructuredtext(site):
    leftovers = {
        "role": r":(?:class|func|meth|mod|attr|data|obj):`",
        "directive": r"^\s*\.\. [a-z]+::",
        "table rule": r"^\s*={5,}(\s+={3,})+\s*$",
        "double backticks": r"``",
        "unrendered maths": r"(?<![\w\\])\$\S",
    }
    for page in site.rglob("*.html"):
        text = _text(page.read_text())
        for name, pattern in leftovers.items():
            found = re.search(pattern, text, flags=re.M)
            assert found is None, (page.relative_to(site), name, text[max(0, found.start() - 80): found.end() + 80])


def test_maths_renders_as_mathml(site):
    api = (site / "api" / "index.html").read_text()
    blocks = re.findall(r"<math xmlns=\"http://www.w3.org/1998/Math/MathML\" display=\"(block|inline)\">", api)
    assert blocks.count("inline") >= 30 and blocks.count("block") >= 5
    # the fractional LIF equation of spikede.neurons: tau D^alpha v = -(v - v_rest) + I(t)
    assert re.search(r"<mi>&#x003C4;</mi>\s*<mspace[^>]*/>\s*<msup><mi>D</mi><mi>&#x003B1;</mi></msup>", api)
    page = (site / "coming-from-snntorch-spikingjelly" / "index.html").read_text()
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in page


def test_site_requests_nothing_from_outside(site):
    """Stylesheets, scripts, images, fonts and frames come from the site itself (links may point out)."""
    for page in list(site.rglob("*.html")) + list(site.rglob("*.css")):
        content = page.read_text(errors="replace")
        loads = re.findall(r"<(?:link|script|img|iframe|source)\b[^>]*?(?:src|href)=[\"']([^\"']+)", content)
        loads += re.findall(r"url\(\s*[\"']?([^\"')]+)", content)
        loads += re.findall(r"@import\s+[\"']([^\"']+)", content)
        outside = [u for u in loads if re.match(r"(https?:)?//", u)]
        assert not outside, (page.relative_to(site), outside)


def test_coming_from_page_code_runs():
    page = (ROOT / "docs" / "coming-from-snntorch-spikingjelly.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    assert len(blocks) == 2
    for block in blocks:
        exec(compile(block, "coming-from-snntorch-spikingjelly.md", "exec"), {})


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
