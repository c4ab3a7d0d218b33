"""``COURSE_COCO_DIR``: real COCO kept anywhere, read only by ``course_lib.config.data_dir``."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib import config

ROOT = Path(__file__).resolve().parent.parent

_spec = importlib.util.spec_from_file_location("download_coco",
                                               ROOT / "data_scripts" / "download_coco.py")
dl = importlib.util.module_from_spec(_spec)
sys.modules["download_coco"] = dl  # dataclasses look their module up
_spec.loader.exec_module(dl)


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("COURSE_COCO_DIR", "COURSE_DATA", "COURSE_ROOT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_without_the_variable_coco_lives_in_data_coco(clean_env):
    assert config.data_dir("coco") == ROOT / "data" / "coco"
    clean_env.setenv("COURSE_COCO_DIR", "  ")  # blank counts as unset
    assert config.data_dir("coco") == ROOT / "data" / "coco"


def test_an_absolute_folder_is_used_for_every_coco_path(clean_env, tmp_path):
    clean_env.setenv("COURSE_COCO_DIR", str(tmp_path / "coco"))
    assert config.data_dir("coco") == tmp_path / "coco"
    clean_env.setenv("COURSE_DATA", "coco")
    assert config.data_dir() == tmp_path / "coco"
    assert config.annotation_file("val") == \
        tmp_path / "coco" / "annotations" / "person_keypoints_val2017.json"
    assert config.annotation_file("train", profile="smoke") == \
        tmp_path / "coco" / "annotations" / "person_keypoints_train2017.json"
    assert config.image_dir("train") == tmp_path / "coco" / "train2017"


def test_a_relative_folder_counts_from_the_repository_root(clean_env, tmp_path):
    clean_env.chdir(tmp_path)  # not from the working directory (notebooks run in notebooks/)
    clean_env.setenv("COURSE_COCO_DIR", "../datasets/coco")
    assert config.data_dir("coco") == (ROOT.parent / "datasets" / "coco").resolve()
    clean_env.setenv("COURSE_COCO_DIR", "~/coco")
    assert config.data_dir("coco") == (Path.home() / "coco").resolve()


def test_synthetic_data_ignores_it(clean_env, tmp_path):
    clean_env.setenv("COURSE_COCO_DIR", str(tmp_path))
    assert config.data_dir("synthetic", "smoke") == ROOT / "data" / "synthetic-smoke"
    assert config.data_dir("synthetic", "cpu") == ROOT / "data" / "synthetic"


def test_check_env_reports_the_folder(clean_env, tmp_path, capsys):
    clean_env.setenv("COURSE_COCO_DIR", str(tmp_path / "coco"))
    clean_env.setenv("COURSE_DATA", "coco")
    info = config.check_env("smoke")
    assert info["data_dir"] == str(tmp_path / "coco") and info["data_ready"] is False
    assert str(tmp_path / "coco") in capsys.readouterr().out


def test_the_download_script_writes_into_it_by_default(clean_env, tmp_path):
    fo = tmp_path / "fiftyone" / "coco-2017"  # no network: a FiftyOne folder as the source
    (fo / "validation" / "data").mkdir(parents=True)
    (fo / "validation" / "data" / "000000000139.jpg").write_bytes(b"jpg")
    (fo / "raw").mkdir()
    (fo / "raw" / "person_keypoints_val2017.json").write_text('{"images": []}')
    clean_env.setenv("COURSE_COCO_DIR", str(tmp_path / "elsewhere"))
    assert dl.main(["--fiftyone", str(fo), "--only", "val"]) == 0  # no --dir
    assert (tmp_path / "elsewhere" / "val2017" / "000000000139.jpg").read_bytes() == b"jpg"
    assert (tmp_path / "elsewhere" / "annotations" / "person_keypoints_val2017.json").is_file()
    assert not (ROOT / "data" / "coco" / "val2017" / "000000000139.jpg").exists()


def test_a_command_line_reads_it_through_config(clean_env, tmp_path):
    """A fresh process (as the CLIs and notebook kernels are) sees the variable via config."""
    env = {**os.environ, "COURSE_COCO_DIR": str(tmp_path), "COURSE_DATA": "coco"}
    code = ("import json; from course_lib import config; "
            "print(json.dumps([str(config.annotation_file('val')), str(config.image_dir('val'))]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "notebooks", env=env,
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [str(tmp_path / "annotations" / "person_keypoints_val2017.json"),
                               str(tmp_path / "val2017")]


def _reads(text: str) -> bool:
    """Whether source text reads the variable from the environment (not only mentions it)."""
    return bool(re.search(r"(environ|getenv)[^\n]{0,40}COURSE_COCO_DIR", text))


def test_only_config_reads_the_variable():
    assert _reads('os.environ.get("COURSE_COCO_DIR", "")') and not _reads("``COURSE_COCO_DIR``")
    folders = ["course_lib", "data_scripts", "tools", "notebooks", "benchmarks"]
    readers = sorted(p.relative_to(ROOT).as_posix() for folder in folders
                     for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".ipynb")
                     and _reads(p.read_text(encoding="utf-8")))
    assert readers == ["course_lib/config.py"]
