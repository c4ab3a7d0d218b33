"""course_lib.config: profiles, COURSE_PROFILE / COURSE_DATA, errors, paths independent of cwd."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib import config

ROOT = Path(__file__).resolve().parent.parent


def test_three_profiles_with_consistent_sizes():
    assert set(config.PROFILES) == {"smoke", "cpu", "gpu"} == set(config.PROFILE_NAMES)
    for name, p in config.PROFILES.items():
        assert p.name == name
        # (W, H) order: a portrait crop, heatmaps a quarter of the input
        assert p.input_size[0] < p.input_size[1]
        assert p.heatmap_size == (p.input_size[0] // 4, p.input_size[1] // 4)
        assert p.num_train_images > p.num_val_images > 0
    assert config.PROFILES["gpu"].input_size == (192, 256) and config.PROFILES["gpu"].data == "coco"
    assert config.PROFILES["cpu"].input_size == (96, 128)
    smoke, cpu = config.PROFILES["smoke"], config.PROFILES["cpu"]
    assert smoke.num_train_images < cpu.num_train_images


def test_env_var_selects_profile_and_argument_wins(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert config.get_profile().name == "smoke"
    monkeypatch.setenv("COURSE_PROFILE", " CPU ")
    assert config.profile_name() == "cpu"
    assert config.get_profile("gpu").name == "gpu"
    assert config.get_profile("smoke", batch_size=2).batch_size == 2
    monkeypatch.delenv("COURSE_PROFILE")
    assert config.profile_name() in ("cpu", "gpu")


def test_bad_profile_and_data_source_errors(monkeypatch):
    with pytest.raises(ValueError, match="profile: expected one of smoke, cpu, gpu.*'huge'"):
        config.get_profile("huge")
    monkeypatch.setenv("COURSE_PROFILE", "laptop")
    with pytest.raises(ValueError, match="COURSE_PROFILE"):
        config.get_profile()
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    monkeypatch.setenv("COURSE_DATA", "imagenet")
    with pytest.raises(ValueError, match="COURSE_DATA"):
        config.data_source()
    with pytest.raises(ValueError, match="split"):
        config.annotation_file("test")
    with pytest.raises(ValueError, match="which"):
        config.checkpoint_path("smoke", "final")
    with pytest.raises(ValueError, match="seed"):
        config.seed_everything(-1)


def test_data_paths(monkeypatch):
    monkeypatch.delenv("COURSE_DATA", raising=False)
    monkeypatch.delenv("COURSE_ROOT", raising=False)
    monkeypatch.delenv("COURSE_COCO_DIR", raising=False)
    assert config.repo_root() == ROOT
    assert config.data_dir(profile="smoke") == ROOT / "data" / "synthetic-smoke"
    assert config.data_dir(profile="cpu") == ROOT / "data" / "synthetic"
    assert config.annotation_file("val", profile="cpu") == (
        ROOT / "data" / "synthetic" / "annotations" / "person_keypoints_val.json")
    assert config.image_dir("train", profile="cpu") == ROOT / "data" / "synthetic" / "train"
    monkeypatch.setenv("COURSE_DATA", "coco")
    assert config.annotation_file("train", profile="smoke") == (
        ROOT / "data" / "coco" / "annotations" / "person_keypoints_train2017.json")
    assert config.image_dir("val", profile="cpu") == ROOT / "data" / "coco" / "val2017"
    assert config.checkpoint_path("smoke") == ROOT / "runs" / "smoke" / "best.pt"


def test_paths_do_not_depend_on_the_working_directory(tmp_path):
    code = ("from course_lib import config; print(config.repo_root()); "
            "print(config.annotation_file('train', profile='smoke'))")  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("COURSE_ROOT", None)
    env.pop("COURSE_DATA", None)
    outs = []
    for cwd in (tmp_path, ROOT / "notebooks", ROOT):
        res = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                             text=True, check=True)  # fmt: skip
        outs.append(res.stdout)
    assert outs[0] == outs[1] == outs[2]
    assert outs[0].splitlines()[0] == str(ROOT)


def test_seed_everything_is_reproducible():
    import random

    import numpy as np

    config.seed_everything(3)
    a = (random.random(), np.random.rand())
    config.seed_everything(3)
    assert (random.random(), np.random.rand()) == a


def test_check_env_reports_profile_and_data(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))  # an empty root: no data yet
    monkeypatch.delenv("COURSE_DATA", raising=False)
    info = config.check_env("smoke")
    out = capsys.readouterr().out
    assert info["profile"] == "smoke" and info["data_ready"] is False
    assert "expected_runtime" in out and "data missing" in out


# ---------------------------------------------------------------------------------------------
# write_atomic: durable, and what a killed save leaves behind is swept; check_free_space
# ---------------------------------------------------------------------------------------------

_HANG_IN_REPLACE = """
import os, sys, time
from course_lib import config

def hang(src, dst):  # the temporary file is written: a kill now interrupts the save
    print("ready", flush=True)
    time.sleep(120)

os.replace = hang
config.write_atomic(sys.argv[1], b"new" * 1000)
"""


def _start_hanging_writer(target: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", _HANG_IN_REPLACE, str(target)], env=env,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_write_atomic_fsyncs_the_file_before_replace_and_the_folder_after(tmp_path, monkeypatch):
    import stat

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src, dst):
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "sub" / "state.bin"
    assert config.write_atomic(target, b"abc") == target
    assert events == ["fsync file", "replace", "fsync dir"]
    assert target.read_bytes() == b"abc" and oct(target.stat().st_mode & 0o777) == "0o644"
    config.write_atomic(target, "text é")  # text as UTF-8, memoryviews too
    assert target.read_text(encoding="utf-8") == "text é"
    config.write_atomic(target, memoryview(b"view"))
    assert target.read_bytes() == b"view"


def test_temporary_files_of_a_killed_save_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "best.pt"
    config.write_atomic(target, b"old")
    others = [".best.pt.notes.tmp", "best.pt.tmp", ".latest.pt.0.tmp", ".best.pt.0.tmp.bak",
              ".best.pt.7.tmp.d"]  # not temporary files of this target: never touched
    for name in others:
        (tmp_path / name).write_bytes(b"keep")

    def temps() -> set[str]:
        return {p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")} - set(others)

    live = _start_hanging_writer(target)  # a save in progress: its temporary file stays
    try:
        live_tmp = temps()
        killed = [_start_hanging_writer(target) for _ in range(2)]
        for proc in killed:  # two saves killed (SIGKILL) after writing their temporary file
            proc.kill()
            proc.wait(timeout=30)
        assert len(temps()) == 3 and all(n.startswith(".best.pt.") for n in temps())
        assert target.read_bytes() == b"old"  # the killed saves changed nothing
        config.write_atomic(target, b"newest")
        assert target.read_bytes() == b"newest"
        assert {p.name for p in tmp_path.iterdir()} == {"best.pt", *others, *live_tmp}
    finally:
        live.kill()
        live.wait(timeout=30)
    config.write_atomic(target, b"final")  # the killed live save is swept as well
    assert {p.name for p in tmp_path.iterdir()} == {"best.pt", *others}
    assert target.read_bytes() == b"final"
    assert all((tmp_path / n).read_bytes() == b"keep" for n in others)


def test_check_free_space_names_the_folder_and_the_bytes(tmp_path, monkeypatch):
    import shutil

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda p: usage._replace(free=1000))  # fmt: skip
    config.check_free_space(tmp_path / "not" / "yet", 1000, "synthetic data")  # just enough
    with pytest.raises(OSError, match="synthetic data") as info:
        config.check_free_space(tmp_path / "not" / "yet", 5000, "synthetic data")
    text = str(info.value)
    assert str(tmp_path / "not" / "yet") in text and "5000" in text and "1000" in text
    import errno

    assert info.value.errno == errno.ENOSPC
    with pytest.raises(ValueError, match="need_bytes"):
        config.check_free_space(tmp_path, -1, "x")
