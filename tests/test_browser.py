"""The course in a real JupyterLab, driven through Debian's chromium with Playwright.

For each notebook: open it, wait until its kernel is really connected, Run All from the Run menu,
wait for every cell, then move the first slider with the keyboard and by typing into its readout
and check that the figure inside the widget is redrawn each time, and that no cell shows an
error. Screenshots (full page and widget) land in ``test-artifacts/browser/``.

The server serves a temporary copy of the notebooks (JupyterLab autosaves outputs) with its own
settings, workspace and runtime folders, news and update checks off, and the kernel runs in the
``smoke`` profile. Everything started here (server, kernels, browser) is stopped at the end.
Skipped, saying why, only when chromium is missing (``.ci/run`` installs it with apt).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts" / "browser"
FIXTURE = REPO / "tests" / "fixtures" / "widget_fixture.ipynb"
NOTEBOOKS = {
    "fixture": FIXTURE,
    "02": REPO / "notebooks" / "02_gaussian_heatmaps.ipynb",
    "06": REPO / "notebooks" / "06_decoding_dark.ipynb",
}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SERVER_START_S = 90  # JupyterLab answers /api/status after about 2 s on an idle machine
KERNEL_READY_S = 90  # page load + kernel start + connection
RUN_ALL_S = 240  # every cell of one notebook in the smoke profile
REDRAW_S = 60  # one slider change: kernel callback + new image

# Text that means a cell failed: a traceback or "SomethingError:" in any output, the message
# ipywidgets shows when a widget cannot render, or a renderer's "Javascript Error".
ERROR_TEXT = re.compile(
    r"Traceback|\b\w*Error:|Error displaying widget|Javascript Error|[Mm]odel not found"
)


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def _processes_mentioning(marker: str) -> list[int]:
    """PIDs whose command line contains ``marker`` (our unique temporary folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            pids.append(int(entry.name))
    return pids


class LabServer:
    """A JupyterLab server on 127.0.0.1 in its own process group, isolated in ``base``."""

    def __init__(self, base: Path, notebooks: list[Path]):
        self.base = base
        self.root = base / "root"
        self.root.mkdir(parents=True)
        for nb in notebooks:
            shutil.copy2(nb, self.root / nb.name)
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / "jupyterlab.log"
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict:
        env = os.environ.copy()
        dirs = {
            "JUPYTER_CONFIG_DIR": "config",
            "JUPYTER_DATA_DIR": "data",
            "JUPYTER_RUNTIME_DIR": "runtime",
            "JUPYTERLAB_SETTINGS_DIR": "settings",
            "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
            "IPYTHONDIR": "ipython",
            "MPLCONFIGDIR": "mpl",
        }
        for var, name in dirs.items():
            (self.base / name).mkdir(exist_ok=True)
            env[var] = str(self.base / name)
        env["COURSE_PROFILE"] = "smoke"
        # a learner's kernel draws inline figures; an inherited MPLBACKEND=Agg would hide them
        env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        env.setdefault("OMP_NUM_THREADS", "1")
        settings = self.base / "settings"
        _write_json(
            settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
            {"fetchNews": "false", "checkForUpdates": False},
        )
        # every cell stays in the DOM (no virtual scrolling), so all outputs can be inspected
        _write_json(
            settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
            {"windowingMode": "none"},
        )
        return env

    def start(self) -> None:
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.terminals_enabled=False",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.expose_app_in_browser=True",
        ]
        if os.geteuid() == 0:
            cmd.append("--ServerApp.allow_root=True")
        log = open(self.log_path, "wb")  # noqa: SIM115 (closed with the process)
        self.proc = subprocess.Popen(
            cmd, cwd=self.root, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.api("status"), timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.25)
        raise RuntimeError(f"JupyterLab did not answer within {SERVER_START_S} s:\n{self.log_tail()}")

    def api(self, path: str) -> str:
        return f"{self.url}/api/{path}?token={self.token}"

    def lab_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}"

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Shut down kernels and server, then kill whatever is left of what we started."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:  # orderly: the server shuts its kernels down
                req = urllib.request.Request(self.api("shutdown"), method="POST")
                urllib.request.urlopen(req, timeout=5).close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        # kernels run in sessions of their own: find them by their connection file in our folder
        for pid in _processes_mentioning(str(self.base / "runtime")):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (/usr/bin/chromium); .ci/run installs it with apt")
    notebooks = [p for p in NOTEBOOKS.values() if p.exists()]
    server = LabServer(tmp_path_factory.mktemp("jupyterlab"), notebooks)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def launched_chromium():
    """Debian's chromium, headless, driven by playwright (also the published edition's test)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # a dev dependency: missing means a broken environment, not a skip
        pytest.fail(f"playwright for Python is not installed ({exc}): pip install -e '.[dev]'")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def browser(lab):
    with launched_chromium() as b:
        yield b


@pytest.fixture(scope="module")
def lab_page(browser):
    """One JupyterLab page for all notebooks (loading JupyterLab is the slow part)."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    try:
        yield page, console
    finally:
        context.close()


# --- JavaScript run in the page ------------------------------------------------------------

_PANEL = "document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)')"

# idle AND a kernel name (not "No Kernel") AND, when the app is exposed, a connected kernel
JS_KERNEL_READY = f"""(path) => {{
  const panel = {_PANEL};
  if (!panel) return false;
  const name = panel.querySelector('.jp-Toolbar-kernelName');
  const ind = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  if (!name || !ind) return false;
  const label = name.textContent.trim();
  if (!label || /no kernel/i.test(label)) return false;
  if (ind.getAttribute('data-status') !== 'idle') return false;
  const app = window.jupyterapp;
  const w = app && app.shell.currentWidget;
  if (app && !(w && w.context && w.context.path === path)) return false;
  const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  if (app && !(kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle'))
    return false;
  return label;
}}"""

JS_KERNEL_IDLE = f"""() => {{
  const panel = {_PANEL};
  const ind = panel && panel.querySelector('.jp-Notebook-ExecutionIndicator');
  return !!ind && ind.getAttribute('data-status') === 'idle';
}}"""

# prompts of all code cells that have source: "[*]" while queued/running, "[12]" when done
JS_PROMPTS = f"""() => {{
  const panel = {_PANEL};
  return Array.from(panel.querySelectorAll('.jp-Notebook .jp-CodeCell')).map(cell => {{
    const p = cell.querySelector('.jp-InputArea-prompt');
    const src = cell.querySelector('.jp-InputArea-editor');
    return {{prompt: p ? p.textContent.trim() : '', empty: !src || !src.textContent.trim()}};
  }});
}}"""

# every cell: index, tags (from the model when exposed), and the text of its error-looking outputs
JS_OUTPUTS = f"""() => {{
  const panel = {_PANEL};
  const app = window.jupyterapp;
  const w = app && app.shell.currentWidget;
  const widgets = w && w.content ? w.content.widgets : null;
  return Array.from(panel.querySelectorAll('.jp-Notebook .jp-Cell')).map((cell, i) => {{
    let tags = [];
    if (widgets && widgets[i]) tags = widgets[i].model.getMetadata('tags') || [];
    const stderr = Array.from(cell.querySelectorAll(
      ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"))
      .map(e => e.textContent);
    const text = Array.from(cell.querySelectorAll('.jp-OutputArea-output .jp-RenderedText, '
      + '.jp-OutputArea-output.jp-RenderedText')).map(e => e.textContent);
    return {{index: i, tags: tags, stderr: stderr, text: text}};
  }});
}}"""


def _wait(page, js: str, timeout_s: float, what: str, arg=None):
    try:
        return page.wait_for_function(js, arg=arg, timeout=timeout_s * 1000, polling=250)
    except Exception as exc:  # playwright's TimeoutError: say what we were waiting for
        raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}") from exc


JS_OPEN = """async (path) => {
  await window.jupyterapp.restored;
  await window.jupyterapp.commands.execute('docmanager:open', {path: path});
}"""

# shut the kernel down and close the tab without a "save changes?" dialog
JS_CLOSE = """async () => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!w || !w.sessionContext) return;
  w.sessionContext.shutdown().catch(() => {});  // the server finishes it; no need to wait
  w.context.model.dirty = false;
  w.close();
}"""


def _open_notebook(page, lab: LabServer, name: str) -> str:
    if page.url.startswith(lab.url):  # JupyterLab is loaded: open the notebook in it
        page.evaluate(JS_OPEN, name)
    else:
        page.goto(lab.lab_url(name), wait_until="domcontentloaded", timeout=KERNEL_READY_S * 1000)
    handle = _wait(page, JS_KERNEL_READY, KERNEL_READY_S, "a connected, idle kernel", arg=name)
    dialogs = page.locator(".jp-Dialog")
    assert dialogs.count() == 0, f"a dialog is open: {dialogs.first.inner_text()!r}"
    return handle.json_value()


def _run_all(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu [data-command='runmenu:run-all']").click()
    # Run All queues every cell at once: wait for that, then for the queue to drain
    started = f"""() => {{
      const cells = ({JS_PROMPTS})();
      return cells.some(c => c.prompt.includes('*'))
        || cells.every(c => c.empty || /\\d/.test(c.prompt));
    }}"""
    _wait(page, started, 30, "Run All to start")
    _wait(
        page,
        f"() => !({JS_PROMPTS})().some(c => c.prompt.includes('*')) && ({JS_KERNEL_IDLE})()",
        RUN_ALL_S,
        "every cell to finish",
    )
    page.wait_for_timeout(300)  # late display messages (widget views) after the last reply


def _errors(page) -> list[str]:
    found = []
    for cell in page.evaluate(JS_OUTPUTS):
        if "raises-exception" in cell["tags"]:
            continue
        for text in cell["stderr"]:
            if re.search(r"Traceback|\b\w*Error\b", text):
                found.append(f"cell {cell['index']} (stderr): {text[:800]}")
        for text in cell["text"]:
            if ERROR_TEXT.search(text) and text not in cell["stderr"]:
                found.append(f"cell {cell['index']}: {text[:800]}")
    return found


def _figure_signature(page, cell) -> str:
    """What the figure of a widget cell looks like now: its images' sources, else a screenshot."""
    srcs = cell.locator(".jp-OutputArea img").evaluate_all("els => els.map(e => e.src)")
    if srcs:
        return "\n".join(srcs)
    return cell.locator(".jp-OutputArea").screenshot().hex()


def _wait_redraw(page, cell, before: str, what: str) -> str:
    deadline = time.monotonic() + REDRAW_S
    while time.monotonic() < deadline:
        page.wait_for_timeout(250)
        now = _figure_signature(page, cell)
        if now != before and page.evaluate(JS_KERNEL_IDLE):
            # settle: the same figure for 0.6 s with an idle kernel (no redraw still on its way)
            while time.monotonic() < deadline:
                page.wait_for_timeout(600)
                later = _figure_signature(page, cell)
                if later == now and page.evaluate(JS_KERNEL_IDLE):
                    return now
                now = later
    raise AssertionError(f"the figure did not change within {REDRAW_S} s after {what}")


def _shot(page, element, stem: str, step: str) -> list[Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    full = ARTIFACTS / f"{stem}-{step}-page.png"
    widget = ARTIFACTS / f"{stem}-{step}-widget.png"
    element.scroll_into_view_if_needed()
    page.screenshot(path=str(full), full_page=True)
    element.screenshot(path=str(widget))
    return [full, widget]


@pytest.mark.parametrize("key", list(NOTEBOOKS))
def test_notebook_in_jupyterlab(key, lab, lab_page):
    path = NOTEBOOKS[key]
    if not path.exists():
        pytest.skip(f"{path.relative_to(REPO)} does not exist yet")
    stem = path.stem
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"{stem}-*"):
        old.unlink()
    t0 = time.monotonic()
    timings: dict[str, float] = {}

    def lap(what: str) -> None:
        timings[what] = round(time.monotonic() - t0 - sum(timings.values()), 1)

    page, console = lab_page
    console_start = len(console)
    try:
        kernel_name = _open_notebook(page, lab, path.name)
        assert kernel_name, "no kernel name shown"
        lap("open + kernel")
        _run_all(page)
        lap("run all")

        prompts = page.evaluate(JS_PROMPTS)
        not_run = [i for i, c in enumerate(prompts) if not c["empty"] and not re.search(r"\d", c["prompt"])]
        errors = _errors(page)
        assert not errors, "cells show errors:\n" + "\n".join(errors)
        assert not not_run, f"code cells {not_run} did not run (prompts {prompts})"

        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        if key == "fixture":  # tqdm.auto draws a progress widget in JupyterLab
            assert panel.locator(".widget-progress, .widget-hprogress").count() > 0, (
                "tqdm.auto did not render as a progress widget"
            )
        assert panel.locator(".widget-slider").count() > 0, (
            "no slider widget rendered (is the widget frontend installed?)"
        )
        cell = panel.locator(".jp-Cell").filter(has=page.locator(".widget-slider")).first
        slider = cell.locator(".widget-slider").first
        widget = cell.locator(".jp-OutputArea").first
        widget.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        shots = _shot(page, widget, stem, "1-run-all")
        before = _figure_signature(page, cell)
        assert before, "the widget shows no figure"

        # 1. the keyboard: focus the handle, press an arrow key
        handle = slider.locator(".noUi-handle").first
        value0 = float(handle.get_attribute("aria-valuenow"))
        vmax = float(handle.get_attribute("aria-valuemax"))
        vmin = float(handle.get_attribute("aria-valuemin"))
        handle.focus()
        key_name = "ArrowLeft" if value0 >= vmax else "ArrowRight"
        handle.press(key_name)
        page.wait_for_function(
            "([el, v]) => parseFloat(el.getAttribute('aria-valuenow')) !== v",
            arg=[handle.element_handle(), value0], timeout=10_000,
        )
        value1 = float(handle.get_attribute("aria-valuenow"))
        after_keys = _wait_redraw(page, cell, before, f"pressing {key_name} (value {value0} -> {value1})")
        shots += _shot(page, widget, stem, "2-keyboard")
        lap("keyboard redraw")

        # 2. the readout: select its text, type a new value, Enter
        target = vmin + 0.25 * (vmax - vmin)
        if abs(target - value1) < 1e-9 or abs(target - value0) < 1e-9:
            target = vmin + 0.75 * (vmax - vmin)
        readout = slider.locator(".widget-readout").first
        readout.click()
        readout.evaluate("el => { el.focus(); document.getSelection().selectAllChildren(el); }")
        page.keyboard.type(f"{target:g}")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "([el, v]) => parseFloat(el.getAttribute('aria-valuenow')) !== v",
            arg=[handle.element_handle(), value1], timeout=10_000,
        )
        value2 = float(handle.get_attribute("aria-valuenow"))
        # the slider snaps the typed value to its step
        assert abs(value2 - target) <= 0.1 * (vmax - vmin), f"typed {target:g}, slider at {value2}"
        _wait_redraw(page, cell, after_keys, f"typing {target:g} into the readout (-> {value2})")
        shots += _shot(page, widget, stem, "3-readout")
        lap("readout redraw")

        errors = _errors(page)
        assert not errors, "cells show errors after moving the slider:\n" + "\n".join(errors)
        for p in shots:
            assert p.stat().st_size > 1000, p
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / f"{stem}-failure-page.png"))
        except Exception:
            pass
        (ARTIFACTS / f"{stem}-failure.log").write_text(
            "browser console errors:\n" + "\n".join(console[console_start:])
            + "\n\nserver log:\n" + lab.log_tail()
        )
        raise
    finally:
        try:
            page.evaluate(JS_CLOSE)
            page.wait_for_function(f"() => !{_PANEL}", timeout=15_000)
        except Exception as exc:  # the next notebook reloads the page if this one is stuck
            print(f"could not close {path.name}: {exc}")
            page.goto("about:blank")
        lap("close")
        (ARTIFACTS / f"{stem}-timings.json").write_text(json.dumps(timings, indent=1))
        print(f"{stem}: {timings}")
