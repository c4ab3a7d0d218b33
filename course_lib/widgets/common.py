"""The shared redraw of the widgets: a matplotlib figure shown as one PNG in an ``Output``.

Used by the heatmap widget (``02_gaussian_heatmaps.ipynb``), the decoder widget
(``06_decoding_dark.ipynb``) and the OKS widget (``08_oks_evaluation.ipynb``). matplotlib is
imported inside the function.
"""

from __future__ import annotations


def show_figure(out, fig, *, dpi: int = 80) -> None:
    """Show matplotlib ``fig`` in the ipywidgets ``Output`` ``out`` as one PNG image, replacing
    what it showed, and close the figure (the widgets of notebooks 02, 06 and 08 redraw this way).

    The image is set as the widget's ``outputs`` (what ``Output.append_display_data`` does)
    rather than displayed inside ``with out:``: capturing a display into an Output while a cell
    runs makes headless notebook runners (nbclient, hence nbmake) stall now and then until the
    cell's timeout, and the assignment shows the same image in JupyterLab.
    """
    import base64
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    png = base64.b64encode(buf.getvalue()).decode("ascii")
    out.outputs = ({"output_type": "display_data", "metadata": {},
                    "data": {"image/png": png, "text/plain": "<course figure>"}},)
