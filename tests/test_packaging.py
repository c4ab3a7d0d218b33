"""The package lists of pyproject.toml and environment.yml agree; notebooks are stored clean."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from notebook_hygiene import problems  # noqa: E402

# conda names differ from pip names for a few packages
CONDA_TO_PIP = {"pytorch": "torch", "opencv": "opencv-python-headless"}
NOT_PACKAGES = {"python", "pip", "gxx-linux-64"}  # toolchain, not Python packages


def _name(requirement: str) -> str:
    name = re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")
    return CONDA_TO_PIP.get(name, name)


def pyproject_packages() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta.get("optional-dependencies", {}).values():
        reqs += extra
    return {_name(r) for r in reqs}


def environment_packages() -> set[str]:
    names = set()
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("\ndependencies:", 1)[1].splitlines():  # skip name and channels
        m = re.match(r"^\s*-\s+([A-Za-z0-9_.\-]+)", line)
        if m and not line.strip().endswith(":"):
            names.add(_name(m.group(1)))
    return names - NOT_PACKAGES


def test_environment_yml_lists_the_same_packages_as_pyproject():
    py, env = pyproject_packages(), environment_packages()
    assert py == env, f"only in pyproject.toml: {sorted(py - env)}; only in environment.yml: {sorted(env - py)}"


def test_the_package_comparison_can_fail(tmp_path):
    assert _name("pytorch>=2.2") == "torch"
    assert {"numpy", "torch"} != {"numpy"}  # a missing package is a difference


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_clean(path):
    assert problems(path) == []


def test_hygiene_flags_outputs_and_wrong_kernel(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text(
        '{"metadata": {"kernelspec": {"name": "python3-venv"}}, "nbformat": 4, "nbformat_minor": 5,'
        ' "cells": [{"cell_type": "code", "source": "1", "metadata": {}, "execution_count": 3,'
        ' "outputs": [{"output_type": "stream", "name": "stdout", "text": "1"}]}]}'
    )
    found = problems(bad)
    assert len(found) == 3, found


def test_notebooks_exist_for_every_course_step():
    names = {p.name[:2] for p in NOTEBOOKS}
    assert {"00", "01", "02", "03", "04", "05", "06", "07", "08"} <= names


DISTRIBUTED = ["course_lib", "course_lib.*", "heatmaps_to_keypoints"]


def test_every_course_lib_package_is_in_the_distribution():
    """Sub-packages (train/, checks/, widgets/) and the seed package's import name
    (``heatmaps_to_keypoints/``) ship in the wheel: setuptools finds them all, nothing else."""
    from setuptools import find_packages

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["tool"]["setuptools"]["packages"]["find"]["include"] == DISTRIBUTED
    found = set(find_packages(str(ROOT), include=DISTRIBUTED))
    folders = {".".join(p.parent.relative_to(ROOT).parts)
               for top in ("course_lib", "heatmaps_to_keypoints")
               for p in (ROOT / top).rglob("__init__.py")}
    assert folders <= found, sorted(folders - found)
    assert {name.split(".")[0] for name in found} == {"course_lib", "heatmaps_to_keypoints"}


def test_environment_yml_builds_on_binder():
    """repo2docker reads environment.yml: valid YAML, the Python of pyproject.toml, conda-forge
    only (no pytorch or defaults channel to mix), pip listed before its section, every pip
    entry a plain requirement (no ``-e .``: the repository is not there yet when it installs),
    and one provider of ``cv2``."""
    yaml = pytest.importorskip("yaml")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict)]
    assert len(pip_sections) == 1 and "pip" in conda
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f"python={requires.removeprefix('>=')}" in conda
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?([<>=!~]=?[^ ]+)*", r)
               for r in pip_sections[0]), pip_sections[0]
    names = [_name(d) for d in conda] + [_name(r) for r in pip_sections[0]]
    assert names.count("opencv-python-headless") == 1, names


def test_binder_post_build_installs_the_course_and_its_data():
    """repo2docker runs ``postBuild`` after environment.yml: it must be an executable bash
    script that installs the course, builds the C++ decoder and makes the data."""
    import os
    import subprocess

    script = ROOT / "postBuild"
    assert script.is_file() and os.access(script, os.X_OK)
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    for needed in ("pip install", "-e .", "native.available()", "make_synthetic_coco.py"):
        assert needed in text, needed
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
