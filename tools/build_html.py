"""Execute the notebooks and write a static course site: read it offline, or publish it.

Usage: python tools/build_html.py SRC_DIR OUT_DIR [--profile smoke] [--timeout 600] [--force]

Run by ``make html`` (the ``smoke`` edition, into ``html/``) and ``make book`` (the ``cpu``
edition, into ``book/``). Each ``SRC_DIR/*.ipynb`` is executed top to bottom (nbclient, in a
scratch folder so nothing is written beside the notebooks) and exported with the course's
nbconvert template (``tools/templates/course``, based on ``lab``) to ``OUT_DIR/<name>.html``,
figures embedded, with previous/next links and a link to the contents ``OUT_DIR/index.html``
(number, title, first sentence of each notebook). Widgets become static snapshots of their last
render, from the saved widget state (``widget_snapshot``).

Nothing is fetched from outside the site when it is read: MathJax is copied into
``OUT_DIR/_static/mathjax/`` from the ``jupyter-server-mathjax`` package; no require.js, widget
manager or mermaid; the badge images of the introductions become plain links.

Idempotent: a notebook whose source, ``course_lib`` and profile are unchanged since its last
successful build is not executed again (``--force`` does); its executed copy in
``OUT_DIR/.executed/`` is exported again only when its neighbours or the template changed. Files
are written atomically, only when changed. A failed notebook is still written (error shown,
marked in the contents); the exit status is then 1.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import html
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run from a clone, uninstalled
    sys.path.insert(0, str(REPO))

from course_lib.config import write_atomic  # noqa: E402

STAMPS = ".build-stamps.json"
EXECUTED = ".executed"
TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "course"
SITE_TITLE = "Heatmaps to Keypoints"
MATHJAX_DIR = "_static/mathjax"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


# --- chapters: number, title and description from the notebook's first markdown cell -----------


@dataclass(frozen=True)
class Chapter:
    """One page of the site, as the contents and the previous/next links show it."""

    name: str  # the notebook's file name
    html: str  # its page, relative to the site folder
    number: str  # "06", or "" for an unnumbered notebook
    title: str  # the heading without its number
    description: str  # HTML: the first sentence of the introduction

    @property
    def label(self) -> str:
        return f"{self.number} · {self.title}" if self.number else self.title


def notebook_title(nb) -> str:
    """The first markdown heading of the notebook, else ""."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.lstrip().startswith("#"):
                return line.lstrip().lstrip("#").strip()
    return ""


def _introduction(nb) -> str:
    """The first paragraph after the first heading of the first markdown cell that has one."""
    for cell in nb.cells:
        if cell.cell_type != "markdown" or not re.search(r"^\s*#", cell.source, re.M):
            continue
        after = re.split(r"^\s*#.*$", cell.source, maxsplit=1, flags=re.M)[1]
        paragraphs = [p for p in re.split(r"\n\s*\n", after) if p.strip()]
        return " ".join(paragraphs[0].split()) if paragraphs else ""
    return ""


def inline_markdown(text: str) -> str:
    """Escaped HTML of one line of markdown: code spans, bold, italics, links (as their text)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])", r"<em>\1</em>", out)


def first_sentence(paragraph: str, limit: int = 240) -> str:
    """The paragraph up to its first full stop (or ``limit`` characters, cut at a word)."""
    m = re.search(r"^(.+?[.!?])(\s|$)", paragraph)
    sentence = m.group(1) if m else paragraph
    if len(sentence) > limit:
        sentence = sentence[:limit].rsplit(" ", 1)[0] + " …"
    return sentence


def chapter_of(nb, nb_path: Path) -> Chapter:
    """The chapter that ``nb`` (read from ``nb_path``) makes: "06 · Title" headings split."""
    heading = notebook_title(nb) or nb_path.stem
    m = re.match(r"^(\d+)\s*[·.:-]\s*(.+)$", heading)
    number, title = (m.group(1), m.group(2)) if m else ("", heading)
    if not number and re.match(r"^\d+_", nb_path.name):
        number = nb_path.name.split("_", 1)[0]
    return Chapter(name=nb_path.name, html=nb_path.stem + ".html", number=number, title=title,
                   description=inline_markdown(first_sentence(_introduction(nb))))


# --- build keys: what an executed notebook, and what a page, depend on ---------------------------


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


def page_key(run_key: str, prev: Chapter | None, nxt: Chapter | None) -> str:
    """A digest of what one page depends on besides its execution: neighbours and template."""
    h = hashlib.sha256(run_key.encode())
    h.update(json.dumps([asdict(c) if c else None for c in (prev, nxt)]).encode())
    for src in sorted(TEMPLATES.rglob("*")):
        if src.is_file():
            h.update(src.name.encode())
            h.update(src.read_bytes())
    return h.hexdigest()


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` (atomically) unless it holds exactly that; True if written."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    write_atomic(path, text)
    return True


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


# --- offline: nothing on a page is fetched from outside the site -------------------------------

BADGE = re.compile(r"\[!\[([^\]]*)\]\((?:https?:)?//[^)]*\)\]\(([^)]*)\)")
REMOTE_IMAGE = re.compile(r"!\[([^\]]*)\]\(((?:https?:)?//[^)\s]*)[^)]*\)")


def unlink_remote_images(nb):
    """A copy of ``nb`` whose markdown images from the web (the Colab and Binder badges) are
    plain links: a link is followed only when the reader wants, an image would be fetched."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            source = BADGE.sub(r"[\1](\2)", cell.source)
            cell.source = REMOTE_IMAGE.sub(r"[\1](\2)", source)
    return nb


def mathjax_source() -> Path:
    """The folder of MathJax 2 shipped by the ``jupyter-server-mathjax`` package."""
    try:
        import jupyter_server_mathjax
    except ImportError as exc:
        raise SystemExit(
            "build_html: the pages serve MathJax themselves, from the jupyter-server-mathjax "
            f"package, which is not installed ({exc}): pip install -e '.[dev]'") from exc
    static = Path(jupyter_server_mathjax.__file__).resolve().parent / "static"
    if not (static / "MathJax.js").is_file():
        raise SystemExit(f"build_html: no MathJax.js in {static} (a broken jupyter-server-mathjax)")
    return static


def _mathjax_ignore(folder: str, names: list[str]) -> list[str]:
    """What the site does not need: other languages than English, the SVG output's fonts."""
    path = Path(folder)
    if path.name == "localization":
        return [n for n in names if n != "en"]
    return ["SVG"] if path.parts[-2:] == ("jax", "output") else []


def copy_mathjax(out_dir: Path) -> str:
    """Copy MathJax into ``out_dir/_static/mathjax`` (once per version); return its script URL."""
    from importlib.metadata import version

    source, target = mathjax_source(), out_dir / MATHJAX_DIR
    stamp = target / ".copied-from"
    wanted = f"jupyter-server-mathjax {version('jupyter-server-mathjax')}\n"
    if not (stamp.is_file() and stamp.read_text() == wanted):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, ignore=_mathjax_ignore)
        stamp.write_text(wanted)
    return f"{MATHJAX_DIR}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"


# --- execution and export ------------------------------------------------------------------------


def execute(nb, cwd: Path, kernel_env: dict, timeout: int) -> tuple[object, str | None]:
    """Run ``nb`` in ``cwd``; return it (executed as far as it got) and an error or None.
    ``timeout`` is per cell, unless the notebook's ``metadata.execution.timeout`` says (as nbmake)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(
        nb,
        timeout=nb.metadata.get("execution", {}).get("timeout", timeout),
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


def export_html(nb, title: str, course: dict | None = None) -> str:
    """The page of an executed notebook: widgets as snapshots, the course's navigation.

    ``course`` fills the template: ``mathjax`` (script URL), ``prev``/``next`` (``Chapter`` or
    None), ``index`` (the contents page) and ``site_title``."""
    from nbconvert import HTMLExporter

    static, _ = snapshot_widgets(unlink_remote_images(nb))
    exporter = HTMLExporter(template_name=TEMPLATE, extra_template_basedirs=[str(TEMPLATES)],
                            embed_images=True)
    static.metadata["title"] = title
    course = {"site_title": SITE_TITLE, "index": "index.html", "prev": None, "next": None,
              "mathjax": f"{MATHJAX_DIR}/MathJax.js", **(course or {})}
    body, _ = exporter.from_notebook_node(static, resources={"course": course})
    return body


def write_index(out_dir: Path, chapters: list[Chapter], entries: list[dict], profile: str) -> None:
    """The contents page: number, title (a link) and description of every chapter."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES / TEMPLATE),
                             autoescape=False, keep_trailing_newline=True)
    rows = [{**asdict(ch), "ok": e["ok"]} for ch, e in zip(chapters, entries, strict=True)]
    note = ": the numbers come from an untrained network" if profile == "smoke" else ""
    page = env.get_template("contents.html.j2").render(
        site_title=SITE_TITLE, chapters=rows, profile=profile, profile_note=note,
        css=(TEMPLATES / TEMPLATE / "static" / "course.css").read_text())
    write_if_changed(out_dir / "index.html", page)


def kernel_environment(profile: str) -> dict:
    """The kernel's environment: ours, the profile, inline figures (captured, not drawn
    off-screen), the clone importable."""
    env = {**os.environ, "COURSE_PROFILE": profile, "MPLBACKEND": INLINE_BACKEND}
    env.setdefault("PYTHONPATH", str(REPO))
    return env


@dataclass
class Site:
    """What one build shares across notebooks."""

    out_dir: Path
    profile: str
    timeout: int
    force: bool
    stamps: dict
    scratch: Path
    mathjax: str


def build_one(site: Site, nb_path: Path, chapter: Chapter, prev: Chapter | None,
              nxt: Chapter | None) -> dict:
    """Execute (unless up to date) and export one notebook; return its entry."""
    import nbformat

    key = build_key(nb_path, site.profile)
    pkey = page_key(key, prev, nxt)
    page, cached = site.out_dir / chapter.html, site.out_dir / EXECUTED / chapter.name
    stamp = site.stamps.get(chapter.name)
    stamp = stamp if isinstance(stamp, dict) else {}  # an older tool stored a plain digest
    entry = {"name": chapter.name, "title": chapter.label, "html": chapter.html, "ok": True,
             "skipped": False, "seconds": 0.0}
    fresh = not site.force and stamp.get("run") == key and cached.is_file()
    if fresh and stamp.get("page") == pkey and page.is_file():
        entry["skipped"] = True
        return entry
    if fresh:
        nb, error = nbformat.read(cached, as_version=4), None
        entry["skipped"] = True
    else:
        start = time.perf_counter()
        source = nbformat.read(nb_path, as_version=4)
        nb, error = execute(source, site.scratch, kernel_environment(site.profile), site.timeout)
        entry["seconds"] = round(time.perf_counter() - start, 1)
    course = {"prev": prev, "next": nxt, "mathjax": site.mathjax}
    write_if_changed(page, export_html(nb, notebook_title(nb) or nb_path.stem, course))
    if error is None:
        if not fresh:
            write_atomic(cached, nbformat.writes(nb))
        site.stamps[chapter.name] = {"run": key, "page": pkey}
    else:
        entry.update(ok=False, error=error)
        site.stamps.pop(chapter.name, None)
        cached.unlink(missing_ok=True)
    return entry


def build(src_dir: Path, out_dir: Path, *, profile: str = "smoke", timeout: int = 600,
          force: bool = False, only: str = "*") -> list[dict]:
    """Build the site ``out_dir`` from the notebooks in ``src_dir`` whose names match the glob
    ``only`` (default: all); one entry per notebook."""
    import nbformat
    from tqdm.auto import tqdm

    notebooks = sorted(p for p in src_dir.glob("*.ipynb")
                       if not p.name.startswith(".") and p.match(only))
    if not notebooks:
        raise SystemExit(f"build_html: no notebooks matching {only!r} in {src_dir}")
    chapters = [chapter_of(nbformat.read(p, as_version=4), p) for p in notebooks]
    out_dir.mkdir(parents=True, exist_ok=True)
    stamps_path = out_dir / STAMPS
    stamps = json.loads(stamps_path.read_text()) if stamps_path.exists() else {}
    entries = []
    with tempfile.TemporaryDirectory(prefix="course-html-") as scratch:
        site = Site(out_dir, profile, timeout, force, stamps, Path(scratch), copy_mathjax(out_dir))
        bar = tqdm(list(enumerate(notebooks)), desc="html", unit="notebook")
        for i, nb_path in bar:
            bar.set_postfix_str(nb_path.name)
            prev = chapters[i - 1] if i > 0 else None
            nxt = chapters[i + 1] if i + 1 < len(chapters) else None
            entry = build_one(site, nb_path, chapters[i], prev, nxt)
            if not entry["ok"]:
                tqdm.write(f"build_html: {nb_path.name} failed: {entry['error']}")
            entries.append(entry)
            write_if_changed(stamps_path, json.dumps(stamps, indent=1, sort_keys=True))
        bar.close()
    write_index(out_dir, chapters, entries, profile)
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="folder with the notebooks")
    parser.add_argument("out", type=Path, help="folder for the site")
    parser.add_argument("--profile", default=os.environ.get("COURSE_PROFILE") or "smoke",
                        help="course profile the notebooks run in (default: smoke)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--force", action="store_true", help="execute up-to-date notebooks too")
    parser.add_argument("--only", default="*", help="glob of the notebook names (default: all)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    entries = build(args.src, args.out, profile=args.profile, timeout=args.timeout,
                    force=args.force, only=args.only)
    for e in entries:
        state = "up to date" if e["skipped"] else ("ok" if e["ok"] else "FAILED")
        print(f"{e['name']:40s} {state:10s} {e['seconds']:6.1f} s  {e['title']}")
    print(f"contents: {args.out / 'index.html'} ({time.perf_counter() - start:.0f} s)")
    return 0 if all(e["ok"] for e in entries) else 1


if __name__ == "__main__":
    sys.exit(main())
