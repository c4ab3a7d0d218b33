"""The synthetic mini-COCO: determinism, COCO validity, occlusion/truncation, idempotent reruns."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from course_lib import coco, config, synthetic, synthetic_render

SPEC = synthetic.SyntheticSpec(seed=0, num_train_images=5, num_val_images=4, image_size=(160, 128))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "a"
    synthetic.generate(out, spec=SPEC, progress=False)
    return out


def test_same_seed_gives_identical_bytes_and_other_seed_differs(generated, tmp_path):
    again = synthetic.generate(tmp_path / "b", spec=SPEC, progress=False)
    first, second = _files(generated), _files(again)
    assert len(first) == 5 + 4 + 2 + 1  # images, 2 annotation files, manifest
    assert first == second
    other = synthetic.generate(tmp_path / "c", spec=synthetic.SyntheticSpec(
        seed=1, num_train_images=5, num_val_images=4, image_size=(160, 128)), progress=False)
    third = _files(other)
    assert third.keys() == first.keys()
    differing = [k for k in first if first[k] != third[k]]
    assert len(differing) == len(first)  # every image, both JSON files and the manifest


def test_parallel_workers_give_the_same_bytes(monkeypatch):
    monkeypatch.setattr(synthetic, "_MIN_PARALLEL", 2)
    spec = synthetic.SyntheticSpec(seed=3, num_train_images=8, num_val_images=0,
                                   image_size=(96, 80))
    one, h1 = synthetic.generate_split(Path("unused"), "train", spec, progress=False,
                                       write_images=False, workers=1)
    two, h2 = synthetic.generate_split(Path("unused"), "train", spec, progress=False,
                                       write_images=False, workers=2)
    assert h1 == h2 and json.dumps(one) == json.dumps(two)


def test_pycocotools_loads_and_the_json_is_real_coco(generated):
    for split in ("train", "val"):
        path = generated / "annotations" / f"person_keypoints_{split}.json"
        c = coco.load_coco(path)  # validates too
        data = json.loads(path.read_text())
        assert data["categories"] == [coco.PERSON_CATEGORY]
        ids = [a["id"] for a in data["annotations"]]
        assert ids == list(range(1, len(ids) + 1))
        assert len(c.getImgIds()) == SPEC.num_images(split)
        for im in data["images"]:
            assert (im["width"], im["height"]) == SPEC.image_size
            assert (generated / split / im["file_name"]).is_file()
        for a in data["annotations"]:
            assert a["category_id"] == 1 and a["area"] > 0
            x, y, w, h = a["bbox"]
            assert 0 <= x and 0 <= y and x + w <= 160 and y + h <= 128
            assert a["area"] <= w * h
            mask = c.annToMask(a)  # segmentation decodes
            assert mask.shape == (128, 160) and mask.sum() > 0
            xy, v = coco.decode_keypoints(a["keypoints"])
            assert a["num_keypoints"] == int((v > 0).sum())
            assert np.all(xy[v == 0] == 0)
            lab = xy[v > 0]
            assert np.all((lab >= 0) & (lab <= np.array([159, 127])))
            if a["iscrowd"]:
                assert a["num_keypoints"] == 0 and isinstance(a["segmentation"], dict)


def test_ground_truth_as_detections_gives_ap_one(generated):
    from pycocotools.cocoeval import COCOeval

    gt = coco.load_coco(generated / "annotations" / "person_keypoints_val.json")
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
                "score": 1.0} for a in coco.list_instances(gt)]  # fmt: skip
    assert len(results) >= 4
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType="keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)  # AP
    assert ev.stats[5] == pytest.approx(1.0)  # AR


def test_occlusion_truncation_crowds_and_all_sizes_occur():
    w, h = 320, 256
    v_all, areas, ratios, crowds, truncated = [], [], [], 0, 0
    for i in range(40):
        _, anns = synthetic.render_image(synthetic.image_rng(0, "train", i), w, h)
        for a in anns:
            if a["iscrowd"]:
                crowds += 1
                continue
            v = np.asarray(a["keypoints"][2::3])
            v_all.append(v)
            truncated += int((v[5:] == 0).any())  # body keypoints are unlabelled only if outside
            areas.append(a["area"])
            ratios.append(a["area"] / (a["bbox"][2] * a["bbox"][3]))
    v_all = np.array(v_all)
    assert (v_all == 1).sum() > 20 and (v_all == 2).mean() > 0.6
    assert truncated >= 3 and crowds >= 2
    sizes = {coco.area_category(a) for a in areas}
    assert sizes == {"small", "medium", "large"}
    assert 0.3 <= float(np.median(ratios)) <= 0.5  # body-like volume, COCO-like mask/box ratio
    assert 2.0 <= len(areas) / 40 <= 4.0


def test_pose_respects_joint_limits_and_sides():
    rng = np.random.default_rng(5)
    for _ in range(300):
        pose = synthetic.sample_pose(rng, 100.0)
        kp = pose.keypoints
        # left shoulder on the image's right exactly when the figure faces the camera
        torso = np.radians(pose.torso_angle)
        across = np.array([math.cos(torso), math.sin(torso)])
        assert (np.dot(kp[5] - kp[6], across) > 0) == pose.front
        assert pose.labelled[:3].all() == pose.front and pose.labelled[3:].all()
        for sh, el, wr in ((5, 7, 9), (6, 8, 10)):
            a, b = kp[el] - kp[sh], kp[wr] - kp[el]
            bend = math.degrees(math.acos(np.clip(np.dot(a, b) / np.hypot(*a) / np.hypot(*b),
                                                  -1, 1)))
            assert bend <= 145.0 + 1e-6  # elbow flexion limit
            assert 0.65 * 16.5 - 1e-6 <= np.hypot(*a) <= 16.5 + 1e-6  # upper arm, foreshortened
        for hip, kn in ((11, 13), (12, 14)):
            d = kp[kn] - kp[hip]
            assert d[1] > 0  # knees below the hips: no thigh above horizontal
        eyes_mid = (kp[1] + kp[2]) / 2
        assert np.hypot(*(eyes_mid - pose.head_center)) < max(pose.head_axes)


def test_keypoints_lie_on_the_drawn_figure():
    rng = np.random.default_rng(0)
    pose = synthetic.translate_pose(synthetic.sample_pose(rng, 150.0), np.array([100.0, 90.0]))
    labels = np.zeros((200, 200), np.uint8)
    synthetic.draw_shapes(None, synthetic.figure_shapes(pose, rng), labels=labels, label=1)
    xi = np.round(pose.keypoints).astype(int)
    assert labels[xi[:, 1], xi[:, 0]].all()


def test_a_limb_stays_visible_in_front_of_a_torso_of_its_own_colour():
    # long sleeves share the shirt's colour: without a contour, an arm folded across the torso
    # would be invisible, and its elbow and wrist unlearnable
    colour = np.array([60.0, 140.0, 90.0])
    canvas = np.empty((60, 80, 3), np.float64)
    canvas[:] = colour
    shapes = synthetic_render._limb_shapes(np.array([20.0, 30.0]), np.array([60.0, 30.0]), 12.0,
                                           9.0, colour, striped=False)
    synthetic.draw_shapes(canvas, shapes)
    changed = np.abs(canvas - colour).max(axis=2) > 40
    rows = np.flatnonzero(changed[:, 40])  # a cut across the middle of the limb
    assert len(rows) >= 2 and rows.min() < 30 < rows.max()  # both long edges drawn
    assert changed[30, 58:63].any()  # and the seam at the far joint
    assert not changed[5:15].any()  # nothing beyond the limb


def test_rerun_does_nothing_and_partial_runs_are_redone(tmp_path):
    spec = synthetic.SyntheticSpec(seed=2, num_train_images=3, num_val_images=2, image_size=(96, 80))
    out = synthetic.generate(tmp_path / "d", spec=spec, progress=False)
    manifest = out / config.MANIFEST_NAME
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert synthetic.is_complete(out, spec)
    synthetic.generate(out, spec=spec, progress=False)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps
    reference = _files(out)
    # an image missing: noticed, redone
    (out / "train" / "000000000002.jpg").unlink()
    assert not synthetic.is_complete(out, spec)
    synthetic.generate(out, spec=spec, progress=False)
    assert _files(out) == reference
    # without its manifest the folder is no longer known to be the generator's: left alone
    manifest_bytes = manifest.read_bytes()
    manifest.unlink()
    with pytest.raises(FileExistsError, match="not empty"):
        synthetic.generate(out, spec=spec, progress=False)
    manifest.write_bytes(manifest_bytes)
    # a different earlier run (other sizes): redone, stray images removed
    bigger = synthetic.SyntheticSpec(seed=2, num_train_images=5, num_val_images=2,
                                     image_size=(96, 80))
    synthetic.generate(out, spec=bigger, progress=False)
    assert len(list((out / "train").glob("*.jpg"))) == 5
    synthetic.generate(out, spec=spec, progress=False)
    assert _files(out) == reference
    assert not list(out.rglob("*.tmp"))


def test_cli_defaults_and_bad_seed(tmp_path, monkeypatch, capsys):
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "data_scripts" / "make_synthetic_coco.py"
    spec = importlib.util.spec_from_file_location("make_synthetic_coco", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert mod.main(["--out", str(tmp_path / "e"), "--seed", "4", "--quiet"]) == 0
    man = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert man["spec"]["seed"] == 4 and man["spec"]["num_train_images"] == 24
    assert man["spec"]["image_size"] == [192, 160]
    with pytest.raises(SystemExit):
        mod.main(["--seed", "-1"])
    with pytest.raises(SystemExit):
        mod.main(["--profile", "huge"])


def test_figure_drawing_names_stay_reachable_from_synthetic():
    # 00_setup.ipynb poses and draws figures through ``synthetic``; they live in synthetic_render
    for name in ("Pose", "sample_pose", "translate_pose", "figure_shapes", "draw_shapes",
                 "render_background"):
        assert getattr(synthetic, name) is getattr(synthetic_render, name)
    assert not hasattr(synthetic, "remove")


def test_spec_from_profile_rejects_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        synthetic.spec_from_profile("smoke", seed=-3)


# ---------------------------------------------------------------------------------------------
# Faults and bad input: a folder it did not make, damaged files, a full disk
# ---------------------------------------------------------------------------------------------

SMALL = synthetic.SyntheticSpec(seed=7, num_train_images=3, num_val_images=2, image_size=(96, 80))


def _cli():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "data_scripts" / "make_synthetic_coco.py"
    spec = importlib.util.spec_from_file_location("make_synthetic_coco", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("manifest", [None, b'{"generator": "someone.else"}', b"{not json",
                                      b'["course_lib.synthetic"]'])
def test_a_folder_the_generator_did_not_make_is_refused(tmp_path, manifest, capsys):
    out = tmp_path / "photos"
    mine = {"train/000000000001.jpg": b"my holiday photo", "train/other.jpg": b"mine too",
            "annotations/person_keypoints_train.json": b'{"my": "labels"}'}  # fmt: skip
    if manifest is not None:
        mine[config.MANIFEST_NAME] = manifest
    for rel, data in mine.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    with pytest.raises(FileExistsError, match=f"out: {out}.*not empty"):
        synthetic.generate(out, spec=SMALL, progress=False)
    with pytest.raises(FileExistsError, match="not empty"):
        synthetic.generate(out, spec=SMALL, progress=False, force=True)
    capsys.readouterr()
    assert _cli().main(["--out", str(out), "--profile", "smoke", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out: ") and str(out) in err and len(err.splitlines()) == 1
    assert _files(out) == mine  # nothing deleted, nothing overwritten
    (tmp_path / "a_file").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="a_file"):
        synthetic.generate(tmp_path / "a_file", spec=SMALL, progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert synthetic.is_complete(synthetic.generate(empty, spec=SMALL, progress=False), SMALL)


def test_truncated_or_corrupted_files_are_noticed_and_regenerated(tmp_path):
    out = synthetic.generate(tmp_path / "d", spec=SMALL, progress=False)
    reference = _files(out)
    man = synthetic.read_manifest(out)
    assert man["generator"] == "course_lib.synthetic" and man["spec"]["version"] == 2
    assert man["sizes"] == {rel: len(reference[rel]) for rel in man["files"]}
    jpeg = out / "train" / "000000000002.jpg"
    jpeg.write_bytes(reference["train/000000000002.jpg"][:500])  # truncated
    assert not synthetic.is_complete(out, SMALL)
    synthetic.generate(out, spec=SMALL, progress=False)
    assert _files(out) == reference
    # the same size, other bytes: only a verification by hash notices it
    data = bytearray(reference["val/000001000001.jpg"])
    data[200] ^= 0xFF
    (out / "val" / "000001000001.jpg").write_bytes(bytes(data))
    assert synthetic.is_complete(out, SMALL)
    assert not synthetic.is_complete(out, SMALL, verify=True)
    synthetic.generate(out, spec=SMALL, progress=False, verify=True)
    assert _files(out) == reference
    # a truncated annotation file: the whole run is redone, byte-identically
    ann = out / "annotations" / "person_keypoints_val.json"
    ann.write_bytes(reference["annotations/person_keypoints_val.json"][:-10])
    assert not synthetic.is_complete(out, SMALL)
    synthetic.generate(out, spec=SMALL, progress=False)
    assert _files(out) == reference


def test_a_manifest_without_sizes_is_checked_by_hash(tmp_path):
    out = synthetic.generate(tmp_path / "d", spec=SMALL, progress=False)
    reference = _files(out)
    man = synthetic.read_manifest(out)
    del man["sizes"]  # as written before sizes were recorded
    (out / config.MANIFEST_NAME).write_text(json.dumps(man, indent=1, sort_keys=True))
    data = bytearray(reference["train/000000000001.jpg"])
    data[300] ^= 0xFF
    (out / "train" / "000000000001.jpg").write_bytes(bytes(data))
    assert not synthetic.is_complete(out, SMALL)
    synthetic.generate(out, spec=SMALL, progress=False)
    assert {k: v for k, v in _files(out).items() if k != config.MANIFEST_NAME} == {
        k: v for k, v in reference.items() if k != config.MANIFEST_NAME}
    assert synthetic.is_complete(out, SMALL, verify=True)


def test_an_interrupted_run_is_redone_byte_identically(tmp_path, monkeypatch):
    out = synthetic.generate(tmp_path / "d", spec=SMALL, progress=False)
    reference = _files(out)
    real = config.write_atomic
    calls = []

    def interrupted(path, data):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt  # Ctrl-C in the middle of a forced regeneration
        return real(path, data)

    monkeypatch.setattr(config, "write_atomic", interrupted)
    with pytest.raises(KeyboardInterrupt):
        synthetic.generate(out, spec=SMALL, progress=False, force=True)
    monkeypatch.setattr(config, "write_atomic", real)
    assert not synthetic.is_complete(out, SMALL)
    man = synthetic.read_manifest(out)
    assert man is None or "spec" not in man  # a partial folder claims no data version
    synthetic.generate(out, spec=SMALL, progress=False)  # the partial folder is still ours
    assert _files(out) == reference


def test_not_enough_free_space_is_refused_before_writing(tmp_path, monkeypatch, capsys):
    import shutil

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=10_000))
    out = tmp_path / "new"
    with pytest.raises(OSError, match=f"synthetic data: needs .* bytes .* in {out}.*10000 bytes"):
        synthetic.generate(out, spec=SMALL, progress=False)
    assert not out.exists() or not any(out.rglob("*"))
    assert _cli().main(["--out", str(out), "--profile", "smoke", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: synthetic data: needs") and len(err.splitlines()) == 1


def test_cli_verify_flag_and_bad_arguments(tmp_path, capsys, monkeypatch):
    mod = _cli()
    monkeypatch.setattr(synthetic, "spec_from_profile", lambda profile, seed: SMALL)  # quick
    out = tmp_path / "v"
    assert mod.main(["--out", str(out), "--profile", "smoke", "--quiet"]) == 0
    jpeg = out / "train" / "000000000003.jpg"
    good = jpeg.read_bytes()
    jpeg.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    assert mod.main(["--out", str(out), "--profile", "smoke", "--quiet", "--verify"]) == 0
    assert jpeg.read_bytes() == good
    monkeypatch.setenv("COURSE_PROFILE", "laptop")  # a bad profile name: one line, status 2
    assert mod.main(["--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: profile: expected one of") and len(err.splitlines()) == 1
    for bad in (["--workers", "0"], ["--workers", "-3"]):
        with pytest.raises(SystemExit) as info:
            mod.main(["--out", str(out), "--profile", "smoke", *bad])
        assert info.value.code == 2
