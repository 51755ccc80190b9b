"""The simulation cores stay pure: no Django or Channels, no shared random, no wall clock.

A sim that reads the clock or the global ``random`` cannot be replayed from its log; one that
imports Django cannot be read (or tested) on its own.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SIM_MODULES = sorted(REPO_ROOT.glob("apps/*/sim/**/*.py"))
SIM_PACKAGES = sorted({".".join(p.relative_to(REPO_ROOT).parts[:3]) for p in SIM_MODULES})

FRAMEWORKS = {"django", "channels", "daphne", "asgiref", "twisted"}
WALL_CLOCK = {"time", "datetime"}
# Module-level randomness; a model that needs chance owns ``random.Random(seed)`` (STYLE.md),
# so ``from random import Random`` is the one import from ``random`` a sim may use.
SHARED_RANDOM = {"random", "secrets", "uuid"}


def _imports(path: Path) -> list[tuple[str, str | None]]:
    """(top-level module, imported name or None) for every absolute import in a file."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.module.split(".")[0], alias.name) for alias in node.names]
    return found


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(REPO_ROOT)) for p in paths]


def test_architecture_finds_the_sim_modules():
    assert REPO_ROOT / "apps/hashring/sim/core.py" in SIM_MODULES


@pytest.mark.parametrize("path", SIM_MODULES, ids=_ids(SIM_MODULES))
def test_sim_module_imports_no_framework(path):
    assert [m for m, _ in _imports(path) if m in FRAMEWORKS] == []


@pytest.mark.parametrize("path", SIM_MODULES, ids=_ids(SIM_MODULES))
def test_sim_module_imports_no_wall_clock(path):
    assert [m for m, _ in _imports(path) if m in WALL_CLOCK] == []


@pytest.mark.parametrize("path", SIM_MODULES, ids=_ids(SIM_MODULES))
def test_sim_module_imports_no_shared_random(path):
    assert [(m, name) for m, name in _imports(path) if m in SHARED_RANDOM and (m, name) != ("random", "Random")] == []


@pytest.mark.parametrize("path", SIM_MODULES, ids=_ids(SIM_MODULES))
def test_sim_module_does_not_import_dynamically(path):
    # __import__ / importlib would slip past the checks above.
    calls = [
        node for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__"
    ]
    assert calls == [] and "importlib" not in {m for m, _ in _imports(path)}


@pytest.mark.parametrize("package", SIM_PACKAGES)
def test_sim_package_loads_without_django(package):
    script = f"import sys, {package}; print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FRAMEWORKS)!r}))"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr
