"""Drawing helpers shared by the notebooks: skeletons, instance grids, heatmap overlays, widgets.

Each widget helper returns the widget and exposes its pure ``render_*`` function, so tests can
drive it without a browser. matplotlib and ipywidgets are imported inside the functions that
need them (no eager optional imports).
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------------------------------------
# Skeletons, instance grids, statistics (01_coco_keypoints.ipynb)
# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# Heatmaps: overlays and the heatmap widget (02_gaussian_heatmaps.ipynb, 03_topdown_data.ipynb)
# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# Decoders: the decoder widget (06_decoding_dark.ipynb)
# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# OKS: the OKS widget (08_oks_evaluation.ipynb)
# ---------------------------------------------------------------------------------------------
