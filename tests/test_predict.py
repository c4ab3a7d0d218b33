"""course_lib.predict and its command lines (validate, infer) on a tiny synthetic dataset and a
random checkpoint.

The stats the validate CLI prints must equal pycocotools' on the results file it wrote; the
geometry (heatmap -> crop -> image) is checked with perfect heatmaps (the training targets),
which must give an AP close to 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from course_lib import decode, evaluate, predict, validate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
INPUT_SIZE, HEATMAP_SIZE = (96, 128), (24, 32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from course_lib.models import pose_resnet
    from course_lib.synthetic import SyntheticSpec, generate

    root = tmp_path_factory.mktemp("tiny")
    spec = SyntheticSpec(seed=3, num_train_images=1, num_val_images=5, image_size=(192, 160))
    data = generate(root / "data", spec=spec, progress=False, workers=1)
    torch.manual_seed(0)
    model = pose_resnet(18, 17)
    cfg = {"depth": 18, "num_keypoints": 17, "input_size": list(INPUT_SIZE),
           "heatmap_size": list(HEATMAP_SIZE), "sigma": 2.0, "encoding": "msra"}
    ckpt = root / "best.pt"
    torch.save({"model": model.state_dict(), "config": cfg, "epoch": 0, "step": 0,
                "history": {}}, ckpt)
    return {"ann": data / "annotations" / "person_keypoints_val.json",
            "images": data / "val", "checkpoint": ckpt, "root": root}


def _labelled_people(ann_file) -> int:
    data = json.loads(Path(ann_file).read_text())
    return sum(1 for a in data["annotations"]
               if not a.get("iscrowd", 0) and any(v > 0 for v in a["keypoints"][2::3]))


def test_validate_cli_stats_equal_pycocotools(tiny, capsys):
    out = tiny["root"] / "results_dark_flip.json"
    stats = validate.main(["--checkpoint", str(tiny["checkpoint"]), "--ann", str(tiny["ann"]),
                           "--images", str(tiny["images"]), "--decoder", "dark", "--flip",
                           "--out", str(out)])
    printed = capsys.readouterr().out
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets= 20 ]" in printed
    results = json.loads(out.read_text())
    assert len(results) == _labelled_people(tiny["ann"]) > 0
    assert all(len(r["keypoints"]) == 51 and r["category_id"] == 1 for r in results)
    assert stats == evaluate.pycocotools_stats(tiny["ann"], out)
    assert set(stats) == set(evaluate.STAT_NAMES)


def test_validate_as_module_with_boxes(tiny):
    gt = json.loads(Path(tiny["ann"]).read_text())
    boxes = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9}
             for a in gt["annotations"] if not a.get("iscrowd", 0)]
    boxes_file = tiny["root"] / "boxes.json"
    boxes_file.write_text(json.dumps(boxes))
    out = tiny["root"] / "results_boxes.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "course_lib.validate", "--checkpoint", str(tiny["checkpoint"]),
         "--ann", str(tiny["ann"]), "--images", str(tiny["images"]), "--boxes", str(boxes_file),
         "--decoder", "argmax", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.read_text())
    assert 0 < len(results) <= len(boxes)
    ref = evaluate.pycocotools_stats(tiny["ann"], out)
    assert f"= {ref['AP']:0.3f}" in proc.stdout.splitlines()[1]
    assert evaluate.evaluate_keypoints(tiny["ann"], out) == ref


def test_perfect_heatmaps_give_high_ap(tiny):
    """The (unbiased) training targets decoded and mapped back to the image: the geometry
    round trip heatmap -> crop -> image."""
    from course_lib.data import TopDownDataset

    ds = TopDownDataset(tiny["ann"], tiny["images"], input_size=INPUT_SIZE,
                        heatmap_size=HEATMAP_SIZE, train=False, encoding="unbiased")
    items = [ds[i] for i in range(len(ds))]
    heatmaps = np.stack([it["heatmaps"].numpy() for it in items])
    meta = {k: np.stack([np.asarray(it["meta"][k]) for it in items])
            for k in ("image_id", "center", "scale", "rotation", "box_score")}
    for decoder in predict.DECODERS:
        results = predict.heatmaps_to_results(heatmaps, meta, input_size=INPUT_SIZE,
                                              decoder=decoder)
        stats = evaluate.evaluate_keypoints(tiny["ann"], results)
        assert stats == evaluate.pycocotools_stats(tiny["ann"], results)
        assert stats["AP50"] > 0.9, (decoder, stats)  # tiny people (area < 100 px²) may miss
        if decoder == "dark":  # unbiased targets: DARK recovers medium people exactly
            assert stats["APm"] == pytest.approx(1.0), stats


def test_validate_rejects_unknown_decoder(tiny):
    with pytest.raises(SystemExit):
        validate.main(["--checkpoint", str(tiny["checkpoint"]), "--decoder", "median"])
    with pytest.raises(ValueError, match="decoder"):
        predict.evaluate_checkpoint(tiny["checkpoint"], ann=tiny["ann"], images=tiny["images"],
                                    decoder="median")


def test_oks_nms_drops_duplicates():
    base = np.concatenate([np.random.default_rng(0).uniform(0, 100, (17, 2)), np.ones((17, 1))], 1)
    far = base + [200, 0, 0]
    rs = [{"image_id": 1, "keypoints": base.ravel().tolist(), "score": 0.9},
          {"image_id": 1, "keypoints": (base + [0.5, 0, 0]).ravel().tolist(), "score": 0.8},
          {"image_id": 1, "keypoints": far.ravel().tolist(), "score": 0.7},
          {"image_id": 2, "keypoints": base.ravel().tolist(), "score": 0.6}]
    kept = predict.oks_nms(rs)
    assert [r["score"] for r in kept] == [0.9, 0.7, 0.6]


def test_infer_cli_writes_json_and_drawings(tiny):
    from course_lib import infer

    out = tiny["root"] / "pred"
    entries = infer.main([str(tiny["images"]), "--checkpoint", str(tiny["checkpoint"]),
                          "--box", "10,10,80,120", "--out", str(out)])
    assert len(entries) == len(list(Path(tiny["images"]).glob("*.jpg")))
    saved = json.loads((out / "keypoints.json").read_text())
    assert saved == entries
    assert all(len(e["keypoints"]) == 51 and e["bbox"] == [10.0, 10.0, 80.0, 120.0]
               for e in saved)
    drawing = out / f"{Path(saved[0]['file']).name}_pose.png"  # a.jpg -> a.jpg_pose.png
    assert saved[0]["drawing"] == str(drawing)
    assert drawing.is_file() and drawing.stat().st_size > 1000
    one = infer.main([saved[0]["file"], "--checkpoint", str(tiny["checkpoint"]),
                      "--out", str(out / "one")])
    assert len(one) == 1 and one[0]["bbox"][:2] == [0.0, 0.0]  # whole image by default
    with pytest.raises(ValueError, match="box"):
        infer.parse_box("1,2,3")


def _meta(n):
    return {"image_id": np.arange(1, n + 1), "center": np.tile([48.0, 64.0], (n, 1)),
            "scale": np.tile([96.0, 128.0], (n, 1)), "rotation": np.zeros(n),
            "box_score": np.ones(n)}


def test_a_map_without_a_keypoint_keeps_the_marker():
    maps = np.zeros((1, 17, 32, 24), np.float32)
    maps[0, 1:, 10, 12] = 1.0  # keypoint 0's map is empty (all zeros)
    res = predict.heatmaps_to_results(maps, _meta(1), input_size=INPUT_SIZE, decoder="dark")[0]
    kps = np.asarray(res["keypoints"]).reshape(17, 3)
    assert kps[0].tolist() == [-1.0, -1.0, 0.0]
    np.testing.assert_allclose(kps[1, :2], [48.0, 40.0])  # heatmap (12, 10) * stride 4
    assert res["score"] == pytest.approx(1.0)  # 16 keypoints at 1.0, the empty one excluded


def test_udp_results_use_the_udp_geometry():
    maps = np.zeros((1, 17, 32, 24), np.float32)
    maps[0, :, 31, 23] = 1.0  # the last heatmap pixel is the last crop pixel under UDP
    msra = predict.heatmaps_to_results(maps, _meta(1), input_size=INPUT_SIZE, decoder="argmax")
    udp = predict.heatmaps_to_results(maps, _meta(1), input_size=INPUT_SIZE, decoder="argmax",
                                      udp=True)
    # the box spans image x in [0, 96] (centre 48, scale 96, crop 96 px wide: 1 px per px)
    # MSRA: heatmap 23 -> crop 23 * 4 = 92 -> image 92;
    # UDP: heatmap 23 -> crop 23 * 95 / 23 = 95, the last pixel -> the box's right edge, 96
    assert msra[0]["keypoints"][:2] == [92.0, 124.0]
    assert udp[0]["keypoints"][:2] == [96.0, 128.0]


def test_run_network_flip_is_fuse_flip(tiny):
    model, _ = predict.load_model(tiny["checkpoint"])
    x = torch.randn(2, 3, INPUT_SIZE[1], INPUT_SIZE[0])
    with torch.no_grad():
        plain, mirrored = model(x), model(torch.flip(x, dims=[3]))
    for udp in (False, True):
        got = predict.run_network(model, x, flip=True, udp=udp)
        want = decode.fuse_flip(plain, mirrored, shift=not udp)
        assert torch.equal(got, want)


def test_validation_counts_every_image_of_the_annotation_file(tiny):
    """An image the model produced no result for counts as missed (all images are evaluated)."""
    from course_lib.data import TopDownDataset

    ds = TopDownDataset(tiny["ann"], tiny["images"], input_size=INPUT_SIZE,
                        heatmap_size=HEATMAP_SIZE, train=False, encoding="unbiased")
    items = [ds[i] for i in range(len(ds))]
    heatmaps = np.stack([it["heatmaps"].numpy() for it in items])
    meta = {k: np.stack([np.asarray(it["meta"][k]) for it in items])
            for k in ("image_id", "center", "scale", "rotation", "box_score")}
    results = predict.heatmaps_to_results(heatmaps, meta, input_size=INPUT_SIZE)
    first = results[0]["image_id"]
    fewer = [r for r in results if r["image_id"] != first]
    full, part = (evaluate.evaluate_keypoints(tiny["ann"], r) for r in (results, fewer))
    assert part["AR"] < full["AR"]  # the people of the dropped image are missed, not ignored


def test_a_smoke_checkpoint_says_it_is_untrained():
    from course_lib import train

    assert "smoke: untrained model, placeholder numbers" in predict.untrained_banner(
        train.make_config("smoke"))
    assert predict.untrained_banner(train.make_config("cpu")) == ""
