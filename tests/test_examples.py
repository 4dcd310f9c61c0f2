"""Every ``examples/plot_*.py`` runs to completion as a script."""

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))


def _imported_modules(path):
    """Top-level names of every module the script imports, anywhere in it."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_examples_found():
    assert len(EXAMPLES) >= 5


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(path, tmp_path):
    missing = sorted(
        m for m in _imported_modules(path) if importlib.util.find_spec(m) is None
    )
    if missing:
        pytest.skip(f"{path.name} needs {', '.join(missing)}")
    # Agg: figures are drawn but no window opens; cwd: any stray file an
    # example writes lands in a temporary folder.
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"{path.name} exited with {result.returncode}:\n{result.stderr[-3000:]}"
    )
