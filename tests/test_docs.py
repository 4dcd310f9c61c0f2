"""The documentation builds offline and its API page lists every public name."""

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PUBLIC_MODULES = [
    "sktap",
    "sktap.augment",
    "sktap.baselines",
    "sktap.core",
    "sktap.datasets",
    "sktap.distributed",
    "sktap.few_shot",
    "sktap.functional",
    "sktap.interop",
    "sktap.losses",
    "sktap.metric_learning",
    "sktap.metrics",
    "sktap.neighbors",
    "sktap.plotting",
]


def _resolve(path):
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def test_api_page_lists_every_public_name():
    documented = set(
        re.findall(r"^::: ([\w.]+)$", (ROOT / "docs" / "api.md").read_text(), re.M)
    )
    # a name re-exported elsewhere (at the top level, or sktap.core's maths
    # in sktap.functional) is documented once, under any of its paths
    documented_objects = {id(_resolve(d)) for d in documented}
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if name.startswith("__"):
                continue
            if id(getattr(module, name)) not in documented_objects:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"docs/api.md lacks ::: entries for {missing}"


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("mkdocstrings_handlers.python")
    pytest.importorskip("material")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert 'id="sktap.metrics.cdist_tap"' in api


def _python_blocks(page):
    return re.findall(r"^```python\n(.*?)^```", page.read_text(), re.M | re.S)


@pytest.mark.slow
def test_ecosystem_page_runs(tmp_path):
    """Every snippet of docs/ecosystem.md, in order, as one script.

    In its own interpreter: the page runs aeon's and sktime's code, whose
    runtimes (numba's threading among them) would otherwise stay loaded in
    this test process and change how later tests' threads compute.
    """
    pytest.importorskip("aeon")
    pytest.importorskip("sktime")
    page = ROOT / "docs" / "ecosystem.md"
    blocks = _python_blocks(page)
    assert len(blocks) >= 8
    script = tmp_path / "ecosystem_page.py"
    script.write_text("\n".join(blocks))
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    run = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, f"docs/ecosystem.md failed:\n{run.stderr[-4000:]}"
