"""The decoder widget of ``06_decoding_dark.ipynb``: argmax, quarter, DARK and soft-argmax.

:func:`render_decoder_demo` computes every decoder's estimate on one synthetic heatmap (no
drawing), :func:`draw_decoder_demo` draws it, :func:`decoder_widget` wires the sliders.
``DECODER_COLORS`` is the colour of each decoder in the notebook's figures. matplotlib and
ipywidgets are imported inside the functions that need them.
"""

from __future__ import annotations

import numpy as np

from course_lib.widgets.common import show_figure

DECODER_COLORS = {"argmax": "tab:red", "quarter": "tab:orange", "dark": "tab:green",
                  "soft_argmax": "tab:purple"}


def render_decoder_demo(true_x: float, true_y: float, noise: float = 0.0, *, seed: int = 0,
                        heatmap_size: tuple[int, int] = (16, 16), sigma: float = 2.0,
                        blur_kernel: int = 11) -> dict:
    """One synthetic heatmap and every decoder's estimate (pure: no drawing).

    An unbiased Gaussian (``course_lib.heatmaps.encode(..., mode="unbiased")``) centred on
    ``(true_x, true_y)`` heatmap px, plus ``N(0, noise)`` pixel noise drawn with ``seed``.
    Returns ``{"heatmap": [H, W] float32, "true": (x, y), "estimates": {method: (x, y)},
    "errors": {method: euclidean error in heatmap px}}``.
    """
    from course_lib import decode as dec
    from course_lib import heatmaps

    kp = np.array([[[true_x, true_y]]], dtype=np.float64)
    maps, _ = heatmaps.encode(kp, np.ones((1, 1)), heatmap_size=heatmap_size, sigma=sigma,
                              mode="unbiased")
    maps = maps.astype(np.float32)
    if noise > 0:
        rng = np.random.default_rng(seed)
        maps = maps + rng.normal(0.0, noise, maps.shape).astype(np.float32)
    estimates, errors = {}, {}
    for method in dec.METHODS:
        coords, _ = dec.decode(maps, method=method, blur_kernel=blur_kernel)
        x, y = (float(v) for v in coords[0, 0])
        estimates[method] = (x, y)
        errors[method] = float(np.hypot(x - true_x, y - true_y))
    return {"heatmap": maps[0, 0], "true": (float(true_x), float(true_y)),
            "estimates": estimates, "errors": errors}


def draw_decoder_demo(result: dict, *, zoom: float = 2.0):
    """A figure of :func:`render_decoder_demo`'s result: the map with the true centre and each
    decoder's estimate (left), a zoom on the peak (middle), the errors (right)."""
    import matplotlib.pyplot as plt

    hm = result["heatmap"]
    tx, ty = result["true"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1, 1.1]})
    for ax, title in zip(axes[:2], ("heatmap", f"zoom: +-{zoom:g} px around the truth")):
        ax.imshow(hm, cmap="viridis", vmin=min(0.0, float(hm.min())), vmax=max(1.0, float(hm.max())))
        ax.plot(tx, ty, "w+", ms=16, mew=2, label="true centre")
        for method, (x, y) in result["estimates"].items():
            ax.plot(x, y, "o", mfc="none", mec=DECODER_COLORS[method], ms=10, mew=2, label=method)
        ax.set_title(title)
    axes[1].set_xlim(tx - zoom, tx + zoom)
    axes[1].set_ylim(ty + zoom, ty - zoom)
    axes[1].legend(loc="lower right", fontsize=7, framealpha=0.6)
    names = list(result["errors"])
    errs = [result["errors"][m] for m in names]
    axes[2].barh(names, errs, color=[DECODER_COLORS[m] for m in names])
    for i, e in enumerate(errs):
        axes[2].text(e, i, f" {e:.3f}", va="center", fontsize=9)
    axes[2].set_xlim(0, max(0.6, 1.25 * max(errs)))
    axes[2].invert_yaxis()
    axes[2].set_xlabel("error (heatmap px)")
    axes[2].set_title("distance to the true centre")
    fig.tight_layout()
    return fig


def decoder_widget(*, heatmap_size: tuple[int, int] = (16, 16), sigma: float = 2.0,
                   blur_kernel: int = 11):
    """Move the true centre and the noise; watch argmax, quarter, DARK and soft-argmax.

    Returns an ipywidgets ``VBox``: sliders (the first is the true ``x``, a ``FloatSlider``)
    above an ``Output`` holding the figure as an inline PNG image. The drawing is
    :func:`draw_decoder_demo` of :func:`render_decoder_demo` (test those headlessly).
    """
    import ipywidgets as widgets

    w, h = heatmap_size
    layout = widgets.Layout(width="420px")
    style = {"description_width": "110px"}
    sx = widgets.FloatSlider(value=w / 2 - 0.3, min=2.0, max=w - 3.0, step=0.05,
                             description="true x (px)", readout_format=".2f",
                             continuous_update=False, layout=layout, style=style)
    sy = widgets.FloatSlider(value=h / 2 + 0.2, min=2.0, max=h - 3.0, step=0.05,
                             description="true y (px)", readout_format=".2f",
                             continuous_update=False, layout=layout, style=style)
    sn = widgets.FloatSlider(value=0.0, min=0.0, max=0.3, step=0.01, description="noise std",
                             readout_format=".2f", continuous_update=False, layout=layout,
                             style=style)
    ss = widgets.IntSlider(value=0, min=0, max=20, description="noise seed",
                           continuous_update=False, layout=layout, style=style)
    out = widgets.Output(layout=widgets.Layout(width="1000px", height="400px"))

    def redraw(_=None):
        result = render_decoder_demo(sx.value, sy.value, sn.value, seed=ss.value,
                                     heatmap_size=heatmap_size, sigma=sigma,
                                     blur_kernel=blur_kernel)
        show_figure(out, draw_decoder_demo(result))

    for s in (sx, sy, sn, ss):
        s.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([widgets.VBox([sx, sy]), widgets.VBox([sn, ss])]), out])
