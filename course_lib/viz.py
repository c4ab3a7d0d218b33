"""Static figures shared by the notebooks: skeletons, instance grids, statistics, heatmap overlays.

Taught in ``01_coco_keypoints.ipynb`` (skeletons, crops, statistics), ``03_topdown_data.ipynb``
(heatmap overlays) and ``04_resnet_deconv.ipynb`` (block diagram). Every function returns an array or a matplotlib figure; the interactive
widgets of notebooks 02, 06 and 08 live in :mod:`course_lib.widgets`. matplotlib and cv2 are
imported inside the functions that need them (no eager optional imports).
"""

from __future__ import annotations

import numpy as np

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
    from matplotlib.ticker import MaxNLocator

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
    ax.set(ylabel="fraction of persons", title="visibility per keypoint", ylim=(0, 1.18),
           yticks=np.linspace(0, 1, 6))
    ax.legend(fontsize=8, loc="upper center", ncol=3, frameon=False)
    ax = axes[1]
    ax.hist(np.asarray(stats["num_keypoints"]), bins=np.arange(NUM_KEYPOINTS + 2) - 0.5,
            color="#1f77b4", edgecolor="white")  # fmt: skip
    ax.set_xlabel("labelled keypoints (num_keypoints)")
    ax.set_ylabel("persons")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
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
    ax.set_ylabel("persons")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("areas: small | medium | large")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Heatmaps: overlays (03_topdown_data.ipynb; the colour map also in 02_gaussian_heatmaps.ipynb)
# ---------------------------------------------------------------------------------------------

# Colour map of the heatmap overlays and the widget (perceptually uniform, dark at 0).
HEATMAP_CMAP = "magma"


def upsample_heatmap(heatmap, size: tuple[int, int], *, udp: bool = False) -> np.ndarray:
    """One ``[h, w]`` heatmap resampled (bilinear) to a crop of ``size = (W, H)``, float32.

    Exact to the course's pixel convention (pixel ``i`` is centred on coordinate ``i``):
    heatmap pixel ``(i, j)`` lands on crop pixel ``(s_x i, s_y j)`` with ``s = W / w`` (MSRA,
    ``x_hm = x / stride``), or ``(W - 1) / (w - 1)`` with ``udp=True``. It is an affine warp with
    the matrix ``[[s_x, 0, 0], [0, s_y, 0]]``; the last ``s - 1`` crop columns and rows lie past
    the last heatmap pixel centre (still inside that pixel) and repeat its value. ``cv2.resize``
    would instead align pixel *areas*, putting pixel ``i`` at ``(i + 0.5) s - 0.5``: 1.5 crop
    pixels off at stride 4. Taught in ``03_topdown_data.ipynb``.
    """
    import cv2

    hm = np.asarray(heatmap, dtype=np.float32)
    if hm.ndim != 2:
        raise ValueError(f"heatmap: expected [h, w], got shape {hm.shape}")
    (big_w, big_h), (h, w) = size, hm.shape
    if udp and (w < 2 or h < 2):
        raise ValueError(f"udp: needs a heatmap of at least 2 x 2 pixels, got {w} x {h}")
    sx, sy = ((big_w - 1) / (w - 1), (big_h - 1) / (h - 1)) if udp else (big_w / w, big_h / h)
    matrix = np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0]])  # heatmap -> crop
    return cv2.warpAffine(hm, matrix, (int(big_w), int(big_h)), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def heatmap_overlay(image, heatmaps, *, alpha: float = 0.55, cmap: str = HEATMAP_CMAP,
                    udp: bool = False) -> np.ndarray:  # fmt: skip
    """Blend the maximum over keypoints of ``heatmaps`` ``[K, h, w]`` (or one ``[h, w]`` map),
    resampled to the image by :func:`upsample_heatmap` (heatmap pixel ``i`` on image pixel
    ``stride * i``, the course's MSRA convention; ``udp=True``: UDP's), onto an RGB ``image``
    ``[H, W, 3]`` uint8. Returns uint8 RGB. Taught in ``03_topdown_data.ipynb``.
    """
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
    big = np.clip(upsample_heatmap(merged, (image.shape[1], image.shape[0]), udp=udp), 0.0, 1.0)
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


# ---------------------------------------------------------------------------------------------
# network block diagram (04_resnet_deconv.ipynb)
# ---------------------------------------------------------------------------------------------


def plot_shape_table(rows: list[dict], *, ax=None, title: str | None = None):
    """A block diagram of a network from :func:`course_lib.models.shape_table`: one box per
    stage, its height the stage's resolution (H relative to the input), its width growing with
    the channels; labelled with the stage, ``C x H x W``, the stride and the parameters.
    Backbone stages blue, head stages orange. Taught in ``04_resnet_deconv.ipynb``."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Patch, Rectangle

    if ax is None:
        _, ax = plt.subplots(figsize=(1.15 * len(rows) + 1, 3.6))
    height0, x = rows[0]["shape"][1], 0.0
    for i, row in enumerate(rows):
        c, h, w = row["shape"]
        name = row["stage"].split(":")[0].split(" ")[0]
        head = name.startswith(("deconv", "final"))
        colour = "0.75" if i == 0 else ("#f5a04a" if head else "#5b8fd6")
        bw, bh = 0.25 + 0.09 * np.log2(max(c, 1)), max(h / height0, 0.04) * 2.0
        ax.add_patch(Rectangle((x, -bh / 2), bw, bh, fc=colour, ec="k", lw=0.8))
        ax.text(x + bw / 2, 1.12, name, ha="center", fontsize=8, weight="bold")
        info = f"{c}x{h}x{w}\n/{row['stride']:g}"
        p = row["params"]
        info += (f"\n{p / 1e6:.2f} M" if p >= 1e4 else f"\n{p / 1e3:.1f} k") if p else ""
        ax.text(x + bw / 2, -1.2, info, ha="center", va="top", fontsize=7)
        if i:
            ax.add_patch(FancyArrowPatch((x - 0.35, 0), (x - 0.02, 0), arrowstyle="->",
                                         mutation_scale=8, lw=0.8))  # fmt: skip
        x += bw + 0.4
    ax.set(xlim=(-0.2, x), ylim=(-2.0, 1.35))
    ax.set_axis_off()
    ax.legend(handles=[Patch(fc="#5b8fd6", ec="k", label="backbone"),
                       Patch(fc="#f5a04a", ec="k", label="head")], loc="upper right",
              fontsize=7, frameon=False, bbox_to_anchor=(1.0, 1.12))  # fmt: skip
    if title:
        ax.set_title(title, fontsize=9, pad=14)
    return ax


# ---------------------------------------------------------------------------------------------
# training curves (05_training_mse.ipynb)
# ---------------------------------------------------------------------------------------------


def plot_history(history: dict, ax=None):
    """Loss (log scale, left axis) and validation AP (right axis) against training minutes: the
    curve of ``course_lib.train.train``'s history. Taught in ``05_training_mse.ipynb``."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    ax.clear()
    for other in ax.figure.axes:  # remove the AP twin axis of a previous call
        if other is not ax and getattr(other, "_course_twin", False):
            other.remove()
    tr = history.get("train", [])
    if tr:
        ax.plot([r["time_s"] / 60 for r in tr], [r["loss"] for r in tr], color="tab:blue",
                label="training loss")
        ax.set_yscale("log")
    ax.set_xlabel("training time (min)")
    ax.set_ylabel("MSE loss", color="tab:blue")
    val = history.get("val", [])
    if val:
        twin = ax.twinx()
        twin._course_twin = True
        twin.plot([r["time_s"] / 60 for r in val], [r["AP"] for r in val], "o-", color="tab:red",
                  label="val OKS AP")
        twin.set_ylim(0, 1)
        twin.set_ylabel("val OKS AP", color="tab:red")
    ax.grid(alpha=0.3)
    return ax


class LivePlot:
    """The learning curve of :func:`plot_history`, redrawn while ``course_lib.train.train`` runs,
    at a bounded cost: the callback of ``05_training_mse.ipynb``.

    Rendering a figure to a PNG costs hundreds of milliseconds on a laptop CPU, as much as a
    training step. So the lines are updated in place, and the figure is rendered again only
    once the time since the last render exceeds ``(1 - share) / share`` times what that render
    took (and after every validation, which adds a point to the AP curve): drawing then takes
    at most about ``share`` of the training time, whatever the machine. ``show(fig)`` puts the
    figure on screen (default: an IPython display handle, updated in place).
    """

    def __init__(self, *, share: float = 0.02, show=None, figsize=(7.0, 3.5)) -> None:
        import matplotlib.pyplot as plt

        if not 0 < share < 1:
            raise ValueError(f"share: expected a fraction in (0, 1), got {share!r}")
        self.share, self.renders, self.seconds = share, 0, 0.0
        self.fig, self.ax = plt.subplots(figsize=figsize)
        self.twin = self.ax.twinx()
        (self.loss_line,) = self.ax.plot([], [], color="tab:blue", label="training loss")
        (self.ap_line,) = self.twin.plot([], [], "o-", color="tab:red", label="val OKS AP")
        self.ax.set(xlabel="training time (min)", yscale="log")
        self.ax.set_ylabel("MSE loss", color="tab:blue")
        self.twin.set_ylim(0, 1)
        self.twin.set_ylabel("val OKS AP", color="tab:red")
        self.ax.grid(alpha=0.3)
        plt.close(self.fig)  # shown through ``show``, not by the notebook's end-of-cell display
        self._show = show or self._display
        self._handle = None
        self._next = 0.0  # perf_counter time before which no render happens
        self._val_rows = 0

    def _display(self, fig) -> None:
        from IPython.display import display

        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)

    def __call__(self, history: dict, *, force: bool = False) -> bool:
        """Update the curves from ``history``; render when due (or ``force``). True if rendered."""
        import time

        new_point = len(history.get("val", [])) != self._val_rows
        if not (force or new_point or time.perf_counter() >= self._next):
            return False
        start = time.perf_counter()
        tr, val = history.get("train", []), history.get("val", [])
        self.loss_line.set_data([r["time_s"] / 60 for r in tr], [r["loss"] for r in tr])
        self.ap_line.set_data([r["time_s"] / 60 for r in val], [r["AP"] for r in val])
        self._val_rows = len(val)
        self.ax.relim()
        self.ax.autoscale_view()
        self._show(self.fig)
        cost = time.perf_counter() - start
        self.renders, self.seconds = self.renders + 1, self.seconds + cost
        self._next = time.perf_counter() + cost * (1 - self.share) / self.share
        return True
