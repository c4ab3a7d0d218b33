"""The OKS widget of ``08_oks_evaluation.ipynb``: move one keypoint, change the area, watch OKS.

:func:`render_oks_demo` computes the similarities and OKS (no drawing), :func:`draw_oks_demo`
draws them, :func:`oks_widget` wires the sliders; ``OKS_DEMO_POSE`` is the pose they use.
matplotlib and ipywidgets are imported inside the functions that need them.
"""

from __future__ import annotations

import numpy as np

from course_lib.widgets.common import show_figure

# A standing person (17 keypoints, x right, y down) about 60 x 150 px: the OKS widget's pose.
OKS_DEMO_POSE = np.array([
    [30, 10], [27, 7], [33, 7], [23, 9], [37, 9], [18, 30], [42, 30], [12, 55], [48, 55],
    [8, 80], [52, 80], [22, 85], [38, 85], [20, 115], [40, 115], [19, 145], [41, 145],
], dtype=np.float64)  # fmt: skip


def render_oks_demo(dx: float, dy: float, area: float, *, keypoint: int = 9) -> dict:
    """One ground-truth pose and a prediction equal to it except keypoint ``keypoint`` moved by
    ``(dx, dy)`` pixels (pure: no drawing). ``area`` is the object's area ``s²`` in px².

    Returns ``{"gt", "pred": [17, 2], "similarity": [17] per-keypoint exp(-d²/(2 s² k²)),
    "oks": float (course_lib.evaluate.oks), "radius_half": [17] distance at which a keypoint's
    similarity drops to 0.5, "keypoint", "area"}``.
    """
    from course_lib.coco import NUM_KEYPOINTS, OKS_SIGMAS
    from course_lib.evaluate import oks

    if not float(area) > 0:
        raise ValueError(f"area: expected a positive number of px², got {area!r}")
    if not 0 <= int(keypoint) < NUM_KEYPOINTS:
        raise ValueError(f"keypoint: expected 0..{NUM_KEYPOINTS - 1}, got {keypoint!r}")
    gt = OKS_DEMO_POSE.copy()
    pred = gt.copy()
    pred[keypoint] += (float(dx), float(dy))
    k2 = (2 * OKS_SIGMAS) ** 2
    d2 = ((pred - gt) ** 2).sum(axis=1)
    similarity = np.exp(-d2 / k2 / (float(area) + np.spacing(1)) / 2)
    visible = np.full(NUM_KEYPOINTS, 2)
    return {
        "gt": gt, "pred": pred, "similarity": similarity,
        "oks": oks(pred, gt, visible, float(area)),
        "radius_half": 2 * OKS_SIGMAS * np.sqrt(float(area)) * np.sqrt(2 * np.log(2)),
        "keypoint": int(keypoint), "area": float(area),
    }  # fmt: skip


def draw_oks_demo(result: dict):
    """A figure of :func:`render_oks_demo`'s result: the pose with a circle around each keypoint
    where its similarity falls to 0.5 (left), the per-keypoint similarities (right)."""
    import matplotlib.pyplot as plt

    from course_lib.coco import KEYPOINT_NAMES, SKELETON

    gt, pred, k = result["gt"], result["pred"], result["keypoint"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), gridspec_kw={"width_ratios": [1, 1.3]})
    ax = axes[0]
    for a, b in SKELETON:
        ax.plot(gt[[a, b], 0], gt[[a, b], 1], color="0.7", lw=2)
        ax.plot(pred[[a, b], 0], pred[[a, b], 1], color="tab:blue", lw=1)
    for j, (x, y) in enumerate(gt):
        ax.add_patch(plt.Circle((x, y), result["radius_half"][j], fill=False, lw=0.8,
                                color="tab:red" if j == k else "0.6"))
    ax.plot(gt[:, 0], gt[:, 1], "o", color="0.4", ms=4, label="ground truth")
    ax.plot(pred[k, 0], pred[k, 1], "*", color="tab:blue", ms=12, label="moved prediction")
    ax.set_xlim(-40, 100)
    ax.set_ylim(175, -25)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"area {result['area']:.0f} px²: circles = similarity 0.5")
    colours = ["tab:red" if j == k else "tab:blue" for j in range(len(gt))]
    axes[1].barh(KEYPOINT_NAMES, result["similarity"], color=colours)
    axes[1].set_xlim(0, 1.05)
    axes[1].invert_yaxis()
    axes[1].tick_params(axis="y", labelsize=8)
    axes[1].set_xlabel("keypoint similarity exp(-d² / 2s²k²)")
    axes[1].set_title(f"OKS = mean = {result['oks']:.3f}")
    fig.tight_layout()
    return fig


def oks_widget(*, keypoint: int = 9):
    """Move one predicted keypoint and change the object's area; watch OKS.

    Returns an ipywidgets ``VBox``: sliders (``dx``, ``dy`` in px, the area in px²) and a keypoint
    dropdown above an ``Output`` holding the figure as an inline PNG. The drawing is
    :func:`draw_oks_demo` of :func:`render_oks_demo` (test those headlessly).
    """
    import ipywidgets as widgets

    from course_lib.coco import KEYPOINT_NAMES

    layout = widgets.Layout(width="400px")
    style = {"description_width": "120px"}
    sdx = widgets.FloatSlider(value=4.0, min=-30.0, max=30.0, step=0.5, description="dx (px)",
                              continuous_update=False, layout=layout, style=style)
    sdy = widgets.FloatSlider(value=3.0, min=-30.0, max=30.0, step=0.5, description="dy (px)",
                              continuous_update=False, layout=layout, style=style)
    sarea = widgets.FloatLogSlider(value=4500.0, base=10, min=2.5, max=4.7, step=0.05,
                                   description="area (px²)", readout_format=".0f",
                                   continuous_update=False, layout=layout, style=style)
    skp = widgets.Dropdown(options=[(n, i) for i, n in enumerate(KEYPOINT_NAMES)], value=keypoint,
                           description="keypoint", layout=layout, style=style)
    out = widgets.Output(layout=widgets.Layout(width="960px", height="420px"))

    def redraw(_=None):
        show_figure(out, draw_oks_demo(render_oks_demo(sdx.value, sdy.value, sarea.value,
                                                       keypoint=skp.value)))

    for s in (sdx, sdy, sarea, skp):
        s.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([widgets.VBox([sdx, sdy]), widgets.VBox([sarea, skp])]), out])
