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
