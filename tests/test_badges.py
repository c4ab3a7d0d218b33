"""Colab and Binder: every notebook's badges, ``tools/badges.py``, and the hosted-runtime setup
cell of ``00_setup.ipynb`` (a no-op locally; on Colab or Binder it installs the course).

A real Colab or Binder session cannot run here: these tests check the links' form and run the
setup cell locally, and with a hosted runtime faked (commands recorded, not run)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import badges  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
COLAB = re.compile(r"\[!\[Open in Colab\]\(https://colab\.research\.google\.com/assets/"
                   r"colab-badge\.svg\)\]\(https://colab\.research\.google\.com/github/"
                   r"(?P<repo>[^/]+/[^/]+)/blob/(?P<branch>[^/]+)/(?P<path>[^)]+)\)")
BINDER = re.compile(r"\[!\[launch Binder\]\(https://mybinder\.org/badge_logo\.svg\)\]"
                    r"\(https://mybinder\.org/v2/gh/(?P<repo>[^/]+/[^/]+)/(?P<branch>[^?]+)"
                    r"\?labpath=(?P<path>[^)]+)\)")
LOCAL_MESSAGE = "local checkout: nothing to install\n"


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def source(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_notebook_opens_with_both_badges_to_itself(path):
    first = cells(path)[0]
    assert first["cell_type"] == "markdown"
    line, _, rest = source(first).partition("\n")
    colab, binder = COLAB.search(line), BINDER.search(line)
    assert colab and binder, f"{path.name}: run python tools/badges.py"
    want = f"notebooks/{path.name}"
    assert colab["path"] == want and unquote(binder["path"]) == want
    assert "%2F" in binder["path"]  # Binder's labpath is one URL-encoded parameter
    assert colab["repo"] == binder["repo"] == badges.REPO
    assert colab["branch"] == binder["branch"] == badges.BRANCH
    assert rest.lstrip("\n").startswith(f"# {path.name[:2]} ")  # the title follows


def test_the_readme_has_the_badges_of_every_notebook():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    top = text.split("<!-- badges -->\n", 1)[1].split("\n<!-- /badges -->", 1)[0]
    assert COLAB.search(top)["path"] == "notebooks/00_setup.ipynb"
    table = text.split("<!-- badge-table -->\n", 1)[1].split("\n<!-- /badge-table -->", 1)[0]
    assert [m["path"] for m in COLAB.finditer(table)] == \
        [f"notebooks/{p.name}" for p in NOTEBOOKS]
    assert [unquote(m["path"]) for m in BINDER.finditer(table)] == \
        [f"notebooks/{p.name}" for p in NOTEBOOKS]


def test_the_badges_are_up_to_date():
    assert badges.main(["--check"]) == 0, "run python tools/badges.py"


@pytest.fixture
def course_copy(tmp_path) -> Path:
    """A copy of what ``tools/badges.py`` edits: the notebooks, the README, the tool itself (with
    ``tools/doc_blocks.py``, which it imports)."""
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copy2(ROOT / "README.md", tmp_path / "README.md")
    (tmp_path / "tools").mkdir()
    for name in ("badges.py", "doc_blocks.py"):
        shutil.copy2(ROOT / "tools" / name, tmp_path / "tools" / name)
    return tmp_path


def snapshot(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_tool_sets_the_repository_once_and_is_idempotent(course_copy):
    tool = [sys.executable, str(course_copy / "tools" / "badges.py"), "--root", str(course_copy)]
    before = snapshot(course_copy)
    subprocess.run(tool, check=True, capture_output=True)
    assert snapshot(course_copy) == before  # already up to date: nothing changes
    subprocess.run(tool + ["--repo", "someone/pose-course", "--branch", "dev"], check=True,
                   capture_output=True)
    moved = snapshot(course_copy)
    assert 'REPO = "someone/pose-course"' in moved["tools/badges.py"]
    assert 'BRANCH = "dev"' in moved["tools/badges.py"]
    setup = moved["notebooks/00_setup.ipynb"]
    assert 'REPO_URL = \\"https://github.com/someone/pose-course\\"' in setup
    for name, text in moved.items():
        if name.endswith(".ipynb"):
            line = source(json.loads(text)["cells"][0]).partition("\n")[0]
            assert COLAB.search(line)["repo"] == "someone/pose-course"
            assert BINDER.search(line)["branch"] == "dev"
            # only the badge line and the clone address change: the rest of the file is kept
            old = before[name].splitlines()
            new = text.splitlines()
            assert len(old) == len(new) and sum(a != b for a, b in zip(old, new)) <= 2
    assert moved["README.md"].count("someone/pose-course") == 2 + 2 * len(NOTEBOOKS)
    check = subprocess.run(tool + ["--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout  # the saved repository is the new one
    subprocess.run(tool + ["--repo", badges.REPO, "--branch", badges.BRANCH], check=True,
                   capture_output=True)
    assert snapshot(course_copy) == before  # and back, byte for byte


def test_a_notebook_without_badges_gets_them_and_check_says_so(course_copy):
    path = course_copy / "notebooks" / "01_coco_keypoints.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb["cells"][0]["source"] = source(nb["cells"][0]).split("\n", 2)[2]  # badges removed
    path.write_text(badges.dump_notebook(nb), encoding="utf-8")
    assert badges.main(["--root", str(course_copy), "--check"]) == 1
    assert badges.main(["--root", str(course_copy)]) == 0
    assert badges.main(["--root", str(course_copy), "--check"]) == 0
    assert badges.with_badges("# Title\n", "B") == "B\n\n# Title\n"
    assert badges.with_badges(badges.with_badges("# Title\n", "[![Open in Colab](x)"), "B") == \
        "B\n\n# Title\n"


def test_the_stored_notebook_format_is_kept():
    for path in NOTEBOOKS:
        raw = path.read_text(encoding="utf-8")
        assert badges.dump_notebook(json.loads(raw)) == raw, path.name


# --- the hosted-runtime setup cell of 00_setup.ipynb ------------------------------------------


def setup_cell() -> dict:
    nb = cells(ROOT / "notebooks" / "00_setup.ipynb")
    code = [c for c in nb if c["cell_type"] == "code"]
    assert nb[1] is code[0], "the setup cell is the first cell after the title"
    assert "local checkout: nothing to install" in source(code[0])
    return code[0]


def local_env() -> dict[str, str]:
    """This machine's environment without any hosted-runtime marker."""
    return {k: v for k, v in os.environ.items()
            if k != "BINDER_SERVICE_HOST" and not k.startswith("JUPYTERHUB_")}


#: run before the cell: a fake ``subprocess.run`` that records commands instead of running them
#: (``git clone`` links the checkout instead), and optionally a fake Colab / no course_lib
FAKE = """
import importlib.util, json, os, subprocess, sys, types
CALLS = []
def fake_run(cmd, check=False, **kw):
    CALLS.append([str(c) for c in cmd])
    if CALLS[-1][:2] == ["git", "clone"]:
        os.symlink({root!r}, CALLS[-1][-1])
    return subprocess.CompletedProcess(cmd, 0)
subprocess.run = fake_run
if {colab!r}:
    sys.modules["google.colab"] = types.ModuleType("google.colab")
    _find = importlib.util.find_spec
    importlib.util.find_spec = lambda name, *a: None if name == "course_lib" else _find(name, *a)
    import importlib.metadata
    _dists = list(importlib.metadata.distributions())
    importlib.metadata.distributions = lambda: [
        d for d in _dists if d.metadata["Name"].lower() not in {hide!r}]
"""
#: distributions the fake Colab lacks: two the course must install, two it must not (the host's
#: notebook server; OpenCV, since ``cv2`` imports whatever its distribution's name)
HIDDEN = ("cppimport", "pycocotools", "jupyterlab", "opencv-python-headless")
REPORT = '\nprint("CALLS " + json.dumps(CALLS) + " CWD " + os.getcwd())\n'


def run_cell(cwd: Path, env: dict[str, str], *, colab: bool = False, fake: bool = True):
    prelude = FAKE.format(root=str(ROOT), colab=colab, hide=set(HIDDEN)) if fake else ""
    code = prelude + source(setup_cell()) + (REPORT if fake else "")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_setup_cell_is_a_no_op_on_a_local_checkout():
    before = sorted(p.name for p in ROOT.iterdir())
    proc = run_cell(ROOT / "notebooks", local_env(), fake=False)  # for real, nothing faked
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == LOCAL_MESSAGE
    assert sorted(p.name for p in ROOT.iterdir()) == before


def test_the_setup_cell_on_binder_installs_nothing_twice_and_makes_the_data(tmp_path):
    """On Binder the checkout is the working directory's parent and (here) course_lib is
    already importable: only the data script runs."""
    env = {**local_env(), "BINDER_SERVICE_HOST": "10.0.0.1", "COURSE_PROFILE": "smoke"}
    env.pop("COURSE_DATA", None)
    proc = run_cell(ROOT / "notebooks", env)
    assert proc.returncode == 0, proc.stderr
    calls = json.loads(proc.stdout.split("CALLS ", 1)[1].split(" CWD ", 1)[0])
    assert calls == [[sys.executable, str(ROOT / "data_scripts" / "make_synthetic_coco.py"),
                      "--quiet"]]
    assert LOCAL_MESSAGE not in proc.stdout


def test_the_setup_cell_on_colab_clones_installs_and_makes_the_data(tmp_path):
    """On Colab nothing is there: clone beside the working directory, ``pip install -e`` it
    and the requirements the runtime lacks (not its own packages), make the data, work in its
    notebooks/."""
    env = {**local_env(), "COURSE_PROFILE": "smoke"}
    env.pop("COURSE_DATA", None)
    proc = run_cell(tmp_path, env, colab=True)
    assert proc.returncode == 0, proc.stderr
    report = proc.stdout.split("CALLS ", 1)[1]
    calls = json.loads(report.split(" CWD ", 1)[0])
    clone = tmp_path / "heatmaps-to-keypoints"
    assert calls[0] == ["git", "clone", "--depth", "1", badges.github_url(badges.REPO),
                        str(clone)]
    assert calls[1] == [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e",
                        str(clone)]
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = [d for d in deps if re.split(r"[<>=]", d)[0] in ("cppimport", "pycocotools")]
    assert len(wanted) == 2
    assert calls[2] == [sys.executable, "-m", "pip", "install", "-q", *wanted]
    assert calls[3:] == [[sys.executable, str(clone / "data_scripts" / "make_synthetic_coco.py"),
                          "--quiet"]]
    # (the fake clone is a link to this checkout, which the working directory resolves)
    assert report.split(" CWD ", 1)[1].strip() == os.path.realpath(clone / "notebooks")
