"""Project files: pyproject and environment.yml agree; README runs."""

import doctest
import os
import re
import tomllib

from conftest import REPO


def _pyproject_dependencies():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return data["project"]["dependencies"]


def _conda_dependencies():
    lines = (REPO / "environment.yml").read_text().splitlines()
    deps, inside = [], False
    for line in lines:
        if line.startswith("dependencies:"):
            inside = True
            continue
        match = re.match(r"^  - ([A-Za-z0-9_.\-]+)(.*)$", line)
        if inside and match:
            deps.append(match.group(1) + match.group(2).strip())
    return deps


def _normalise(requirement):
    name, spec = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", requirement).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def test_environment_matches_pyproject():
    pip = dict(_normalise(r) for r in _pyproject_dependencies())
    conda = dict(_normalise(r) for r in _conda_dependencies())
    conda.pop("python")
    conda.pop("pip")
    assert conda == pip


def test_core_dependencies_listed():
    names = {_normalise(r)[0] for r in _pyproject_dependencies()}
    core = {
        "jupyterlab",
        "ipywidgets",
        "plotly",
        "numpy",
        "pandas",
        "xarray",
        "scipy",
        "papermill",
        "nbval",
        "pytest",
    }
    assert core <= names, f"missing: {sorted(core - names)}"


def test_readme_example_runs():
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        result = doctest.testfile(
            str(REPO / "README.md"), module_relative=False, verbose=False
        )
    finally:
        os.chdir(cwd)
    assert result.attempted >= 3
    assert result.failed == 0


def test_ci_runs_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "make test" in ci
    # The two set-up commands stand at the top of the README.
    assert "make demo" in readme[:300]
    assert "make test" in readme[:300]
