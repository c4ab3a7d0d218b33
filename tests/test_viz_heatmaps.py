"""Heatmap overlays (course_lib.viz) and the heatmap widget (course_lib.widgets), headless."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_lib import viz, widgets  # noqa: E402
from course_lib.heatmaps import encode  # noqa: E402


def test_render_state_pins_the_quantization_error():
    st = widgets.render_heatmap_widget_state(2.0, 4, 30.3, 33.6)
    assert st["heatmap"].shape == (16, 16)
    np.testing.assert_allclose(st["keypoint_hm"], [7.575, 8.4])
    np.testing.assert_array_equal(st["argmax_hm"], [8, 8])
    np.testing.assert_allclose(st["decoded"], [32, 32])
    np.testing.assert_allclose(st["error_xy"], [1.7, -1.6], atol=1e-9)
    assert st["error"] == pytest.approx(np.hypot(1.7, 1.6))
    assert st["heatmap"][8, 8] == 1.0 and st["weight"] == 1.0
    fine = widgets.render_heatmap_widget_state(2.0, 1, 30.3, 33.6)
    assert fine["heatmap"].shape == (64, 64) and fine["error"] < 0.71
    with pytest.raises(ValueError, match="stride"):
        widgets.render_heatmap_widget_state(2.0, 3, 30.0, 30.0)


def test_widget_callbacks_change_the_rendered_array():
    w = widgets.heatmap_widget()
    first = w.children[0].children[0].children[0]
    assert type(first).__name__ == "FloatSlider" and first is w.controls["sigma"]
    before = w.state()
    assert before["sigma"] == 2.0 and before["stride"] == 4
    w.controls["sigma"].value = 3.0
    after = w.state()
    assert after["sigma"] == 3.0
    assert (after["heatmap"] > 0).sum() > (before["heatmap"] > 0).sum()  # wider Gaussian
    w.controls["stride"].value = 8
    assert w.state()["heatmap"].shape == (8, 8)
    w.controls["stride"].value = 1
    w.controls["x"].value = 31.0
    st = w.state()
    assert st["heatmap"].shape == (64, 64) and st["error_xy"][0] == pytest.approx(0.0)
    w.controls["mode"].value = "unbiased"
    assert w.state()["heatmap"].max() < 1.0  # the sub-pixel y is off the pixel centre


def test_draw_returns_a_figure_with_two_panels():
    import matplotlib.pyplot as plt

    fig = widgets.draw_heatmap_widget_state(widgets.render_heatmap_widget_state(1.5, 2, 25.0, 40.2))
    assert len(fig.axes) == 2
    plt.close(fig)


@pytest.mark.parametrize("stride, peak", [(4, (5, 5)), (4, (3, 10)), (2, (7, 1)), (8, (0, 2))])
def test_heatmap_peak_lands_on_stride_times_its_index(stride, peak):
    """The course's MSRA convention, x_hm = x / stride: heatmap pixel (i, j) shows on crop pixel
    (stride * i, stride * j), not on cv2.resize's ((i + 0.5) * stride - 0.5, ...)."""
    i, j = peak
    maps, _ = encode(np.array([[i, j]], float), np.array([2]), heatmap_size=(12, 16), sigma=1.0)
    big = viz.upsample_heatmap(maps[0], (12 * stride, 16 * stride))
    assert big.shape == (16 * stride, 12 * stride)
    assert np.unravel_index(big.argmax(), big.shape) == (stride * j, stride * i)
    assert big[stride * j, stride * i] == pytest.approx(1.0)
    out = viz.heatmap_overlay(np.zeros((16 * stride, 12 * stride, 3), np.uint8), maps)
    hot = out.astype(int).sum(-1)
    assert np.unravel_index(hot.argmax(), hot.shape) == (stride * j, stride * i)


def test_upsample_heatmap_udp_puts_the_last_pixel_on_the_last_pixel():
    hm = np.zeros((4, 3), np.float32)
    hm[3, 2] = 1.0
    big = viz.upsample_heatmap(hm, (9, 13), udp=True)  # (W - 1) / (w - 1) = 4 on both axes
    assert np.unravel_index(big.argmax(), big.shape) == (12, 8)
    with pytest.raises(ValueError, match="heatmap"):
        viz.upsample_heatmap(np.zeros((2, 2, 2)), (8, 8))


def test_heatmap_overlay_colours_where_the_heatmap_is():
    img = np.full((64, 48, 3), 100, np.uint8)
    maps, _ = encode(np.array([[3.0, 10.0]]), np.array([2]), heatmap_size=(12, 16), sigma=1.0)
    out = viz.heatmap_overlay(img, maps)
    assert out.shape == img.shape and out.dtype == np.uint8
    hot = np.abs(out.astype(int) - 100).sum(-1)
    assert hot[40, 12] > 0  # heatmap (3, 10) -> crop (12, 40) at stride 4
    assert hot[0, 47] == 0  # far away: untouched
    with pytest.raises(ValueError, match="image"):
        viz.heatmap_overlay(img[..., 0], maps)
    import matplotlib.pyplot as plt

    fig = viz.show_heatmaps_on_crops(np.stack([img, img]), np.stack([maps, maps]),
                                     keypoints=np.zeros((2, 1, 2)), titles=["a", "b"])
    assert len(fig.axes) == 2
    plt.close(fig)
    fig = viz.show_keypoint_heatmaps(img, np.repeat(maps, 17, axis=0))
    assert len(fig.axes) == 18
    plt.close(fig)


def test_plot_shape_table_draws_one_box_per_stage():
    import matplotlib.pyplot as plt

    from course_lib import models

    rows = models.shape_table(models.pose_resnet(18, 17, head_channels=64), (96, 128))
    ax = viz.plot_shape_table(rows, title="ResNet-18")
    assert len(ax.patches) >= len(rows)  # boxes (+ arrows)
    labels = [t.get_text() for t in ax.texts]
    assert "layer4" in labels and "final" in labels and any("17x32x24" in t for t in labels)
    plt.close(ax.figure)
