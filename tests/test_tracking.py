"""Experiment tracking (``course_lib.tracking``, ``python -m course_lib.train --logger``).

The logic (which rows are logged, when the drawing goes out, what a resume skips) is tested on
a recording tracker with no package needed; a smoke training with ``--logger tensorboard`` is
read back with TensorBoard's ``EventAccumulator``, and one with ``--logger wandb`` writes an
offline run folder whose records are read back. Nothing reaches the network: W&B is forced
offline, its base URL and every proxy point at a closed port of the loopback address.
"""

from __future__ import annotations

import glob
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from course_lib import config, tracking  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TRAIN_TAGS = ["train/loss", "train/lr"]
VAL_TAGS = ["val/AP", "val/AP50", "val/AP75", "val/APm", "val/APl",
            "val/AR", "val/AR50", "val/AR75", "val/ARm", "val/ARl"]
DEAD = "http://127.0.0.1:9"  # the discard port of this machine: nothing listens there


def _smoke_or_skip():
    if not config.annotation_file("train", profile="smoke").is_file():
        pytest.skip("smoke data missing: run `make data-smoke`")


class Recording(tracking.Tracker):
    """A tracker that keeps what it would log."""

    name = "recording"

    def _open(self):
        self.log = []

    def _scalars(self, values, step):
        self.log.append(("scalars", step, values))

    def _image(self, tag, image, step):
        self.log.append(("image", step, tag, image.shape))


def _row(step, **values):
    return {"step": step, "epoch": 0, "time_s": 1.0, "wall_s": 1.0, **values}


def test_callback_logs_each_new_row_once_and_the_drawing_with_its_validation():
    tracker = Recording(None, "unused")
    history = {"train": [_row(1, loss=0.5, lr=1e-3)], "val": []}
    tracker.callback(history)
    tracker.callback(history)  # nothing new: nothing logged
    assert tracker.log == [("scalars", 1, {"train/loss": 0.5, "train/lr": 1e-3})]
    tracker.pending = np.zeros((8, 6, 3), np.uint8)
    history["train"].append(_row(2, loss=0.4, lr=1e-3))
    history["val"].append(_row(2, AP=0.25, AP50=0.5))
    tracker.callback(history)
    assert tracker.log[1:] == [("scalars", 2, {"train/loss": 0.4, "train/lr": 1e-3}),
                               ("scalars", 2, {"val/AP": 0.25, "val/AP50": 0.5}),
                               ("image", 2, "val/predictions", (8, 6, 3))]
    assert tracker.pending is None


def test_a_resumed_tracker_skips_the_rows_of_its_checkpoint():
    history = {"train": [_row(1, loss=0.5, lr=1.0), _row(2, loss=0.4, lr=1.0)],
               "val": [_row(2, AP=0.1)]}
    tracker = Recording(None, "unused", resume=tracking.ResumePoint(2, 2, 1))
    history["train"].append(_row(3, loss=0.3, lr=1.0))
    tracker.callback(history)
    assert [entry[1] for entry in tracker.log] == [3]


def test_nothing_is_opened_before_the_first_row_and_none_logs_nothing(tmp_path):
    tracker = tracking.make_tracker(None, tmp_path, logger="none")
    assert tracker.wrap_validate(None, None) is None
    validate = tracker.wrap_validate(lambda model, device: {"AP": 1.0}, None)
    assert validate(None, "cpu") == {"AP": 1.0}  # "none" does not wrap
    tracker.callback({"train": [_row(1, loss=1.0, lr=1.0)], "val": []})
    tracker.close()
    recording = Recording(None, tmp_path)
    recording.close()
    assert not recording.opened and list(tmp_path.iterdir()) == []


def test_unknown_or_missing_loggers_are_refused():
    with pytest.raises(ValueError, match="logger: expected one of none, tensorboard, wandb"):
        tracking.check_logger("mlflow")
    assert tracking.available("none")
    assert tracking.default_logger() == ("tensorboard" if tracking.available("tensorboard")
                                         else "none")


def test_wandb_runs_offline_unless_logged_in(tmp_path, monkeypatch):
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert tracking.wandb_mode() == "offline"
    (tmp_path / "netrc").write_text("machine api.wandb.ai login user password " + "0" * 40 + "\n")
    assert tracking.wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert tracking.wandb_mode() is None  # W&B reads the variable itself


def test_pick_crops_spreads_over_the_set():
    assert tracking.pick_crops(10, 4) == [0, 3, 6, 9]
    assert tracking.pick_crops(2, 4) == [0, 1]
    assert tracking.pick_crops(0, 4) == []


@pytest.fixture(scope="module")
def val_set():
    _smoke_or_skip()
    from course_lib.train import make_config, make_dataset

    cfg = make_config("smoke", logger="none")
    return cfg, make_dataset(cfg, "val")


def test_drawing_shows_truth_above_prediction_for_heatmaps_and_a_head(val_set):
    from course_lib.heads import HeadNetwork
    from course_lib.models import build_pose_model

    cfg, dataset = val_set
    w, h = cfg.input_size
    torch.manual_seed(0)
    model = build_pose_model("resnet", depth=18, head_channels=16).train()
    image = tracking.draw_predictions(model, dataset, cfg, count=3)
    assert image.shape == (2 * 2 * h, 3 * 2 * w, 3) and image.dtype == np.uint8
    assert model.training  # the mode is restored
    simcc = HeadNetwork("simcc", 18, 17, cfg.heatmap_size, stride=4, deconv_channels=16)
    assert tracking.draw_predictions(simcc, dataset, cfg, count=2).shape == (4 * h, 4 * w, 3)


def test_a_failed_drawing_warns_and_validation_goes_on(tmp_path):
    tracker = Recording(None, tmp_path)
    validate = tracker.wrap_validate(lambda model, device: {"AP": 0.5}, dataset=[1, 2])
    with pytest.warns(UserWarning, match="could not draw"):
        assert validate(None, "cpu") == {"AP": 0.5}


def _train(args, tmp_path):
    from course_lib.train.__main__ import main

    return main(["--profile", "smoke", "--out", str(tmp_path / "run"), *args])


def test_tensorboard_event_file_holds_losses_lr_ap_and_drawings(tmp_path):
    _smoke_or_skip()
    pytest.importorskip("tensorboard", reason="tensorboard not installed: pip install -e .[track]")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    history = _train(["--logger", "tensorboard", "--set", "max_train_steps=2"], tmp_path)
    logdir = tmp_path / "run" / "tensorboard"
    assert len(list(logdir.glob("events.out.tfevents.*"))) == 1
    events = EventAccumulator(str(logdir), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    assert tags["scalars"] == TRAIN_TAGS + VAL_TAGS
    assert tags["images"] == ["val/predictions"]
    steps = [e.step for e in events.Scalars("train/loss")]
    assert steps == [row["step"] for row in history["train"]] == [1, 2]
    assert [e.value for e in events.Scalars("val/AP")] == pytest.approx(
        [row["AP"] for row in history["val"]])
    # a resume logs only what comes after its checkpoint: one series, no step twice
    _train(["--logger", "tensorboard", "--resume", "--force", "--set", "max_train_steps=3"],
           tmp_path)
    events = EventAccumulator(str(logdir))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]


def test_the_command_line_refuses_a_bad_logger(tmp_path, capsys):
    _smoke_or_skip()
    for args in (["--logger", "mlflow"], ["--set", "logger=mlflow"]):
        with pytest.raises(SystemExit) as stop:
            _train(args, tmp_path)
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) >= 1 and "error:" in err[-1] and "mlflow" in err[-1]
    assert not (tmp_path / "run").exists()


def test_the_command_line_picks_its_logger(monkeypatch, capsys):
    from course_lib.train.__main__ import parse_args

    _smoke_or_skip()
    assert parse_args(["--profile", "smoke"]).config.logger == tracking.default_logger()
    if tracking.available("tensorboard"):
        picked = parse_args(["--profile", "smoke", "--set", "logger=tensorboard"])
        assert picked.config.logger == "tensorboard"
    both = ["--profile", "smoke", "--logger", "none", "--set", "logger=wandb"]
    assert parse_args(both).config.logger == "none"  # the option wins over --set
    monkeypatch.setattr(tracking, "available", lambda name: name == "none")
    assert tracking.default_logger() == "none"  # no tensorboard: no tracking by default
    with pytest.raises(SystemExit) as stop:
        parse_args(["--profile", "smoke", "--logger", "tensorboard"])
    assert stop.value.code == 2
    assert "tensorboard package is not installed" in capsys.readouterr().err.splitlines()[-1]


def _wandb_history_keys(run_file: Path) -> set[str]:
    """The history keys of a W&B transaction log (LevelDB's log format: 32 KiB blocks of
    records ``crc32, length, type``; a 7-byte ``:W&B`` header first)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block = run_file.read_bytes(), 32768
    assert data[:4] == b":W&B"
    pos, pending, keys = 7, b"", set()
    while pos + 7 <= len(data):
        left = block - pos % block
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if left < 7 or (length == 0 and kind == 0):  # the rest of the block is padding
            pos += left
            continue
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            if record.WhichOneof("record_type") == "history":
                keys |= {item.key or "/".join(item.nested_key) for item in record.history.item}
    return keys


def test_wandb_offline_run_folder_holds_the_logged_keys(tmp_path):
    _smoke_or_skip()
    pytest.importorskip("wandb", reason="wandb not installed: pip install -e .[track]")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    home = tmp_path / "home"
    env.update(WANDB_MODE="offline", WANDB_BASE_URL=DEAD, WANDB_ERROR_REPORTING="false",
               WANDB_CONFIG_DIR=str(home / "config"), WANDB_CACHE_DIR=str(home / "cache"),
               WANDB_DATA_DIR=str(home / "data"), HOME=str(home), NETRC=str(home / "netrc"),
               HTTP_PROXY=DEAD, HTTPS_PROXY=DEAD, http_proxy=DEAD, https_proxy=DEAD,
               NO_PROXY="", no_proxy="")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "course_lib.train", "--profile", "smoke",
                           "--out", str(out), "--logger", "wandb", "--set", "max_train_steps=2"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = glob.glob(str(out / "wandb" / "offline-run-*"))
    assert len(runs) == 1, sorted(os.listdir(out / "wandb"))
    run = Path(runs[0])
    run_id = (out / "wandb-run-id").read_text().strip()
    assert run.name.endswith(f"-{run_id}") and (run / f"run-{run_id}.wandb").is_file()
    assert list((run / "files" / "media" / "images" / "val").glob("predictions_2_*.png"))
    keys = _wandb_history_keys(run / f"run-{run_id}.wandb")
    assert set(TRAIN_TAGS + VAL_TAGS) | {"val/predictions/path"} <= keys, sorted(keys)
