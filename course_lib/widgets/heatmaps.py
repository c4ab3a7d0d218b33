"""The heatmap widget of ``02_gaussian_heatmaps.ipynb``: a Gaussian target and its argmax error.

:func:`render_heatmap_widget_state` computes what is shown (arrays, no drawing),
:func:`draw_heatmap_widget_state` draws it, :func:`heatmap_widget` wires the sliders. matplotlib
and ipywidgets are imported inside the functions that need them.
"""

from __future__ import annotations

import numpy as np

from course_lib.viz import HEATMAP_CMAP
from course_lib.widgets.common import show_figure

# The heatmap widget of 02_gaussian_heatmaps: a keypoint in a 64 x 64 px patch of the input.
HEATMAP_WIDGET_FIELD = 64  # input pixels shown
HEATMAP_WIDGET_STRIDES = (1, 2, 4, 8)


def render_heatmap_widget_state(sigma: float, stride: int, x: float, y: float, *,
                                mode: str = "msra", field: int = HEATMAP_WIDGET_FIELD) -> dict:
    """What the heatmap widget shows, as arrays (pure: the widget only draws this).

    A keypoint at input pixel ``(x, y)`` in a ``field x field`` input patch, encoded on the
    heatmap of ``stride`` (``field / stride`` pixels a side, ``x_hm = x / stride``) with
    ``sigma`` in heatmap pixels. Returns ``heatmap`` ``[h, w]``, ``keypoint_hm``, ``argmax_hm``
    (first maximum, row-major), ``decoded`` (the argmax back in input pixels, ``* stride``),
    ``error_xy`` and ``error`` (Euclidean, input pixels), ``weight`` and the arguments.
    """
    from course_lib.heatmaps import encode

    stride = int(stride)
    if stride <= 0 or field % stride:
        raise ValueError(f"stride: expected a positive divisor of {field}, got {stride}")
    size = field // stride
    kp_hm = np.array([x / stride, y / stride], dtype=np.float64)
    maps, weights = encode(kp_hm[None], np.array([2]), heatmap_size=(size, size),
                           sigma=float(sigma), mode=mode)
    heatmap = maps[0]
    flat = int(heatmap.argmax())
    argmax_hm = np.array([flat % size, flat // size], dtype=np.float64)
    decoded = argmax_hm * stride
    error_xy = decoded - np.array([x, y], dtype=np.float64)
    return {
        "heatmap": heatmap, "keypoint_hm": kp_hm, "argmax_hm": argmax_hm, "decoded": decoded,
        "error_xy": error_xy, "error": float(np.hypot(*error_xy)), "weight": float(weights[0]),
        "sigma": float(sigma), "stride": stride, "x": float(x), "y": float(y), "mode": mode,
        "field": field,
    }


def draw_heatmap_widget_state(state: dict, *, figsize=(9.0, 3.8)):
    """Draw :func:`render_heatmap_widget_state`'s result: the heatmap on the input's pixel grid
    (true keypoint +, argmax x) and the row through the keypoint. Returns the figure."""
    import matplotlib.pyplot as plt

    hm, s = state["heatmap"], state["stride"]
    size = hm.shape[1]
    x, y = state["x"], state["y"]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=figsize, gridspec_kw={"width_ratios": [1, 1.4]})
    # heatmap pixel i covers input [(i - 0.5) s, (i + 0.5) s)
    extent = (-0.5 * s, (size - 0.5) * s, (size - 0.5) * s, -0.5 * s)
    ax0.imshow(hm, cmap=HEATMAP_CMAP, vmin=0, vmax=1, extent=extent, interpolation="nearest")
    ax0.plot(x, y, "+", color="cyan", ms=14, mew=2, label="keypoint")
    ax0.plot(*state["decoded"], "x", color="lime", ms=10, mew=2, label="argmax")
    # the whole input patch, whatever sigma: moving a slider moves or widens only the blob
    ax0.set_xlim(extent[0], extent[1])
    ax0.set_ylim(extent[2], extent[3])
    ax0.set_xlabel("x (input pixels)")
    ax0.set_ylabel("y (input pixels)")
    ax0.legend(loc="lower right", fontsize=7)
    ax0.set_title(f"{size}x{size} heatmap, stride {s}, sigma {state['sigma']:.2f}", fontsize=9)
    row = int(state["argmax_hm"][1])
    centres = np.arange(size) * s
    ax1.stem(centres, hm[row], basefmt=" ", linefmt="C0-", markerfmt="C0o")
    fine = np.linspace(centres[0], centres[-1], 600)
    ax1.plot(fine, np.exp(-((fine - x) / s) ** 2 / (2 * state["sigma"] ** 2)), "k--", lw=0.8,
             label="Gaussian at the true x")
    ax1.axvline(x, color="cyan", lw=1.5, label="true x")
    ax1.axvline(state["decoded"][0], color="lime", lw=1.5, ls=":", label="argmax x")
    ax1.set_xlim(extent[0], extent[1])
    ax1.set_ylim(0, 1.08)
    ax1.set_xlabel("x (input pixels)")
    ax1.legend(loc="upper right", fontsize=7)
    ex, ey = state["error_xy"]
    ax1.set_title(f"argmax error {state['error']:.2f} px  (dx {ex:+.2f}, dy {ey:+.2f}; "
                  f"at most {s / 2:g} per axis)", fontsize=9)
    fig.tight_layout()
    return fig


def heatmap_widget(*, sigma: float = 2.0, stride: int = 4, x: float = 30.3, y: float = 33.6,
                   mode: str = "msra"):
    """Interactive Gaussian target (02_gaussian_heatmaps): sliders for sigma (first, a
    FloatSlider), the stride (heatmap resolution), the keypoint's x and y (sub-pixel), and the
    encoding mode. Each change redraws the heatmap with the argmax quantization error.

    Returns an ``ipywidgets.VBox``; ``widget.state()`` is the last rendered state (the dict of
    :func:`render_heatmap_widget_state`) and ``widget.controls`` maps names to sliders, so tests
    can drive it without a browser.
    """
    import ipywidgets as widgets

    layout = widgets.Layout(width="320px")
    style = {"description_width": "70px"}
    controls = {
        "sigma": widgets.FloatSlider(value=sigma, min=0.5, max=4.0, step=0.25, description="sigma",
                                     continuous_update=False, layout=layout, style=style),
        "stride": widgets.SelectionSlider(options=list(HEATMAP_WIDGET_STRIDES), value=stride,
                                          description="stride", continuous_update=False,
                                          layout=layout, style=style),
        "x": widgets.FloatSlider(value=x, min=20.0, max=44.0, step=0.1, description="x (px)",
                                 continuous_update=False, layout=layout, style=style),
        "y": widgets.FloatSlider(value=y, min=20.0, max=44.0, step=0.1, description="y (px)",
                                 continuous_update=False, layout=layout, style=style),
        "mode": widgets.ToggleButtons(options=["msra", "unbiased", "udp"], value=mode,
                                      description="mode", style={"button_width": "80px"}),
    }
    out = widgets.Output(layout=widgets.Layout(width="920px", height="400px"))
    last: dict = {}

    def redraw(_change=None):
        state = render_heatmap_widget_state(controls["sigma"].value, controls["stride"].value,
                                            controls["x"].value, controls["y"].value,
                                            mode=controls["mode"].value)
        last.clear()
        last.update(state)
        show_figure(out, draw_heatmap_widget_state(state))

    for control in controls.values():
        control.observe(redraw, names="value")
    box = widgets.VBox([
        widgets.HBox([widgets.VBox([controls["sigma"], controls["stride"]]),
                      widgets.VBox([controls["x"], controls["y"]])]),
        controls["mode"], out,
    ])
    box.controls = controls
    box.state = lambda: dict(last)
    redraw()
    return box
