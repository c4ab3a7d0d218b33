"""The interactive widgets of the notebooks (ipywidgets), one module per notebook.

- :mod:`~course_lib.widgets.heatmaps`: the heatmap widget of ``02_gaussian_heatmaps.ipynb``;
- :mod:`~course_lib.widgets.decoding`: the decoder widget of ``06_decoding_dark.ipynb``;
- :mod:`~course_lib.widgets.oks`: the OKS widget of ``08_oks_evaluation.ipynb``.

Each widget has a pure ``render_*`` function that computes what is drawn (tests drive it without
a browser), a ``draw_*`` function that draws it as a matplotlib figure, and the ``*_widget`` that
wires the sliders (``continuous_update=False``, fixed layouts) and redraws on each change.
:func:`~course_lib.widgets.common.show_figure` is their shared PNG redraw. Importing this package
needs only numpy: matplotlib and ipywidgets are imported when a widget is drawn or built.
"""

from course_lib.widgets.common import show_figure
from course_lib.widgets.decoding import (
    DECODER_COLORS,
    decoder_widget,
    draw_decoder_demo,
    render_decoder_demo,
)
from course_lib.widgets.heatmaps import (
    HEATMAP_WIDGET_FIELD,
    HEATMAP_WIDGET_STRIDES,
    draw_heatmap_widget_state,
    heatmap_widget,
    render_heatmap_widget_state,
)
from course_lib.widgets.oks import OKS_DEMO_POSE, draw_oks_demo, oks_widget, render_oks_demo

__all__ = [
    "DECODER_COLORS",
    "HEATMAP_WIDGET_FIELD",
    "HEATMAP_WIDGET_STRIDES",
    "OKS_DEMO_POSE",
    "decoder_widget",
    "draw_decoder_demo",
    "draw_heatmap_widget_state",
    "draw_oks_demo",
    "heatmap_widget",
    "oks_widget",
    "render_decoder_demo",
    "render_heatmap_widget_state",
    "render_oks_demo",
    "show_figure",
]
