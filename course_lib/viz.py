"""Drawing helpers shared by the notebooks: skeletons, instance grids, heatmap overlays, widgets.

Each widget helper returns the widget and exposes its pure ``render_*`` function, so tests can
drive it without a browser. matplotlib and ipywidgets are imported inside the functions that
need them (no eager optional imports).
"""

from __future__ import annotations

import numpy as np


def show_figure(out, fig, *, dpi: int = 80) -> None:
    """Show matplotlib ``fig`` in the ipywidgets ``Output`` ``out`` as one PNG image, replacing
    what it showed, and close the figure (the widgets of notebooks 06 and 08 redraw this way)."""
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    with out:
        out.clear_output(wait=True)
        display(Image(data=buf.getvalue(), format="png"))


# ---------------------------------------------------------------------------------------------
# Skeletons, instance grids, statistics (01_coco_keypoints.ipynb)
# ---------------------------------------------------------------------------------------------

# Colours (RGB) of the three kinds of limbs: the person's left side, right side, and the centre.
LEFT_COLOUR = (255, 140, 0)
RIGHT_COLOUR = (30, 144, 255)
CENTRE_COLOUR = (50, 205, 50)


def keypoint_side(k: int) -> str:
    """``"left"``, ``"right"`` or ``"centre"`` for COCO keypoint ``k`` (odd = left, nose = centre)."""
    if k == 0:
        return "centre"
    return "left" if k % 2 == 1 else "right"


def limb_colour(a: int, b: int) -> tuple[int, int, int]:
    """The colour of the limb between keypoints ``a`` and ``b``: left, right or centre."""
    sides = {keypoint_side(a), keypoint_side(b)}
    if sides == {"left"}:
        return LEFT_COLOUR
    if sides == {"right"}:
        return RIGHT_COLOUR
    return CENTRE_COLOUR


def read_image(path) -> np.ndarray:
    """An image file as RGB uint8 ``[H, W, 3]`` (a clear error when the file is missing)."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"path: cannot read an image at {path}")
    return np.ascontiguousarray(img[..., ::-1])


def _dashed_line(img, p, q, colour, thickness, dash=4.0):
    import cv2

    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    length = float(np.hypot(*(q - p)))
    n = max(int(length / dash), 1)
    for i in range(0, n, 2):
        a = p + (q - p) * (i / n)
        b = p + (q - p) * (min(i + 1, n) / n)
        cv2.line(img, tuple(int(round(v)) for v in a), tuple(int(round(v)) for v in b), colour,
                 thickness, cv2.LINE_AA)  # fmt: skip


def render_skeleton(image: np.ndarray, keypoints, visible=None, *, radius: int | None = None,
                    thickness: int | None = None) -> np.ndarray:  # fmt: skip
    """A copy of ``image`` (RGB uint8) with one person's skeleton drawn on it (01 notebook).

    ``keypoints``: ``[17, 2]`` pixels, or ``[17, 3]`` / 51 numbers with COCO's ``v`` included;
    ``visible``: ``[17]`` COCO flags (default: all 2). Visible keypoints (v=2) are filled discs
    with a dark rim, occluded ones (v=1) hollow rings, unlabelled ones (v=0) are not drawn; a
    limb is solid between two visible keypoints, dashed when an end is occluded, absent when an
    end is unlabelled. Colours: orange = the person's left, blue = right, green = centre.
    """
    import cv2

    from course_lib.coco import NUM_KEYPOINTS, SKELETON

    img = np.ascontiguousarray(np.asarray(image, dtype=np.uint8).copy())
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image: expected an RGB array [H, W, 3], got shape {img.shape}")
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim == 1 and kp.size == 3 * NUM_KEYPOINTS:
        kp = kp.reshape(NUM_KEYPOINTS, 3)
    if kp.shape == (NUM_KEYPOINTS, 3):
        if visible is None:
            visible = kp[:, 2]
        kp = kp[:, :2]
    if kp.shape != (NUM_KEYPOINTS, 2):
        raise ValueError(f"keypoints: expected [17, 2], [17, 3] or 51 numbers, got {kp.shape}")
    v = np.full(NUM_KEYPOINTS, 2) if visible is None else np.asarray(visible).astype(int)
    if v.shape != (NUM_KEYPOINTS,):
        raise ValueError(f"visible: expected shape (17,), got {v.shape}")
    scale = max(img.shape[0], img.shape[1])
    radius = radius or max(2, int(round(scale / 160)))
    thickness = thickness or max(1, int(round(scale / 250)))
    pt = [tuple(int(round(c)) for c in p) for p in kp]
    for a, b in SKELETON:
        if v[a] == 0 or v[b] == 0:
            continue
        colour = limb_colour(a, b)
        if v[a] == 2 and v[b] == 2:
            cv2.line(img, pt[a], pt[b], colour, thickness, cv2.LINE_AA)
        else:
            _dashed_line(img, kp[a], kp[b], colour, thickness, dash=max(3.0, 2.0 * radius))
    for k in range(NUM_KEYPOINTS):
        colour = limb_colour(k, k)
        if v[k] == 2:
            cv2.circle(img, pt[k], radius + 1, (20, 20, 20), -1, cv2.LINE_AA)
            cv2.circle(img, pt[k], radius, colour, -1, cv2.LINE_AA)
        elif v[k] == 1:
            cv2.circle(img, pt[k], radius + 1, colour, max(1, thickness), cv2.LINE_AA)
    return img


def render_annotations(image: np.ndarray, anns: list[dict], *, boxes: bool = True) -> np.ndarray:
    """A copy of ``image`` with every annotation drawn: skeletons, boxes (white), and crowd
    regions (``iscrowd=1``) tinted red."""
    import cv2

    img = np.ascontiguousarray(np.asarray(image, dtype=np.uint8).copy())
    for ann in anns:
        if ann.get("iscrowd", 0):
            from pycocotools import mask as mask_utils

            seg = ann["segmentation"]
            h, w = img.shape[:2]
            rle = mask_utils.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else seg
            m = mask_utils.decode(rle).astype(bool)
            img[m] = (0.5 * img[m] + 0.5 * np.array([255, 0, 0])).astype(np.uint8)
        if boxes:
            x, y, bw, bh = ann["bbox"]
            colour = (255, 60, 60) if ann.get("iscrowd", 0) else (255, 255, 255)
            cv2.rectangle(img, (int(round(x)), int(round(y))),
                          (int(round(x + bw - 1)), int(round(y + bh - 1))), colour, 1)  # fmt: skip
        if not ann.get("iscrowd", 0):
            img = render_skeleton(img, ann["keypoints"])
    return img


def crop_instance(image: np.ndarray, bbox, output_size: tuple[int, int] = (96, 128),
                  padding: float = 1.25) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """A crop of ``bbox`` (COCO ``[x, y, w, h]``) padded by ``padding`` and enlarged to the
    aspect ratio of ``output_size`` ``(W, H)``; returns ``(crop, A)`` with ``A`` the 2x3 matrix
    mapping image pixels to crop pixels (apply it to keypoints to draw them on the crop)."""
    import cv2

    out_w, out_h = output_size
    x, y, w, h = (float(v) for v in bbox)
    cx, cy = x + w / 2, y + h / 2
    aspect = out_w / out_h
    if w > aspect * h:
        h = w / aspect
    else:
        w = h * aspect
    w, h = w * padding, h * padding
    s = out_w / max(w, 1e-6)
    matrix = np.array([[s, 0, out_w / 2 - s * cx], [0, s, out_h / 2 - s * cy]])
    crop = cv2.warpAffine(np.asarray(image), matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))  # fmt: skip
    return crop, matrix


def render_instance_grid(images: list[np.ndarray], anns: list[dict], *, ncols: int = 4,
                         cell_size: tuple[int, int] = (96, 128), gap: int = 2) -> np.ndarray:
    """A grid (RGB uint8) of person crops with their skeletons; ``images[i]`` holds ``anns[i]``."""
    if len(images) != len(anns):
        raise ValueError(f"images: expected one image per annotation, got {len(images)} "
                         f"images for {len(anns)} annotations")  # fmt: skip
    if not anns:
        raise ValueError("anns: expected at least one annotation to draw")
    cw, ch = cell_size
    ncols = max(1, min(ncols, len(anns)))
    nrows = -(-len(anns) // ncols)
    grid = np.full((nrows * (ch + gap) - gap, ncols * (cw + gap) - gap, 3), 255, np.uint8)
    for i, (img, ann) in enumerate(zip(images, anns)):
        crop, matrix = crop_instance(img, ann["bbox"], cell_size)
        kp = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
        xy = kp[:, :2] @ matrix[:, :2].T + matrix[:, 2]
        crop = render_skeleton(crop, xy, kp[:, 2], radius=2, thickness=1)
        r, c = divmod(i, ncols)
        grid[r * (ch + gap) : r * (ch + gap) + ch, c * (cw + gap) : c * (cw + gap) + cw] = crop
    return grid


def show_image(image: np.ndarray, *, title: str | None = None, ax=None, figsize=(6, 5)):
    """Show an RGB array with matplotlib (no axes); returns the figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    ax.imshow(image)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def plot_keypoint_statistics(stats: dict, *, title: str | None = None):
    """Three panels from :func:`course_lib.coco.instance_statistics`: visibility per keypoint
    (stacked fractions of v=0/1/2), labelled keypoints per person, and areas with COCO's
    small/medium/large limits. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    from course_lib.coco import KEYPOINT_NAMES, NUM_KEYPOINTS

    vis = np.asarray(stats["visibility"])
    if vis.ndim != 2 or vis.shape[1] != NUM_KEYPOINTS or len(vis) == 0:
        raise ValueError(f"stats['visibility']: expected [N>0, 17], got shape {vis.shape}")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), gridspec_kw={"width_ratios": [1.4, 1, 1]})
    ax = axes[0]
    bottom = np.zeros(NUM_KEYPOINTS)
    for value, label, colour in ((2, "visible (v=2)", "#2ca02c"), (1, "occluded (v=1)", "#ff7f0e"),
                                 (0, "not labelled (v=0)", "#cccccc")):  # fmt: skip
        frac = (vis == value).mean(axis=0)
        ax.bar(range(NUM_KEYPOINTS), frac, bottom=bottom, color=colour, label=label)
        bottom += frac
    ax.set_xticks(range(NUM_KEYPOINTS), KEYPOINT_NAMES, rotation=70, fontsize=8)
    ax.set_ylabel("fraction of persons")
    ax.set_title("visibility per keypoint")
    ax.legend(fontsize=8, loc="lower right")
    ax = axes[1]
    ax.hist(np.asarray(stats["num_keypoints"]), bins=np.arange(NUM_KEYPOINTS + 2) - 0.5,
            color="#1f77b4", edgecolor="white")  # fmt: skip
    ax.set_xlabel("labelled keypoints (num_keypoints)")
    ax.set_ylabel("persons")
    ax.set_title("labelled keypoints per person")
    ax = axes[2]
    area = np.asarray(stats["area"], np.float64)
    area = area[area > 0]
    if len(area):
        bins = np.logspace(np.log10(area.min()), np.log10(area.max() * 1.01), 30)
        ax.hist(area, bins=bins, color="#9467bd", edgecolor="white")
        ax.set_xscale("log")
    for limit, name in ((32**2, "32²"), (96**2, "96²")):
        ax.axvline(limit, color="k", ls="--", lw=1)
        ax.text(limit, ax.get_ylim()[1] * 0.95, f" {name}", fontsize=8, va="top")
    ax.set_xlabel("area (mask pixels, log scale)")
    ax.set_title("areas: small | medium | large")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

# ---------------------------------------------------------------------------------------------
# Heatmaps: overlays and the heatmap widget (02_gaussian_heatmaps.ipynb, 03_topdown_data.ipynb)
# ---------------------------------------------------------------------------------------------

# Colour map of the heatmap overlays and the widget (perceptually uniform, dark at 0).
HEATMAP_CMAP = "magma"


def heatmap_overlay(image, heatmaps, *, alpha: float = 0.55, cmap: str = HEATMAP_CMAP) -> np.ndarray:
    """Blend the maximum over keypoints of ``heatmaps`` ``[K, h, w]`` (or one ``[h, w]`` map),
    resized to the image, onto an RGB ``image`` ``[H, W, 3]`` uint8. Returns uint8 RGB.

    Heatmap pixel ``i`` is centred on image pixel ``(i + 0.5) * stride - 0.5`` after the resize,
    as ``cv2.resize`` aligns pixel areas (the MSRA convention). Taught in ``03_topdown_data``.
    """
    import cv2
    from matplotlib import colormaps

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image: expected [H, W, 3] RGB, got shape {image.shape}")
    maps = heatmaps.detach().cpu().numpy() if hasattr(heatmaps, "detach") else np.asarray(heatmaps)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"heatmaps: expected [K, h, w] or [h, w], got shape {maps.shape}")
    merged = np.clip(maps.max(axis=0).astype(np.float32), 0.0, 1.0)
    big = cv2.resize(merged, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    colour = colormaps[cmap](big)[..., :3] * 255.0
    weight = alpha * big[..., None]
    return np.clip(image * (1.0 - weight) + colour * weight + 0.5, 0, 255).astype(np.uint8)


def show_heatmaps_on_crops(crops, heatmaps, *, keypoints=None, titles=None, ncols: int = 4,
                           size: float = 2.2):
    """A grid of crops (``[N, H, W, 3]`` uint8) with their merged heatmaps overlaid and, when
    given, keypoints ``[N, K, 2]`` in crop pixels (NaN to hide one). Returns the figure."""
    import matplotlib.pyplot as plt

    n = len(crops)
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    h, w = np.asarray(crops[0]).shape[:2]
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * h / w + 0.3),
                             squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(heatmap_overlay(crops[i], heatmaps[i]))
        if keypoints is not None:
            kp = np.asarray(keypoints[i], dtype=float)
            ax.scatter(kp[:, 0], kp[:, 1], s=8, c="cyan", marker="+", linewidths=0.8)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def show_keypoint_heatmaps(crop, heatmaps, *, names=None, ncols: int = 6, size: float = 1.6):
    """One panel per keypoint: the crop with that keypoint's heatmap overlaid. Returns the figure."""
    import matplotlib.pyplot as plt

    from course_lib.coco import KEYPOINT_NAMES

    maps = heatmaps.detach().cpu().numpy() if hasattr(heatmaps, "detach") else np.asarray(heatmaps)
    names = names or KEYPOINT_NAMES
    k = maps.shape[0]
    nrows = (k + ncols - 1) // ncols
    h, w = np.asarray(crop).shape[:2]
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * h / w + 0.3),
                             squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < k:
            ax.imshow(heatmap_overlay(crop, maps[i], alpha=0.7))
            ax.set_title(names[i], fontsize=7)
    fig.tight_layout()
    return fig


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
    import matplotlib.pyplot as plt

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
        out.clear_output(wait=True)
        with out:
            fig = draw_heatmap_widget_state(state)
            plt.show()
            plt.close(fig)

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

# ---------------------------------------------------------------------------------------------
# Decoders: the decoder widget (06_decoding_dark.ipynb)
# ---------------------------------------------------------------------------------------------

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

# ---------------------------------------------------------------------------------------------
# OKS: the OKS widget (08_oks_evaluation.ipynb)
# ---------------------------------------------------------------------------------------------

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
