"""Execute every notebook and write a static HTML folder: a course website, or reading offline.

Usage: python tools/build_html.py SRC_DIR OUT_DIR [--profile smoke] [--timeout 600] [--force]

Run by ``make html``. Each ``SRC_DIR/*.ipynb`` is executed top to bottom (nbclient, in a scratch
folder so nothing is written beside the notebooks, in the ``smoke`` profile unless told otherwise)
and exported with nbconvert's ``lab`` template to ``OUT_DIR/<name>.html``, figures embedded as
data URIs. ``OUT_DIR/index.html`` lists the notebooks with their titles. Widgets need a kernel to
be interactive, so each widget is replaced by a static snapshot of its last render, read from the
saved widget state: the images and text of its ``Output`` and ``Image`` children, the values of
its controls, progress bars as ``<progress>``. The result needs no network and no JavaScript.

Idempotent: a notebook whose source, ``course_lib`` and profile are unchanged since its last
successful build is skipped (``--force`` rebuilds it); files are written atomically. A notebook
that fails is still written (with its error, marked in the index) and the exit status is 1.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import html
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run from a clone, uninstalled
    sys.path.insert(0, str(REPO))

from course_lib.config import write_atomic  # noqa: E402

STAMPS = ".build-stamps.json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


# --- small helpers -----------------------------------------------------------------------------


def notebook_title(nb) -> str:
    """The first markdown heading of the notebook, else its file name."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.lstrip().startswith("#"):
                return line.lstrip("#").strip()
    return ""


def dependency_files() -> list[Path]:
    """Files besides the notebook whose change makes every notebook stale: course_lib, this."""
    return sorted((REPO / "course_lib").rglob("*.py")) + [Path(__file__).resolve()]


def build_key(nb_path: Path, profile: str) -> str:
    """A digest of everything a notebook's output depends on here: itself, course_lib, profile."""
    h = hashlib.sha256()
    h.update(profile.encode())
    h.update(nb_path.read_bytes())
    for src in dependency_files():
        h.update(src.name.encode())
        h.update(src.read_bytes())
    return h.hexdigest()


# --- widgets: a static snapshot of the last render ---------------------------------------------


def _model_ref(value) -> str | None:
    if isinstance(value, str) and value.startswith("IPY_MODEL_"):
        return value[len("IPY_MODEL_") :]
    return None


def _output_html(output: dict) -> str:
    """One output (of a cell or of an Output widget) as plain HTML."""
    kind = output.get("output_type")
    if kind == "stream":
        return f"<pre class='snapshot-stream'>{html.escape(output.get('text', ''))}</pre>"
    if kind == "error":
        return f"<pre class='snapshot-error'>{html.escape(output.get('ename', ''))}: " \
               f"{html.escape(output.get('evalue', ''))}</pre>"
    data = output.get("data", {})
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            payload = data[mime]
            payload = "".join(payload) if isinstance(payload, list) else payload
            return f"<img src='data:{mime};base64,{payload.strip()}' alt='figure'>"
    if "image/svg+xml" in data:
        svg = data["image/svg+xml"]
        return "".join(svg) if isinstance(svg, list) else svg
    if "text/html" in data:
        text = data["text/html"]
        return "".join(text) if isinstance(text, list) else text
    if "text/plain" in data:
        text = data["text/plain"]
        text = "".join(text) if isinstance(text, list) else text
        return f"<pre>{html.escape(text)}</pre>"
    return ""


def _buffer(model: dict, name: str) -> bytes | None:
    for buf in model.get("buffers", []) or []:
        if buf.get("path") == [name] and buf.get("encoding") == "base64":
            return base64.b64decode(buf["data"])
    return None


def widget_snapshot(model_id: str, models: dict, depth: int = 0) -> str:
    """HTML for the last render of widget ``model_id`` from the saved widget state."""
    entry = models.get(model_id)
    if entry is None or depth > 30:
        return ""
    name = entry.get("model_name", "")
    state = entry.get("state", {})
    desc = html.escape(str(state.get("description", "") or ""))
    label = f"<span class='snapshot-label'>{desc}</span> " if desc else ""
    if name == "OutputModel":
        return "".join(_output_html(o) for o in state.get("outputs", []))
    if name == "ImageModel":
        raw = _buffer(entry, "value")
        if raw is None:
            return ""
        fmt = state.get("format", "png")
        return f"<img src='data:image/{fmt};base64,{base64.b64encode(raw).decode()}' alt='image'>"
    if name in ("HTMLModel", "HTMLMathModel"):
        return f"<span class='snapshot-html'>{label}{state.get('value', '')}</span>"
    if name == "LabelModel":
        return f"<span class='snapshot-label'>{html.escape(str(state.get('value', '')))}</span>"
    if name in ("FloatProgressModel", "IntProgressModel"):
        lo, hi, v = state.get("min", 0), state.get("max", 100), state.get("value", 0)
        return f"{label}<progress value='{v - lo}' max='{hi - lo}'></progress>"
    children = state.get("children")
    if isinstance(children, list):  # boxes, tabs, accordions
        parts = [widget_snapshot(_model_ref(c) or "", models, depth + 1) for c in children]
        row = name in ("HBoxModel", "GridBoxModel")
        style = "flex-direction:row;align-items:center" if row else "flex-direction:column"
        inner = "".join(f"<div class='snapshot-item'>{p}</div>" for p in parts if p)
        return f"<div class='snapshot-box' style='{style}'>{inner}</div>"
    options = state.get("_options_labels")
    if "index" in state and options is not None:  # dropdowns, toggle buttons, selection sliders
        idx = state["index"]
        picked = idx if isinstance(idx, (list, tuple)) else [idx]
        value = ", ".join(str(options[i]) for i in picked
                          if isinstance(i, int) and 0 <= i < len(options))
        return f"<span class='snapshot-control'>{label}<b>{html.escape(value)}</b></span>"
    if "value" in state:  # sliders, checkboxes, text boxes
        value = state["value"]
        if isinstance(value, float):
            value = repr(round(value, 6))
        return f"<span class='snapshot-control'>{label}<b>{html.escape(str(value))}</b></span>"
    return ""


def snapshot_widgets(nb) -> tuple[object, int]:
    """A copy of ``nb`` whose widget views are replaced by static snapshots (and the count)."""
    nb = copy.deepcopy(nb)
    state = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {})
    models = state.get("state", {})
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            model_id = data[WIDGET_VIEW].get("model_id", "")
            snap = widget_snapshot(model_id, models)
            if not snap:
                continue  # no saved state: keep the text fallback (e.g. "VBox(...)")
            count += 1
            output["data"] = {
                "text/html": f"<div class='widget-snapshot' title='last render of an interactive "
                f"widget (run the notebook to use it)'>{snap}</div>",
                "text/plain": data.get("text/plain", ""),
            }
    return nb, count


CSS = """
<style>
.widget-snapshot { border-left: 3px solid #c0c8d0; padding: 4px 8px; margin: 2px 0; }
.snapshot-box { display: flex; gap: 8px; align-items: flex-start; flex-wrap: wrap; }
.snapshot-control { font-family: sans-serif; font-size: 13px; margin-right: 12px; }
.snapshot-label { color: #445; }
.widget-snapshot pre { margin: 2px 0; }
</style>
"""


# --- execution and export ------------------------------------------------------------------------


def execute(nb, cwd: Path, kernel_env: dict, timeout: int) -> tuple[object, str | None]:
    """Run ``nb`` in ``cwd``; return it (executed as far as it got) and an error or None."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
        store_widget_state=True,
        record_timing=False,
    )
    try:
        client.execute(env=kernel_env)
    except CellExecutionError as exc:
        return nb, str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
    except Exception as exc:  # a dead kernel, a timeout: still write what we have
        return nb, f"{type(exc).__name__}: {exc}"
    return nb, None


def export_html(nb, title: str) -> str:
    from nbconvert import HTMLExporter

    static, _ = snapshot_widgets(nb)
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    static.metadata["title"] = title
    body, _ = exporter.from_notebook_node(static)
    return body.replace("</head>", CSS + "</head>", 1)


def write_index(out_dir: Path, entries: list[dict], profile: str) -> None:
    rows = []
    for e in entries:
        status = "" if e["ok"] else " <span class='failed'>(failed: see the notebook)</span>"
        rows.append(
            f"<li><a href='{html.escape(e['html'])}'>{html.escape(e['title'])}</a> "
            f"<span class='file'>{html.escape(e['name'])}</span>{status}</li>"
        )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Heatmaps to Keypoints: the notebooks</title>
<style>
body {{ font-family: sans-serif; max-width: 50em; margin: 2em auto; line-height: 1.5; }}
.file {{ color: #778; font-size: 90%; }} .failed {{ color: #b00; }}
</style></head><body>
<h1>Heatmaps to Keypoints</h1>
<p>The course notebooks, executed in the <code>{html.escape(profile)}</code> profile. Widgets show
their last render; run the notebooks in JupyterLab to use them.</p>
<ol>
{chr(10).join(rows)}
</ol>
</body></html>
"""
    write_atomic(out_dir / "index.html", page)


def build(src_dir: Path, out_dir: Path, *, profile: str = "smoke", timeout: int = 600,
          force: bool = False) -> list[dict]:
    """Build ``out_dir`` from the notebooks in ``src_dir``; return one entry per notebook."""
    import nbformat
    from tqdm.auto import tqdm

    notebooks = sorted(p for p in src_dir.glob("*.ipynb") if not p.name.startswith("."))
    if not notebooks:
        raise SystemExit(f"build_html: no notebooks in {src_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    stamps_path = out_dir / STAMPS
    stamps = json.loads(stamps_path.read_text()) if stamps_path.exists() else {}

    kernel_env = dict(os.environ)
    kernel_env["COURSE_PROFILE"] = profile
    kernel_env["MPLBACKEND"] = INLINE_BACKEND  # figures must be captured, not drawn off-screen
    kernel_env.setdefault("PYTHONPATH", str(REPO))

    entries = []
    scratch = tempfile.TemporaryDirectory(prefix="course-html-")
    bar = tqdm(notebooks, desc="html", unit="notebook")
    for nb_path in bar:
        bar.set_postfix_str(nb_path.name)
        nb = nbformat.read(nb_path, as_version=4)
        title = notebook_title(nb) or nb_path.stem
        html_name = nb_path.stem + ".html"
        key = build_key(nb_path, profile)
        entry = {"name": nb_path.name, "title": title, "html": html_name, "ok": True,
                 "skipped": False, "seconds": 0.0}
        if not force and stamps.get(nb_path.name) == key and (out_dir / html_name).exists():
            entry["skipped"] = True
            entries.append(entry)
            continue
        start = time.perf_counter()
        nb, error = execute(nb, Path(scratch.name), kernel_env, timeout)
        entry["seconds"] = round(time.perf_counter() - start, 1)
        write_atomic(out_dir / html_name, export_html(nb, title))
        if error is None:
            stamps[nb_path.name] = key
        else:
            entry["ok"] = False
            entry["error"] = error
            stamps.pop(nb_path.name, None)
            tqdm.write(f"build_html: {nb_path.name} failed: {error}")
        entries.append(entry)
        write_atomic(stamps_path, json.dumps(stamps, indent=1, sort_keys=True))
    bar.close()
    scratch.cleanup()
    write_index(out_dir, entries, profile)
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="folder with the notebooks")
    parser.add_argument("out", type=Path, help="folder for the HTML files")
    parser.add_argument("--profile", default=os.environ.get("COURSE_PROFILE") or "smoke",
                        help="course profile the notebooks run in (default: smoke)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--force", action="store_true", help="rebuild up-to-date notebooks too")
    args = parser.parse_args(argv)
    entries = build(args.src, args.out, profile=args.profile, timeout=args.timeout,
                    force=args.force)
    for e in entries:
        state = "up to date" if e["skipped"] else ("ok" if e["ok"] else "FAILED")
        print(f"{e['name']:40s} {state:10s} {e['seconds']:6.1f} s  {e['title']}")
    print(f"index: {args.out / 'index.html'}")
    return 0 if all(e["ok"] for e in entries) else 1


if __name__ == "__main__":
    sys.exit(main())
