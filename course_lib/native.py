"""The C++ heatmap decoder (``cpp/dark_decoder.cpp``): build it, load it, call it.

Taught in ``07_dark_cpp.ipynb``. ``course_lib.decode.decode(..., backend="cpp")`` calls
:func:`decode` when :func:`available` says the module can be loaded, and falls back to numpy
otherwise, so the rest of the course runs without a compiler.

Where the module comes from (decided once per process, then reused):

1. A checkout (the C++ source exists and its folder is writable): cppimport builds
   ``cpp/dark_decoder.cpp`` on first use into ``cpp/dark_decoder.<python-tag>.so`` and rebuilds it
   only when the source changes (an md5 of the source is stored in a trailer of the module).
   ``make venv`` prebuilds it (``python -m cppimport build cpp/``), so a notebook never waits.
   The build runs in a subprocess with its output captured: a compile error raises
   :class:`NativeBuildError` whose message holds gcc's ``error:`` lines. cppimport's file lock
   makes several processes importing at once safe (one builds, the others wait and load it).
2. An installed or read-only copy: the module ``pip install .`` built ahead of time from the same
   source (``course_lib/dark_decoder.<python-tag>.so``, see ``setup.py``); nothing is compiled.
   An editable install also has that file, but a checkout takes route 1: the setuptools build has
   no cppimport trailer, so cppimport could not tell whether it matches the source.

``COURSE_NATIVE=off`` disables the C++ decoder (``available()`` is False), ``COURSE_NATIVE=prebuilt``
forces route 2. ``COURSE_NATIVE_THREADS=N`` sets the default number of OpenMP threads (1: one
thread; unset: OpenMP's default, i.e. ``OMP_NUM_THREADS`` or all cores); every thread count is
clamped to the processors available (:func:`max_threads`).

Exercise snippets (:func:`build_snippet`, 07.3) compile into a private per-user folder
(:func:`snippet_folder`); a folder another user owns or may write is refused.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from course_lib import config, dark

MODULE_NAME = "dark_decoder"
METHODS = ("argmax", "quarter", "dark")


class NativeUnavailableError(RuntimeError):
    """The C++ decoder cannot be used here (no compiler, no prebuilt module, or disabled)."""


class NativeBuildError(NativeUnavailableError):
    """Compiling C++ source failed; the message holds the compiler's ``error:`` lines."""


def source_path() -> Path:
    """``cpp/dark_decoder.cpp`` of this checkout (it may not exist in an installed copy)."""
    return Path(__file__).resolve().parent.parent / "cpp" / f"{MODULE_NAME}.cpp"


def compiler() -> str | None:
    """Path of the C++ compiler setuptools would use (``$CXX`` or Python's own), or None."""
    cxx = os.environ.get("CXX") or sysconfig.get_config_var("CXX") or "c++"
    words = shlex.split(cxx)
    return shutil.which(words[0]) if words else None


def build_errors(output: str, *, max_lines: int = 20) -> list[str]:
    """The compiler's ``error:`` lines in a build log (else its last lines), cppimport's
    ``.rendered.`` prefix removed so that file names and line numbers match the source."""
    lines = [line.replace(".rendered.", "") for line in output.splitlines()]
    errors = [line for line in lines if re.search(r"\b(fatal )?error\b", line) and ":" in line]
    noise = ("error: command", "distutils.errors", "setuptools.errors")
    errors = [e for e in errors if not e.lower().startswith(noise)] or errors
    return (errors or lines[-max_lines:])[:max_lines]


def build_with_cppimport(path: str | Path, fullname: str | None = None, *, timeout: float = 600):
    """Compile (when needed) and import the cppimport source ``path``; return the module.

    A needed build runs ``python -m cppimport build path`` in a subprocess with its output
    captured, so that a compile error raises :class:`NativeBuildError` with gcc's ``error:``
    lines instead of printing them to the kernel's stderr. The module lands beside the source.
    """
    path = Path(path).resolve()
    fullname = fullname or path.stem
    try:
        import cppimport
        from cppimport.importer import is_build_needed, setup_module_data
    except ImportError as exc:
        raise NativeUnavailableError(f"cppimport is not installed ({exc})") from exc
    module_data = setup_module_data(fullname, str(path))
    if is_build_needed(module_data):
        if compiler() is None:
            raise NativeUnavailableError(
                "no C++ compiler found (set CXX or install g++ / clang++) and no up-to-date "
                f"build of {path.name}"
            )
        proc = subprocess.run(
            [sys.executable, "-m", "cppimport", "build", str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(path.parent),
        )
        if proc.returncode != 0:
            lines = build_errors(proc.stdout + "\n" + proc.stderr)
            raise NativeBuildError(f"compiling {path.name} failed:\n" + "\n".join(lines))
    return cppimport.imp_from_filepath(str(path), fullname)


@functools.cache
def _load() -> tuple[Any, NativeUnavailableError | None]:
    """(module, None) or (None, the error saying why not); computed once per process."""
    mode = os.environ.get("COURSE_NATIVE", "auto").strip().lower()
    if mode in ("off", "0", "no", "false", "numpy"):
        return None, NativeUnavailableError("the C++ decoder is disabled (COURSE_NATIVE=off)")
    src = source_path()
    failure: NativeUnavailableError | None = None
    if mode != "prebuilt" and src.is_file() and os.access(src.parent, os.W_OK):
        try:
            return build_with_cppimport(src, MODULE_NAME), None
        except NativeBuildError as exc:  # the source does not compile: say so, do not hide it
            return None, exc
        except NativeUnavailableError as exc:  # no compiler or no cppimport: try the prebuilt
            failure = exc
        except (Exception, SystemExit) as exc:  # an in-process rebuild exits via setuptools
            return None, NativeBuildError(f"building {src.name} failed: {type(exc).__name__}: {exc}")
    try:
        return importlib.import_module(f"course_lib.{MODULE_NAME}"), None
    except ImportError as exc:
        prebuilt = NativeUnavailableError(f"no prebuilt module course_lib.{MODULE_NAME} ({exc})")
    if failure is not None:
        return None, NativeUnavailableError(f"{failure}; {prebuilt}")
    return None, prebuilt


def load_extension():
    """The compiled decoder module (built on first use, then reused); raises
    :class:`NativeUnavailableError` (or :class:`NativeBuildError`) saying why it cannot."""
    module, error = _load()
    if module is None:
        raise type(error)(str(error))
    return module


@functools.cache
def _announce(why: str) -> None:
    print(f"C++ decoder unavailable, decoding falls back to numpy: {why}", file=sys.stderr)


def unavailable_reason() -> str:
    """Why the C++ decoder cannot be used ("" when it can); prints nothing."""
    module, error = _load()
    return "" if module is not None else str(error)


def available() -> bool:
    """True when the C++ decoder can be used; otherwise print why (once) and return False."""
    module, error = _load()
    if module is None:
        _announce(str(error))
    return module is not None


def gaussian_kernel(ksize: int) -> np.ndarray:
    """The 1-D kernel of ``cv2.GaussianBlur(..., (ksize, ksize), 0)`` (float64), the very weights
    the numpy backend uses (``course_lib.dark.gaussian_kernel_1d``), so both blur alike."""
    return dark.gaussian_kernel_1d(int(ksize))


def max_threads() -> int:
    """The processors this process may run on: the most threads the decoder ever starts."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """``COURSE_NATIVE_THREADS`` if set (clamped to :func:`max_threads`), else 0 (OpenMP's
    default number of threads, which the extension clamps to the processors as well)."""
    value = os.environ.get("COURSE_NATIVE_THREADS", "").strip()
    if not value:
        return 0
    try:
        return min(max(0, int(value)), max_threads())
    except ValueError as exc:
        raise ValueError(f"COURSE_NATIVE_THREADS: expected an int, got {value!r}") from exc


def as_heatmaps(heatmaps: Any) -> np.ndarray:
    """``heatmaps`` as a 4-D float32 numpy array (a view when it already is one, never modified)."""
    if hasattr(heatmaps, "detach"):  # a torch tensor
        heatmaps = heatmaps.detach().cpu().numpy()
    arr = np.asarray(heatmaps)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"heatmaps: expected a real-valued array, got dtype {arr.dtype}")
    if arr.ndim != 4:
        raise ValueError(f"heatmaps: expected a 4-D array [N, K, H, W], got shape {arr.shape}")
    if arr.dtype != np.float32:
        with np.errstate(over="ignore"):
            arr = arr.astype(np.float32)
    return arr


def decode(
    heatmaps: Any,
    method: str = "dark",
    blur_kernel: int = 11,
    num_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``[N, K, H, W]`` heatmaps in C++ with the rules of ``course_lib.decode``.

    Returns ``(coords [N, K, 2] float32 (x, y) in heatmap pixels, scores [N, K] float32)``.
    ``method``: ``argmax``, ``quarter`` or ``dark``. Any layout and float32/float64 input are
    accepted (a contiguous float32 copy is made only when needed; the input is never modified).
    NaN or inf raise ValueError. Maps smaller than 5 pixels in H or W are decoded by the same
    rules (quarter needs 1 <= x <= W-2, DARK 2 <= x <= W-3: below that the argmax is kept).
    A map whose maximum is not positive gets (-1, -1). ``num_threads``: None reads
    ``COURSE_NATIVE_THREADS`` (unset: OpenMP's default), 1 runs single-threaded; any count is
    clamped to :func:`max_threads`. ``dark`` refuses a ``blur_kernel`` above
    ``2 * max(H, W, 5) + 1`` (``course_lib.dark.check_kernel_for``, as the numpy decoder).
    """
    if method not in METHODS:
        raise ValueError(f"method: the C++ decoder implements {', '.join(METHODS)}, got {method!r}")
    if isinstance(blur_kernel, bool) or not isinstance(blur_kernel, (int, np.integer)) or (
        blur_kernel < 1 or blur_kernel % 2 == 0
    ):
        raise ValueError(f"blur_kernel: expected a positive odd int, got {blur_kernel!r}")
    threads = default_threads() if num_threads is None else int(num_threads)
    if threads < 0:
        raise ValueError(f"num_threads: expected None or an int >= 0, got {num_threads!r}")
    threads = min(threads, max_threads())
    arr = as_heatmaps(heatmaps)
    n, k, h, w = arr.shape
    if n * k == 0:
        return np.zeros((n, k, 2), np.float32), np.zeros((n, k), np.float32)
    if h < 1 or w < 1:
        raise ValueError(f"heatmaps: expected H >= 1 and W >= 1, got shape {arr.shape}")
    kernel = None
    if method == "dark":
        kernel = gaussian_kernel(dark.check_kernel_for(int(blur_kernel), h, w))
    ksize = int(blur_kernel) if method == "dark" else 1  # only DARK blurs
    return load_extension().decode(arr, method, ksize, threads, kernel, dark.LOG_FLOOR,
                                   dark.MAX_STEP)


class UnsafeBuildFolderError(NativeUnavailableError, PermissionError):
    """A folder to compile into is not private: another user owns it or may write into it (a
    module planted there would run as the importing user), so nothing is built there."""


def snippet_folder() -> Path:
    """The default folder of :func:`build_snippet`: per user, never a shared predictable one.

    ``$XDG_CACHE_HOME/heatmaps-to-keypoints/cpp`` (default ``~/.cache/...``); where no home
    folder can be written, ``<system temp>/course_cpp-<uid>``. Created with mode 0700.
    """
    cache = os.environ.get("XDG_CACHE_HOME", "").strip()
    try:
        home = Path.home()
    except RuntimeError:  # no home folder known
        home = None
    if cache or (home is not None and (os.access(home, os.W_OK) or (home / ".cache").is_dir())):
        return (Path(cache) if cache else home / ".cache") / "heatmaps-to-keypoints" / "cpp"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"course_cpp-{uid}"


def private_folder(path: Path) -> Path:
    """``path`` created (mode 0700) if missing, then checked: a directory owned by this user
    that neither group nor others may write (a symlink is judged by its target, and must be
    ours too). Raises :class:`UnsafeBuildFolderError` naming the folder otherwise."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not hasattr(os, "getuid"):  # no POSIX owners (Windows): the user's own profile folders
        return path
    uid = os.getuid()
    for st, what in ((os.lstat(path), "the link"), (os.stat(path), "the folder")):
        if st.st_uid != uid:
            raise UnsafeBuildFolderError(
                f"{path}: {what} is owned by uid {st.st_uid}, not by you (uid {uid}); refusing "
                "to compile or import C++ modules there (pass folder= a folder of your own)"
            )
    mode = os.stat(path).st_mode
    if not stat.S_ISDIR(mode):
        raise UnsafeBuildFolderError(f"{path}: not a folder; refusing to build C++ modules there")
    if mode & 0o022:
        raise UnsafeBuildFolderError(
            f"{path}: writable by {'group and others' if mode & 0o002 else 'its group'} (mode "
            f"{stat.S_IMODE(mode):o}); refusing to compile or import C++ modules there (run "
            f"`chmod go-w {path}` or pass folder= a private folder)"
        )
    return path


def snippet_module_name(source: str, name: str) -> str:
    """The module name :func:`build_snippet` gives ``source``: ``name_<md5 of the source>``."""
    return f"{name}_{hashlib.md5(source.encode()).hexdigest()[:10]}"


def build_snippet(source: str, name: str, *, folder: str | Path | None = None):
    """Compile a small cppimport C++ source (an exercise) into its own folder and import it.

    ``source`` must contain ``PYBIND11_MODULE(name, m)``; it is saved as ``name_<hash>.cpp``
    (module renamed alike, :func:`snippet_module_name`) under ``folder`` (default:
    :func:`snippet_folder`, private to the user), so that an edited source gets a new module
    and no kernel restart is needed. The folder and the module's subfolder must be private
    (:func:`private_folder`): a folder another user owns or may write is refused with
    :class:`UnsafeBuildFolderError`. Raises :class:`NativeBuildError` with the compiler's
    ``error:`` lines when it does not compile (remembered beside the source, so rerunning an
    unchanged broken source answers at once).
    """
    if f"PYBIND11_MODULE({name}," not in source.replace(" ", ""):
        raise ValueError(f"source: expected a line PYBIND11_MODULE({name}, m)")
    unique = snippet_module_name(source, name)
    text = re.sub(rf"PYBIND11_MODULE\(\s*{re.escape(name)}\s*,", f"PYBIND11_MODULE({unique},", source)
    if "cppimport" not in text.splitlines()[0]:
        text = "// cppimport\n" + text
    root = private_folder(Path(folder) if folder is not None else snippet_folder())
    where = private_folder(root / unique)
    path = where / f"{unique}.cpp"
    if not path.is_file() or path.read_text() != text:
        config.write_atomic(path, text)
    if unique in sys.modules:
        return sys.modules[unique]
    failed = where / "build_error.txt"  # the same source fails the same way: no second compile
    if failed.is_file():
        raise NativeBuildError(failed.read_text())
    try:
        return build_with_cppimport(path, unique)
    except NativeBuildError as exc:
        config.write_atomic(failed, str(exc))
        raise
