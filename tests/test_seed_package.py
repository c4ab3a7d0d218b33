"""``import heatmaps_to_keypoints``: the seed package's example, verbatim, in the checkout, in
the course's editable install, and from a built wheel installed outside the checkout."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## The seed package: `import heatmaps_to_keypoints`"
#: what a wheel is built from (as in a fresh clone: no build products, no data)
SOURCES = ("pyproject.toml", "setup.py", "README.md", "cpp", "course_lib",
           "heatmaps_to_keypoints")
BUILD_PRODUCTS = shutil.ignore_patterns("__pycache__", "*.so", ".rendered.*", "*.lock",
                                        "*.egg-info", "build", "*.pyc")
#: printed by a child process after the example: where everything was imported from
WHERE = """
import json, sys, course_lib, heatmaps_to_keypoints
from course_lib import native
print("WHERE " + json.dumps({"package": heatmaps_to_keypoints.__file__,
    "course_lib": course_lib.__file__, "path": sys.path,
    "cpp": native.load_extension().__file__ if native.available() else None}))
"""


def readme_example() -> tuple[str, str]:
    """The README section's example code and the output it shows."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shown = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    return code, shown


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python: no course variables, no PYTHONPATH, then ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("COURSE_") and k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def run_example(cwd: Path, env: dict[str, str]) -> tuple[str, dict]:
    """Run the README example and :data:`WHERE` in a child Python with ``-s -P`` (no user site,
    no working directory on ``sys.path``); returns (its output, where things came from)."""
    code, _ = readme_example()
    proc = subprocess.run([sys.executable, "-s", "-P", "-c", code + WHERE], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out, _, where = proc.stdout.rpartition("WHERE ")
    return out, json.loads(where)


def under(path: str | None, folder: Path) -> bool:
    return path is not None and Path(path).resolve().is_relative_to(folder.resolve())


def test_the_package_re_exports_the_course_decoder():
    import heatmaps_to_keypoints
    from course_lib import heatmaps_to_keypoints as api

    assert heatmaps_to_keypoints.decode_heatmaps is api.decode_heatmaps
    assert heatmaps_to_keypoints.Keypoint is api.Keypoint
    assert heatmaps_to_keypoints.__all__ == ["Keypoint", "decode_heatmaps"]
    assert "decode_heatmaps(torch.randn(8, 17, 96, 72))" in heatmaps_to_keypoints.__doc__


def test_the_seed_example_gives_normalised_keypoints_of_the_dark_decoder():
    torch = pytest.importorskip("torch")
    import heatmaps_to_keypoints
    from course_lib.decode import decode

    torch.manual_seed(0)
    maps = torch.randn(8, 17, 96, 72)
    results = heatmaps_to_keypoints.decode_heatmaps(maps)
    assert len(results) == 8 and all(len(row) == 17 for row in results)
    xy = np.array([[(kp.x, kp.y) for kp in row] for row in results])
    scores = np.array([[kp.score for kp in row] for row in results])
    assert ((0 <= xy) & (xy <= 1)).all()
    coords, expected = decode(maps.numpy(), method="dark", backend="numpy")
    np.testing.assert_allclose(xy, coords / np.array([72, 96]), atol=1e-6)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    np.testing.assert_allclose(scores, maps.amax(dim=(2, 3)).numpy(), rtol=1e-6)


@pytest.mark.parametrize("native", ["auto", "off"])
def test_the_readme_example_runs_in_the_course_venv_outside_the_checkout(tmp_path, native):
    """The editable install of ``.venv`` maps the package (``make venv`` reinstalls the course
    when pyproject.toml changes); the C++ decoder and its numpy fallback print the same."""
    from course_lib.native import unavailable_reason

    out, where = run_example(tmp_path, child_env(COURSE_NATIVE=native))
    assert out == readme_example()[1]
    assert under(where["package"], ROOT / "heatmaps_to_keypoints"), (
        f"{where['package']}: the course's editable install is out of date, run `make venv`")
    if native == "off" or unavailable_reason():
        assert where["cpp"] is None
    else:  # cppimport's build beside the checkout's source
        assert under(where["cpp"], ROOT / "cpp"), where


def _build_wheel(src: Path, dist: Path) -> Path:
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=BUILD_PRODUCTS)
        else:
            shutil.copy2(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps",
                           "--no-build-isolation", "--no-index", "-q", "-w", str(dist)],
                          cwd=src, env=child_env(COURSE_BUILD_EXT="1"),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (wheel,) = dist.glob("course_lib-*.whl")
    return wheel


@pytest.mark.slow
def test_an_installed_wheel_runs_the_readme_example_with_its_prebuilt_cpp(tmp_path):
    """``pip wheel .`` compiles the C++ decoder into the wheel; installed into a folder of its
    own and run from a third folder, the example imports only from there and never compiles."""
    from course_lib import native

    if native.compiler() is None:
        pytest.skip("no C++ compiler: the wheel would hold no prebuilt decoder")
    wheel = _build_wheel(tmp_path / "src", tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    assert "heatmaps_to_keypoints/__init__.py" in names and "course_lib/train/__init__.py" in names
    assert any(re.fullmatch(r"course_lib/dark_decoder\..*\.so", n) for n in names), names
    assert {n.split("/")[0] for n in names if not n.startswith("course_lib-")} == \
        {"course_lib", "heatmaps_to_keypoints"}
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    "--target", str(site), str(wheel)], check=True, env=child_env(), timeout=300)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out, where = run_example(outside, child_env(PYTHONPATH=str(site)))
    assert out == readme_example()[1]
    assert under(where["package"], site) and under(where["course_lib"], site), where
    assert under(where["cpp"], site / "course_lib"), where  # the wheel's prebuilt module
    checkout = [p for p in where["path"]  # the checkout's own folders (its .venv aside)
                if os.path.isabs(p) and under(p, ROOT) and not under(p, Path(sys.prefix))]
    assert checkout == [], where["path"]
    assert not list(site.rglob(".rendered.*")) and not (site / "cpp").exists()
