"""The shared redraw of the widgets: a matplotlib figure shown as one PNG in an ``Output``.

Used by the decoder widget (``06_decoding_dark.ipynb``) and the OKS widget
(``08_oks_evaluation.ipynb``). matplotlib and IPython are imported inside the function.
"""

from __future__ import annotations


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
