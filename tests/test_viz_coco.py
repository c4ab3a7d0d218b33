"""The 01 drawing helpers: visible / occluded / unlabelled keypoints drawn differently, grids,
statistics plots."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import coco, viz


def _person():
    xy = np.array([[50 + 6 * (k % 4), 20 + 9 * k] for k in range(17)], dtype=float)
    v = np.full(17, 2)
    return xy, v


def test_visible_occluded_and_missing_keypoints_are_drawn_differently():
    img = np.zeros((200, 120, 3), np.uint8)
    xy, v = _person()
    xy[9] = [100, 60]  # left wrist, occluded, far from the other joints
    v[9] = 1
    xy[10] = [10, 180]  # right wrist unlabelled
    v[10] = 0
    out = viz.render_skeleton(img, xy, v, radius=4, thickness=1)
    assert out.shape == img.shape and not np.shares_memory(out, img) and img.max() == 0
    # visible: a filled disc in its side's colour (the nose is centre-green)
    assert tuple(out[20, 50]) == viz.CENTRE_COLOUR
    assert tuple(out[int(xy[5, 1]), int(xy[5, 0])]) == viz.LEFT_COLOUR
    # occluded: a hollow ring, the centre untouched, the ring drawn
    assert out[60, 100].max() == 0 and out[60, 105].max() > 0
    # unlabelled: nothing drawn there, and neither is its limb (right elbow -> right wrist)
    assert out[175:186, 5:16].max() == 0
    # limbs: solid between visible ends, dashed (gaps) when an end is occluded
    a, b = xy[7], xy[9]  # left elbow (visible) -> left wrist (occluded)
    ts = np.linspace(0.3, 0.7, 40)
    samples = [out[int(round(a[1] + t * (b[1] - a[1]))), int(round(a[0] + t * (b[0] - a[0])))]
               for t in ts]  # fmt: skip
    drawn = [s.max() > 0 for s in samples]
    assert any(drawn) and not all(drawn)


def test_skeleton_accepts_the_flat_coco_list_and_rejects_bad_shapes():
    img = np.zeros((120, 120, 3), np.uint8)
    xy, v = _person()
    flat = coco.encode_keypoints(xy, v)
    a = viz.render_skeleton(img, flat)
    b = viz.render_skeleton(img, xy, v)
    assert np.array_equal(a, b) and a.max() > 0
    with pytest.raises(ValueError, match="keypoints"):
        viz.render_skeleton(img, np.zeros((16, 2)))
    with pytest.raises(ValueError, match="image"):
        viz.render_skeleton(np.zeros((10, 10)), xy)


def test_limb_colours_follow_the_person_sides():
    assert viz.limb_colour(13, 15) == viz.LEFT_COLOUR  # left knee - left ankle
    assert viz.limb_colour(12, 14) == viz.RIGHT_COLOUR
    assert viz.limb_colour(5, 6) == viz.CENTRE_COLOUR  # shoulders: across the body
    assert [viz.keypoint_side(k) for k in (0, 1, 2)] == ["centre", "left", "right"]


def test_instance_grid_and_crop():
    img = np.zeros((100, 200, 3), np.uint8)
    img[20:80, 40:60] = 200
    xy, v = _person()
    ann = {"bbox": [40.0, 20.0, 20.0, 60.0], "keypoints": coco.encode_keypoints(xy * 0.3 + 40, v)}
    crop, m = viz.crop_instance(img, ann["bbox"], (48, 64))
    assert crop.shape == (64, 48, 3)
    centre = m @ np.array([50.0, 50.0, 1.0])
    assert centre == pytest.approx([24.0, 32.0])  # the box centre lands on the crop centre
    grid = viz.render_instance_grid([img] * 5, [ann] * 5, ncols=3, cell_size=(48, 64), gap=2)
    assert grid.shape == (2 * 64 + 2, 3 * 48 + 4, 3)
    assert (grid[66:, 100:] == 255).all()  # the sixth cell stays empty
    with pytest.raises(ValueError, match="images"):
        viz.render_instance_grid([img], [ann, ann])


def test_render_annotations_tints_crowds(tmp_path):
    img = np.zeros((40, 50, 3), np.uint8)
    mask = np.zeros((40, 50), np.uint8)
    mask[5:15, 5:25] = 1
    from course_lib.synthetic import _rle_uncompressed

    crowd = {"iscrowd": 1, "bbox": [5, 5, 20, 10], "segmentation": _rle_uncompressed(mask),
             "keypoints": [0] * 51}  # fmt: skip
    out = viz.render_annotations(img, [crowd], boxes=False)
    assert out[10, 10, 0] == 127 and out[10, 10, 1] == 0 and out[30, 40].max() == 0


def test_statistics_plot(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xy, v = _person()
    anns = [{"keypoints": coco.encode_keypoints(xy, v), "area": a, "bbox": [0, 0, 10, 10]}
            for a in (500.0, 2000.0, 20000.0)]  # fmt: skip
    fig = viz.plot_keypoint_statistics(coco.instance_statistics(anns), title="t")
    assert len(fig.axes) == 3
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights[:17] == [1.0] * 17  # all visible
    plt.close(fig)
    with pytest.raises(ValueError, match="visibility"):
        viz.plot_keypoint_statistics({"visibility": np.zeros((0, 17)), "num_keypoints": [],
                                      "area": []})  # fmt: skip


def test_live_plot_renders_within_its_share_of_the_time():
    """LivePlot renders the first call and after each new validation point; in between only
    once the time since the last render exceeds (1 - share) / share times the render cost."""
    import time

    from course_lib import viz

    shown = []
    live = viz.LivePlot(share=0.5, show=lambda fig: shown.append(time.perf_counter()))
    hist = {"train": [{"time_s": 1.0, "loss": 0.01}], "val": []}
    assert live(hist) and len(shown) == 1
    assert not live(hist)  # right after a render: not due
    hist["val"].append({"time_s": 1.0, "AP": 0.3})
    assert live(hist)  # a new AP point is always drawn
    live._next = time.perf_counter() + 60.0
    hist["train"].append({"time_s": 2.0, "loss": 0.008})
    assert not live(hist) and live(hist, force=True)
    assert list(live.loss_line.get_xdata()) == [1 / 60, 2 / 60]
    assert list(live.ap_line.get_ydata()) == [0.3] and live.renders == 3
    with __import__("pytest").raises(ValueError, match="share"):
        viz.LivePlot(share=1.5)
