"""The OKS widget of 08_oks_evaluation, driven headlessly through its pure render function."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import widgets
from course_lib.coco import OKS_SIGMAS


def test_render_oks_demo_numbers():
    r = widgets.render_oks_demo(0.0, 0.0, 4000.0)
    assert r["oks"] == 1.0 and np.all(r["similarity"] == 1.0)
    # moving the left wrist by exactly its half-similarity radius gives 0.5 for that keypoint
    radius = r["radius_half"][9]
    assert radius == pytest.approx(2 * OKS_SIGMAS[9] * np.sqrt(4000.0) * np.sqrt(2 * np.log(2)))
    moved = widgets.render_oks_demo(radius, 0.0, 4000.0, keypoint=9)
    assert moved["similarity"][9] == pytest.approx(0.5)
    assert moved["oks"] == pytest.approx((16 + 0.5) / 17)


def test_oks_grows_with_area_and_falls_with_distance():
    small = widgets.render_oks_demo(6.0, 0.0, 1000.0)["oks"]
    large = widgets.render_oks_demo(6.0, 0.0, 20000.0)["oks"]
    farther = widgets.render_oks_demo(12.0, 0.0, 1000.0)["oks"]
    assert farther < small < large < 1.0


def test_render_oks_demo_rejects_bad_input():
    with pytest.raises(ValueError, match="area"):
        widgets.render_oks_demo(1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="keypoint"):
        widgets.render_oks_demo(1.0, 1.0, 100.0, keypoint=17)


def test_draw_and_widget(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = widgets.draw_oks_demo(widgets.render_oks_demo(5.0, -3.0, 3000.0, keypoint=0))
    assert "OKS" in fig.axes[1].get_title()
    plt.close(fig)
    w = widgets.oks_widget()
    sliders = w.children[0].children[0].children
    sliders[0].value = 10.0  # redraws without error
    assert len(w.children) == 2
