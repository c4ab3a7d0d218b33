"""Faults and bad input against training: nothing lost, no silent wrong result, clear errors.

Each test provokes one fault (an earlier run in the output folder, a changed config, a corrupt
or missing checkpoint, SIGINT/SIGTERM from outside, a non-finite gradient, a second writer, a
full disk, a bad config value) and checks what ``course_lib.train`` promises in
``docs/RELIABILITY.md``.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _train_helpers import BlobDataset, tiny_config  # noqa: E402

from course_lib import train as T  # noqa: E402
from course_lib.train import __main__ as cli  # noqa: E402
from course_lib.train import guards  # noqa: E402

HERE = Path(__file__).parent
ROOT = HERE.parent


class TinyPose(torch.nn.Module):
    """A small stand-in for the ResNet (stride 4, BatchNorm, a ``head.final_layer``): the loop,
    its checkpoints and its guards do not depend on the network, and a 150 MB ResNet-18
    checkpoint per save would make these tests slow."""

    def __init__(self, num_keypoints: int = 17) -> None:
        super().__init__()
        nn = torch.nn
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU())
        self.head = nn.Module()
        self.head.final_layer = nn.Conv2d(16, num_keypoints, 1)

    def forward(self, x):
        return self.head.final_layer(self.backbone(x))


def tiny_model(cfg):
    return TinyPose(cfg.num_keypoints)


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setattr(T, "build_model", tiny_model)


def _cfg(**overrides):
    return tiny_config(epochs=2, batch_size=4, lr_steps=(1,), **overrides)  # 8 steps


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same_weights(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def _stopped_run(out, cfg=None, step=3):
    """A run interrupted after ``step`` steps: latest.pt and best.pt in ``out``."""
    T.train(cfg or _cfg(), out, train_dataset=BlobDataset(16), stop_at_step=step, progress=False)
    return out


def _cli_main(argv, monkeypatch, capsys, data=None):
    """``python -m course_lib.train`` in this process on blob data; returns (code, stderr)."""
    monkeypatch.setattr(cli, "make_datasets", lambda cfg: (data or BlobDataset(16), None))
    monkeypatch.setattr(cli.predict, "make_validator", lambda dataset, cfg: None)
    try:
        cli.main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


TINY_SET = ["--set", "depth=18", "input_size=64,64", "heatmap_size=16,16", "batch_size=4",
            "lr=1e-3", "epochs=2", "lr_steps=1", "warmup_steps=2", "max_train_minutes=None",
            "max_train_steps=None", "num_workers=0"]  # tiny_config(epochs=2, ...) as --set


def _one_error_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert lines and lines[-1].startswith("python -m course_lib.train: error: "), err
    return lines[-1]


# ---------------------------------------------------------------------------------------------
# 1. an earlier run is never overwritten silently
# ---------------------------------------------------------------------------------------------

def test_train_refuses_a_folder_with_checkpoints_unless_forced(tmp_path):
    out = _stopped_run(tmp_path / "run")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(FileExistsError, match=re.escape(str(out)) + ".*resume.*force"):
        T.train(_cfg(), out, train_dataset=BlobDataset(16), progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched
    _, hist = T.train(_cfg(), out, train_dataset=BlobDataset(16), force=True, progress=False)
    assert hist["finished"] and hist["train"][0]["step"] == 1  # started again from step 0


def test_forced_fresh_run_replaces_a_stale_best_checkpoint(tmp_path):
    out = _stopped_run(tmp_path / "run", cfg=_cfg(lr=5e-4))
    T.train(_cfg(), out, train_dataset=BlobDataset(16), force=True, stop_at_step=1,
            progress=False)
    assert T.load_checkpoint(out / "best.pt")["config"]["lr"] == 1e-3  # not the old run's


@pytest.mark.parametrize("existing", ["best.pt", "notes.txt"])
def test_train_cli_refuses_a_non_empty_out_folder(tmp_path, monkeypatch, capsys, existing):
    out = tmp_path / "run"
    out.mkdir()
    (out / existing).write_bytes(b"a day of training")
    code, err = _cli_main(["--profile", "smoke", "--out", str(out), *TINY_SET], monkeypatch,
                          capsys)
    line = _one_error_line(err)
    assert code == 2 and str(out) in line and "--resume" in line and "--force" in line
    assert (out / existing).read_bytes() == b"a day of training"
    assert sorted(p.name for p in out.iterdir()) == [existing]


def test_train_cli_force_starts_again(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("old")
    code, _ = _cli_main(["--profile", "smoke", "--out", str(out), "--force", *TINY_SET,
                         "max_train_steps=2"], monkeypatch, capsys)
    assert code == 0 and T.load_checkpoint(out / "latest.pt")["step"] == 2


# ---------------------------------------------------------------------------------------------
# 2. resuming with another config
# ---------------------------------------------------------------------------------------------

def test_resume_with_a_different_config_is_refused_unless_forced(tmp_path):
    out = _stopped_run(tmp_path / "run")
    changed = _cfg(lr=2e-3, seed=1)
    with pytest.raises(ValueError, match=r"lr: 0\.001 -> 0\.002.*seed: 0 -> 1") as info:
        T.train(changed, out, train_dataset=BlobDataset(16), resume=True, progress=False)
    assert "force" in str(info.value) and str(out / "latest.pt") in str(info.value)
    assert T.load_checkpoint(out / "latest.pt")["step"] == 3  # nothing trained, nothing saved
    # runtime fields may differ (how the run executes, not what it learns)
    _, hist = T.train(_cfg(num_workers=0, eval_every_minutes=9.0), out,
                      train_dataset=BlobDataset(16), resume=True, stop_at_step=4, progress=False)
    assert hist["train"][-1]["step"] == 4 and "config_changes" not in hist
    _, hist = T.train(changed, out, train_dataset=BlobDataset(16), resume=True, force=True,
                      progress=False)
    assert hist["finished"]
    assert hist["config_changes"] == [{"step": 4, "lr": [1e-3, 2e-3], "seed": [0, 1]}]
    assert T.load_checkpoint(out / "latest.pt")["config"]["lr"] == 2e-3


def test_train_cli_resume_lists_the_changed_fields(tmp_path, monkeypatch, capsys):
    out = _stopped_run(tmp_path / "run")
    code, err = _cli_main(["--profile", "smoke", "--out", str(out), "--resume", *TINY_SET,
                           "sigma=3.0"], monkeypatch, capsys)
    line = _one_error_line(err)
    assert code == 2 and "sigma: 2.0 -> 3.0" in line and "--force" in line


# ---------------------------------------------------------------------------------------------
# 3. resuming with nothing to resume
# ---------------------------------------------------------------------------------------------

def test_resume_without_latest_is_an_error_naming_the_folder(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty"
    with pytest.raises(FileNotFoundError, match=re.escape(str(empty))):
        T.train(_cfg(), empty, train_dataset=BlobDataset(16), resume=True, progress=False)
    assert not (empty / "latest.pt").exists()
    code, err = _cli_main(["--profile", "smoke", "--out", str(empty), "--resume", *TINY_SET],
                          monkeypatch, capsys)
    line = _one_error_line(err)
    assert code == 2 and str(empty) in line and "latest.pt" in line
    assert not (empty / "latest.pt").exists()  # did not train from scratch


# ---------------------------------------------------------------------------------------------
# 4. a corrupt checkpoint
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_a_corrupt_checkpoint_is_named(tmp_path, damage):
    path = tmp_path / "latest.pt"
    T.save_checkpoint({"a": torch.ones(3)}, path)
    blob = path.read_bytes()
    path.write_bytes({"truncated": blob[: len(blob) // 2], "empty": b"",
                      "garbage": b"not a checkpoint" * 8}[damage])
    with pytest.raises(T.CheckpointError, match=re.escape(str(path)) + ".*corrupt"):
        T.load_checkpoint(path)


def test_a_checkpoint_holding_code_is_refused_by_name(tmp_path):
    path = tmp_path / "latest.pt"
    torch.save({"model": os.system}, path)  # loading it unguarded would import and call code
    with pytest.raises(T.CheckpointError, match=re.escape(str(path)) + ".*weights_only"):
        T.load_checkpoint(path)


def test_resume_from_a_corrupt_latest_names_it_and_uses_best_only_when_told(tmp_path):
    out = _stopped_run(tmp_path / "run", step=4)  # end of epoch 0: latest == best, step 4
    T.train(_cfg(), out, train_dataset=BlobDataset(16), resume=True, stop_at_step=6,
            progress=False)
    (out / "latest.pt").write_bytes((out / "latest.pt").read_bytes()[:1000])
    with pytest.raises(T.CheckpointError) as info:
        T.train(_cfg(), out, train_dataset=BlobDataset(16), resume=True, progress=False)
    message = str(info.value)
    assert str(out / "latest.pt") in message and "corrupt" in message
    assert "resume_from='best'" in message and "--resume-from best" in message
    resumed, hist = T.train(_cfg(), out, train_dataset=BlobDataset(16), resume=True,
                            resume_from="best", progress=False)
    assert hist["finished"] and hist["train"][-1]["step"] == 8
    straight, _ = T.train(_cfg(), tmp_path / "straight", train_dataset=BlobDataset(16),
                          progress=False)
    _same_weights(_weights(straight), _weights(resumed))  # best.pt resumes exactly too
    with pytest.raises(ValueError, match="resume_from"):
        T.train(_cfg(), out, train_dataset=BlobDataset(16), resume=True, resume_from="oldest")


# ---------------------------------------------------------------------------------------------
# 5. SIGINT / SIGTERM write a checkpoint that resumes exactly
# ---------------------------------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    import torch
    from _train_helpers import BlobDataset
    import course_lib.train as train_package
    from course_lib.train import __main__ as cli
    from test_faults_train import tiny_model

    torch.set_num_threads(1)
    marker, sent = Path(sys.argv[2]), Path(sys.argv[3])
    cli.make_datasets = lambda cfg: (BlobDataset(16), None)
    train_package.build_model = tiny_model
    cli.predict.make_validator = lambda dataset, cfg: None
    plain = cli.train

    def wait_for_the_signal(history):  # at step 2: tell the test, wait until it has signalled
        if history["train"] and history["train"][-1]["step"] == 2 and not marker.exists():
            marker.touch()
            deadline = time.time() + 120
            while not sent.exists() and time.time() < deadline:
                time.sleep(0.02)

    def train_and_wait(*a, callback=None, **k):  # the command line's own callback runs too
        def both(history):
            if callback is not None:
                callback(history)
            wait_for_the_signal(history)

        return plain(*a, callback=both, **k)

    cli.train = train_and_wait
    cli.main(sys.argv[4:])
""")


def _signalled_child(tmp_path, argv, signum):
    """Run the command line in a child process; send it ``signum`` once it is at step 2."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    marker, sent = tmp_path / "at_step_2", tmp_path / "signalled"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(script), str(HERE), str(marker), str(sent),
                             *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 240
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), proc.communicate()[1][-3000:]
    proc.send_signal(signum)
    sent.touch()
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_writes_a_checkpoint_that_resumes_exactly(tmp_path, monkeypatch, signum):
    out = tmp_path / "run"
    argv = ["--profile", "smoke", "--out", str(out), *TINY_SET]
    code, err = _signalled_child(tmp_path, argv, signum)
    assert code == 128 + signum, err[-3000:]
    assert "Traceback" not in err
    last = [line for line in err.splitlines() if line.strip()][-1]
    name = signal.Signals(signum).name
    assert name in last and str(out / "latest.pt") in last and "--resume" in last, err
    assert T.load_checkpoint(out / "latest.pt")["step"] == 2  # at the step boundary
    assert not (out / guards.LOCK_NAME).exists()
    monkeypatch.setattr(cli, "make_datasets", lambda cfg: (BlobDataset(16), None))
    monkeypatch.setattr(cli.predict, "make_validator", lambda dataset, cfg: None)
    cli.main([*argv, "--resume"])  # what a learner types next
    resumed = T.load_checkpoint(out / "latest.pt")
    assert resumed["history"]["finished"] and resumed["step"] == 8
    straight, hist = T.train(_cfg(), tmp_path / "straight", train_dataset=BlobDataset(16),
                             progress=False)
    _same_weights(_weights(straight), resumed["model"])
    assert [r["loss"] for r in resumed["history"]["train"]] == [r["loss"] for r in hist["train"]]


def test_library_interrupt_is_a_keyboard_interrupt_with_the_checkpoint(tmp_path):
    out, before = tmp_path / "run", signal.getsignal(signal.SIGINT)

    def interrupt(history):
        if history["train"][-1]["step"] == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt) as info:
        T.train(_cfg(), out, train_dataset=BlobDataset(16), callback=interrupt, progress=False)
    assert isinstance(info.value, T.Interrupted)
    assert info.value.step == 3 and info.value.checkpoint == out / "latest.pt"
    assert T.load_checkpoint(out / "latest.pt")["step"] == 3
    assert signal.getsignal(signal.SIGINT) is before  # the handler is restored


def test_a_second_signal_stops_at_once_and_threads_are_left_alone():
    import threading

    with guards.StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        assert stop.name == "SIGTERM"  # noted, the process lives on to save
        with pytest.raises(KeyboardInterrupt, match="again"):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    errors = []

    def in_a_thread():  # Python allows signal handlers only in the main thread
        try:
            with guards.StopSignals() as inner:
                errors.append(inner.signum)
        except Exception as exc:  # pragma: no cover - the failure this test looks for
            errors.append(exc)

    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join()
    assert errors == [None]


def test_resume_from_without_resume_is_refused(capsys):
    with pytest.raises(SystemExit) as info:
        cli.parse_args(["--profile", "smoke", "--resume-from", "best"])
    assert info.value.code == 2 and "--resume-from: only with --resume" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# 6. non-finite loss and gradients
# ---------------------------------------------------------------------------------------------

class NanImages(BlobDataset):
    def __getitem__(self, i):
        item = super().__getitem__(i)
        if i == 5:
            item["image"][0, 0, 0] = float("nan")
        return item


def test_a_non_finite_loss_names_the_step(tmp_path):
    with pytest.raises(FloatingPointError, match=r"loss is nan at step \d+"):
        T.train(_cfg(), tmp_path, train_dataset=NanImages(16), progress=False)


def test_a_non_finite_gradient_names_the_step_and_the_parameter(tmp_path, monkeypatch):
    plain = T.build_model
    calls = []

    def poisoned(cfg):
        model = plain(cfg)
        weight = model.head.final_layer.weight

        def hook(grad):
            calls.append(1)
            return grad * float("inf") if len(calls) == 3 else grad

        weight.register_hook(hook)
        return model

    monkeypatch.setattr(T, "build_model", poisoned)
    with pytest.raises(FloatingPointError,
                       match=r"gradient of head\.final_layer\.weight is not finite .*at step 2"):
        T.train(_cfg(), tmp_path / "run", train_dataset=BlobDataset(16), progress=False)


# ---------------------------------------------------------------------------------------------
# 7. one writer per output folder
# ---------------------------------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from course_lib.train import guards
    with guards.run_folder_lock(Path(sys.argv[1])):
        Path(sys.argv[2]).touch()
        time.sleep(120)
""")


def test_two_runs_cannot_write_one_folder(tmp_path, monkeypatch, capsys):
    out, held = tmp_path / "run", tmp_path / "held"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out), str(held)], env=env)
    try:
        deadline = time.time() + 60
        while not held.exists() and time.time() < deadline:
            time.sleep(0.05)
        with pytest.raises(T.RunFolderLocked, match=re.escape(str(out)) + f".*{holder.pid}"):
            T.train(_cfg(), out, train_dataset=BlobDataset(16), progress=False)
        code, err = _cli_main(["--profile", "smoke", "--out", str(out), "--force", *TINY_SET],
                              monkeypatch, capsys)
        assert code == 2 and str(out) in _one_error_line(err) and "in use" in err
    finally:
        holder.kill()
        holder.wait()
    assert not (out / "latest.pt").exists()
    # the holder died without cleaning up: its lock file is left, and the lock is free again
    _, hist = T.train(_cfg(), out, train_dataset=BlobDataset(16), stop_at_step=1,
                      progress=False)
    assert hist["train"][-1]["step"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "latest.pt"]


# ---------------------------------------------------------------------------------------------
# 8. bad config values
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("max_train_steps", 0), ("max_train_steps", -5), ("max_train_minutes", 0.0),
    ("max_train_minutes", -1.0), ("eval_every_minutes", 0), ("eval_every_minutes", -2.0),
    ("lr", -1e-3), ("lr", 0.0), ("lr", math.nan), ("lr", math.inf), ("lr", "big"),
    ("depth", "18"), ("depth", 18.0), ("sigma", 0.0), ("seed", -1), ("batch_size", 0),
    ("warmup_steps", -1), ("epochs", 0), ("num_workers", -1), ("lr_steps", (3, -1)),
    ("max_train_steps", True), ("pretrained", "no"), ("augment", "strong"),
    ("max_train_minutes", math.inf), ("head_channels", 0), ("num_keypoints", 0),
])
def test_bad_config_values_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=rf"^{field}: expected "):
        tiny_config(**{field: value})


@pytest.mark.parametrize("item", ["max_train_steps=-3", "max_train_steps=1.5", "lr=-0.1",
                                  "lr=abc", "max_train_minutes=0", "eval_every_minutes=-1",
                                  "lr=nan", "seed=-2"])
def test_bad_set_values_are_one_error_line(item, capsys):
    with pytest.raises(SystemExit) as info:
        cli.parse_args(["--profile", "smoke", "--set", item])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"error: --set {item.split('=')[0]}" in err or f"error: {item.split('=')[0]}:" in err


def test_good_config_values_still_pass():
    cfg = tiny_config(lr=2, sigma=3, max_train_minutes=1, eval_every_minutes=None)
    assert cfg.lr == 2 and cfg.max_train_minutes == 1
    assert T.TrainConfig.from_dict(cfg.to_dict()) == cfg


# ---------------------------------------------------------------------------------------------
# 9. free space and temporary files
# ---------------------------------------------------------------------------------------------

def _full_disk(monkeypatch, free=10_000):
    import shutil

    usage = shutil.disk_usage(ROOT)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=free))


def test_a_full_disk_is_refused_before_writing_and_keeps_the_old_checkpoint(tmp_path,
                                                                          monkeypatch):
    path = T.save_checkpoint({"a": torch.ones(1)}, tmp_path / "latest.pt")
    _full_disk(monkeypatch)
    with pytest.raises(OSError, match=re.escape(str(tmp_path)) + ".*free") as info:
        T.save_checkpoint({"a": torch.ones(100_000)}, path)
    assert "latest.pt" in str(info.value)
    assert torch.equal(T.load_checkpoint(path)["a"], torch.ones(1))
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]


def test_a_full_disk_during_training_is_one_cli_error_line(tmp_path, monkeypatch, capsys):
    _full_disk(monkeypatch)
    code, err = _cli_main(["--profile", "smoke", "--out", str(tmp_path / "run"), *TINY_SET,
                           "max_train_steps=2"], monkeypatch, capsys)
    assert code == 2 and "free" in _one_error_line(err)


def test_stale_temporary_files_of_a_killed_save_do_not_pile_up(tmp_path):
    """Saves killed between writing their temporary file and renaming it leave those files
    (``.latest.pt.<n>.tmp``); the next save of the same checkpoint removes them, and a new
    run's folder check does not count them as an earlier run."""
    for slot in (0, 1):
        (tmp_path / f".latest.pt.{slot}.tmp").write_bytes(b"half a checkpoint")
    guards.refuse_fresh_start(tmp_path, any_file=True)  # nothing but leftovers: not refused
    T.save_checkpoint({"a": torch.ones(1)}, tmp_path / "latest.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]
