"""course_lib.train: learning-rate schedule, checkpoints, exact resume, DDP, a smoke run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _train_helpers import BlobDataset, tiny_config  # noqa: E402

from course_lib import config, evaluate, predict  # noqa: E402
from course_lib import train as T  # noqa: E402

HERE = Path(__file__).parent


def test_learning_rate_warmup_and_decay_pinned():
    lr = [T.learning_rate(s, base_lr=1e-3, warmup_steps=4) for s in range(6)]
    np.testing.assert_allclose(lr, [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    kw = dict(base_lr=1e-3, warmup_steps=4, milestones=(90 / 140, 120 / 140))
    assert T.learning_rate(1000, progress=0.5, **kw) == pytest.approx(1e-3)
    assert T.learning_rate(1000, progress=90 / 140, **kw) == pytest.approx(1e-4)
    assert T.learning_rate(1000, progress=0.9, **kw) == pytest.approx(1e-5)
    with pytest.raises(ValueError, match="step"):
        T.learning_rate(-1, base_lr=1e-3, warmup_steps=4)


def test_schedule_reads_milestones_as_fractions_of_steps_or_time():
    cfg = tiny_config(epochs=4, lr_steps=(2, 3), warmup_steps=0, max_train_minutes=1.0)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0)
    sched = T.Schedule(opt, cfg, total_steps=100)
    sched.step_count = 10
    assert sched.apply() == pytest.approx(cfg.lr) and opt.param_groups[0]["lr"] == sched.lr()
    sched.step_count = 50
    assert sched.lr() == pytest.approx(cfg.lr * 0.1)
    sched.step_count, sched.elapsed_s = 10, 45.0  # 75 % of the one-minute budget used
    assert sched.lr() == pytest.approx(cfg.lr * 0.01)


def test_make_config_and_compatible(monkeypatch):
    monkeypatch.setattr(config, "data_version", lambda source=None, profile=None: 2)
    cfg = T.make_config("cpu")
    prof = config.get_profile("cpu")
    assert cfg.depth == prof.depth and cfg.input_size == prof.input_size
    assert cfg.zero_init_residual is True and cfg.num_keypoints == 17
    assert T.compatible(cfg.to_dict(), T.make_config("cpu", num_workers=0))
    assert not T.compatible(cfg, T.make_config("cpu", lr=1e-4))
    # a checkpoint trained on an older generation of the synthetic data is not reused
    assert cfg.data_version == 2
    assert not T.compatible({**cfg.to_dict(), "data_version": 1}, cfg)
    with pytest.raises(ValueError, match="unknown keys"):
        T.make_config("cpu", learning_rate=1)
    with pytest.raises(ValueError, match="encoding"):
        T.make_config("cpu", encoding="dark")
    with pytest.raises(ValueError, match="budget_clock"):
        T.make_clock("sundial")


def test_data_version_is_read_from_the_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    monkeypatch.delenv("COURSE_DATA", raising=False)
    assert config.data_version("synthetic", "cpu") is None  # no data yet
    manifest = tmp_path / "data" / "synthetic" / config.MANIFEST_NAME
    manifest.parent.mkdir(parents=True)
    manifest.write_text('{"spec": {"version": 7}}')
    assert config.data_version("synthetic", "cpu") == 7
    assert T.make_config("cpu").data_version == 7
    assert config.data_version("coco", "cpu") is None


def test_config_round_trips_and_reads_old_checkpoints():
    cfg = tiny_config()
    assert T.TrainConfig.from_dict(cfg.to_dict()) == cfg
    as_lists = {**cfg.to_dict(), "input_size": [64, 64], "lr_steps": [1]}  # JSON-like
    assert T.TrainConfig.from_dict(as_lists) == cfg
    old = T.TrainConfig.from_dict({"depth": 18, "num_keypoints": 17, "input_size": [96, 128],
                                   "heatmap_size": [24, 32], "sigma": 2.0, "encoding": "msra"})
    assert old.head_channels == 256 and old.zero_init_residual is False and old.depth == 18
    with pytest.raises(ValueError, match="unknown keys.*'colour'"):
        T.TrainConfig.from_dict({"colour": "red"})


@pytest.mark.parametrize("item, key, value", [
    ("eval_every_minutes=None", "eval_every_minutes", None),
    ("eval_every_minutes=2.5", "eval_every_minutes", 2.5),
    ("lr=2e-3", "lr", 0.002),
    ("depth=18", "depth", 18),
    ("pretrained=false", "pretrained", False),
    ("input_size=96,128", "input_size", (96, 128)),
    ("input_size=[96, 128]", "input_size", (96, 128)),
    ("lr_steps=", "lr_steps", ()),
    ("lr_steps=15,18", "lr_steps", (15, 18)),
    ('augment={"rotation_factor": 15}', "augment", {"rotation_factor": 15}),
    ("augment=None", "augment", None),
    ("encoding=udp", "encoding", "udp"),
])
def test_set_values_are_read_by_field_type(item, key, value):
    assert T.parse_overrides([item]) == {key: value}
    assert getattr(T.make_config("smoke", **T.parse_overrides([item])), key) == value


@pytest.mark.parametrize("item, message", [
    ("depth=eighteen", "--set depth: expected an int, got 'eighteen'"),
    ("depth=None", "--set depth: None is not allowed"),
    ("input_size=96", "--set input_size: expected comma-separated ints"),
    ("pretrained=maybe", "--set pretrained: expected true or false"),
    ("learning_rate=1", "--set learning_rate: unknown key"),
    ("lr", "--set: expected KEY=VALUE"),
])
def test_bad_set_values_name_the_field(item, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        T.parse_overrides([item])


def test_train_cli_reports_a_bad_set_value_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "course_lib.train", "--profile", "smoke",
                           "--set", "eval_every_minutes=soon"], capture_output=True, text=True,
                          cwd=HERE.parent, timeout=120)
    assert proc.returncode == 2
    assert "error: --set eval_every_minutes: expected a number, got 'soon'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_rng_state_round_trip():
    state = T.rng_state()
    a = (np.random.rand(), torch.rand(1).item(), __import__("random").random())
    T.set_rng_state(state)
    assert (np.random.rand(), torch.rand(1).item(), __import__("random").random()) == a


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_is_bit_identical(tmp_path):
    torch.set_num_threads(1)
    cfg = tiny_config(epochs=2, batch_size=4, lr_steps=(1,))  # 4 steps per epoch, 8 in all
    data = BlobDataset(16)
    straight, hist = T.train(cfg, tmp_path / "a", train_dataset=data, progress=False)
    assert hist["train"][-1]["step"] == 8 and hist["finished"]
    # stop in the middle of epoch 0, then resume twice as a learner would
    _, h1 = T.train(cfg, tmp_path / "b", train_dataset=data, stop_at_step=3, progress=False)
    assert not h1["finished"] and T.load_checkpoint(tmp_path / "b" / "latest.pt")["step"] == 3
    _, h2 = T.train(cfg, tmp_path / "b", train_dataset=data, resume=True, stop_at_step=6,
                    progress=False)
    resumed, h3 = T.train(cfg, tmp_path / "b", train_dataset=data, resume=True, progress=False)
    assert h3["finished"] and h3["train"][-1]["step"] == 8
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name  # bit for bit, BN statistics included
    assert [r["loss"] for r in h3["train"]] == [r["loss"] for r in hist["train"]]
    # the weights did move, and a third resume of a finished run trains no further
    init = T.build_model(cfg)
    assert not torch.equal(init.state_dict()["head.final_layer.weight"], a["head.final_layer.weight"])
    again, h4 = T.train(cfg, tmp_path / "b", train_dataset=data, resume=True, progress=False)
    assert torch.equal(_weights(again)["head.final_layer.weight"], b["head.final_layer.weight"])
    assert h4["train"][-1]["step"] == 8


def test_checkpoint_keys_atomic_write_and_load_model(tmp_path):
    cfg = tiny_config(epochs=1, batch_size=8)
    T.train(cfg, tmp_path, train_dataset=BlobDataset(16), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "latest.pt"]  # no temp left
    ckpt = T.load_checkpoint(tmp_path / "latest.pt")
    for key in ("model", "optimizer", "scheduler", "rng", "config", "epoch", "step", "history"):
        assert key in ckpt, key
    for key in ("depth", "num_keypoints", "input_size", "heatmap_size", "sigma", "encoding"):
        assert key in ckpt["config"], key
    assert ckpt["step"] == 2 and ckpt["epoch"] == 0
    model, cfg_loaded = predict.load_model(tmp_path / "best.pt")
    assert not model.training and cfg_loaded.depth == 18
    assert T.compatible(cfg_loaded, cfg) and cfg_loaded == cfg
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        predict.load_model(tmp_path / "missing.pt")
    torch.save(model.state_dict(), tmp_path / "bare.pt")  # a bare state dict is not a checkpoint
    with pytest.raises(ValueError, match="bare.pt: expected a course_lib.train checkpoint"):
        predict.load_model(tmp_path / "bare.pt")


def test_save_checkpoint_leaves_the_old_file_when_writing_fails(tmp_path):
    path = T.save_checkpoint({"a": torch.ones(1)}, tmp_path / "latest.pt")

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        T.save_checkpoint({"a": Unpicklable()}, path)
    assert torch.equal(T.load_checkpoint(path)["a"], torch.ones(1))
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]


def test_ddp_two_processes_hold_identical_weights(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(HERE.parent))
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(HERE / "_ddp_worker.py"), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world"] == r1["world"] == 2
    # 16 crops, 2 per process and step: 4 steps; each rank saw different crops ...
    assert len(r0["losses"]) >= 1 and r0["losses"] != r1["losses"]
    # ... yet gradients were averaged, so the trained parameters are the same on both ranks
    init = T.build_model(tiny_config())
    for name, tensor in r0["model"].items():
        if "running" in name or "num_batches" in name:
            continue  # BatchNorm statistics stay per process (no SyncBatchNorm)
        assert torch.equal(tensor, r1["model"][name]), name
    assert not torch.equal(r0["model"]["head.final_layer.weight"],
                           init.state_dict()["head.final_layer.weight"])
    assert (tmp_path / "run" / "latest.pt").is_file()


def _smoke_data_or_skip():
    if not config.annotation_file("train", profile="smoke").is_file():
        pytest.skip("smoke data missing: run `make data-smoke`")


def test_smoke_profile_loss_falls_and_validation_runs(tmp_path):
    """The smoke profile's recipe, on 8 fixed crops seen again and again, must fit them."""
    _smoke_data_or_skip()
    from course_lib.data import TopDownDataset

    torch.set_num_threads(1)
    cfg = T.make_config("smoke", epochs=10, max_train_steps=None, max_train_minutes=None)
    prof = config.get_profile("smoke")
    crops = TopDownDataset(config.annotation_file("train", profile=prof),
                           config.image_dir("train", profile=prof), input_size=prof.input_size,
                           heatmap_size=prof.heatmap_size, sigma=prof.sigma, train=False)
    val = torch.utils.data.Subset(crops, range(8, 16))
    val.ann_file = crops.ann_file
    model, hist = T.train(cfg, tmp_path, train_dataset=torch.utils.data.Subset(crops, range(8)),
                          validate_fn=predict.make_validator(val, cfg), progress=False)
    losses = [r["loss"] for r in hist["train"]]
    assert len(losses) == 10
    assert losses[-1] < 0.85 * losses[0], losses
    stats = hist["val"][-1]
    assert set(evaluate.STAT_NAMES) <= set(stats) and 0.0 <= stats["AP"] <= 1.0
    assert (tmp_path / "best.pt").is_file()


def test_ground_truth_heatmaps_score_high_through_the_evaluation_path():
    """Target heatmaps -> decode -> crop -> image -> COCOeval: the back-mapping is right."""
    _smoke_data_or_skip()
    from course_lib.data import TopDownDataset

    prof = config.get_profile("smoke")
    ds = TopDownDataset(config.annotation_file("val", profile=prof),
                        config.image_dir("val", profile=prof), input_size=prof.input_size,
                        heatmap_size=prof.heatmap_size, sigma=prof.sigma)
    loader = torch.utils.data.DataLoader(ds, batch_size=16)
    results = []
    for batch in loader:
        results += predict.heatmaps_to_results(batch["heatmaps"].numpy(), batch["meta"],
                                               input_size=prof.input_size, decoder="dark")
    stats = evaluate.evaluate_keypoints(ds.ann_file, results)
    # only the integer-centred MSRA targets limit it (0.895 on this split); a wrong
    # centre/scale or pixel convention falls far below
    assert stats["AP"] > 0.85 and stats["AP50"] == 1.0
    shifted = [dict(r, keypoints=[v + 2.0 if i % 3 == 0 else v
                                  for i, v in enumerate(r["keypoints"])]) for r in results]
    assert evaluate.evaluate_keypoints(ds.ann_file, shifted)["AP"] < stats["AP"] - 0.1


def test_resume_is_bit_identical_with_augmented_smoke_data(tmp_path):
    """The same with TopDownDataset's random augmentation drawn in the main process."""
    _smoke_data_or_skip()
    torch.set_num_threads(1)
    cfg = T.make_config("smoke", max_train_steps=4, max_train_minutes=None, num_workers=0)
    weights = []
    for out, stops in [(tmp_path / "a", [None]), (tmp_path / "b", [2, None])]:
        for i, stop in enumerate(stops):
            train_set, _ = T.make_datasets(cfg)
            model, hist = T.train(cfg, out, train_dataset=train_set, resume=i > 0,
                                  stop_at_step=stop, progress=False)
        weights.append(_weights(model))
        assert hist["finished"] and hist["train"][-1]["step"] == 4
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name


def test_the_budget_clock_comes_from_the_environment_and_is_a_runtime_field(monkeypatch):
    monkeypatch.delenv("COURSE_BUDGET_CLOCK", raising=False)
    wall = T.make_config("cpu")
    assert wall.budget_clock == "wall"
    monkeypatch.setenv("COURSE_BUDGET_CLOCK", "cpu")
    cpu = T.make_config("cpu")
    assert cpu.budget_clock == "cpu" and T.compatible(cpu, wall)  # how a budget is measured
    monkeypatch.setenv("COURSE_BUDGET_CLOCK", "sundial")
    with pytest.raises(ValueError, match="COURSE_BUDGET_CLOCK"):
        T.make_config("cpu")


def test_a_text_field_takes_the_word_none():
    assert T.parse_overrides(["logger=none"]) == {"logger": "none"}
    assert T.make_config("smoke", **T.parse_overrides(["logger=wandb"])).logger == "wandb"
    with pytest.raises(ValueError, match="logger: expected one of none, tensorboard, wandb"):
        T.make_config("smoke", logger="mlflow")


def test_autocast_is_bfloat16_only_when_asked_and_the_cpu_computes_it(monkeypatch):
    from course_lib.train import network

    cpu = torch.device("cpu")
    assert network.autocast_dtype(tiny_config(cpu_bf16=False), cpu) is None
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert network.autocast_dtype(tiny_config(cpu_bf16=True), cpu) is None  # would be emulated
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert network.autocast_dtype(tiny_config(cpu_bf16=True), cpu) is torch.bfloat16
    assert network.autocast_dtype(tiny_config(), torch.device("cuda")) is torch.float16


def test_a_bfloat16_step_learns_with_a_float32_loss_and_float32_weights(tmp_path, monkeypatch):
    """The forward pass in bfloat16 (forced here, whatever this CPU has), the loss and the
    weights in float32; the loss falls as in float32 and ends close to float32's."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    torch.set_num_threads(1)
    data = BlobDataset(16)
    losses = {}
    for bf16 in (False, True):
        cfg = tiny_config(epochs=3, batch_size=4, lr_steps=(), cpu_bf16=bf16)
        model, hist = T.train(cfg, tmp_path / str(bf16), train_dataset=data, progress=False)
        assert all(p.dtype == torch.float32 for p in model.parameters())
        losses[bf16] = [r["loss"] for r in hist["train"]]
    assert losses[True] != losses[False]  # bfloat16 did compute something else
    assert losses[True][-1] < 0.8 * losses[True][0]
    assert abs(losses[True][-1] - losses[False][-1]) < 0.25 * losses[False][-1]


def test_the_cpu_profile_takes_its_encoding_and_precision_from_the_profile():
    cfg = T.make_config("cpu")
    extra = config.get_profile("cpu").extra
    assert cfg.encoding == extra.get("encoding", "msra")
    assert cfg.cpu_bf16 is bool(extra.get("cpu_bf16"))
    assert T.make_config("smoke").encoding == "msra" and not T.make_config("smoke").cpu_bf16
