"""Download the real COCO 2017 person keypoints into the course's data layout.

    python data_scripts/download_coco.py                         # annotations + val + train
    python data_scripts/download_coco.py --only annotations val  # 240 MB + 780 MB, no train
    python data_scripts/download_coco.py --fiftyone ~/fiftyone/coco-2017   # reuse FiftyOne's

Result (``course_lib.config.data_dir("coco")``: ``$COURSE_COCO_DIR``, else ``data/coco``)::

    annotations/person_keypoints_{train,val}2017.json
    train2017/*.jpg   val2017/*.jpg

Every archive is checked against its published MD5 (and SHA-256 where known) before it is
extracted. A download goes to ``<name>.part`` (locked, so two runs never write one file) and is
resumed with an HTTP Range request, within a run (transient failures are retried with
exponential back-off; ``--timeout`` bounds each wait for the server) and across runs; a
``Content-Range`` that does not start where the partial file ends is never appended.
Extraction refuses any archive member whose real path (symbolic links in the target resolved)
would land outside the target folder. The free space is checked before downloading and before
extracting. ``--fiftyone`` never deletes or replaces anything it did not make. A finished step
leaves a marker, so a rerun skips it. Errors are one ``error:`` line: exit status 2 for bad
arguments, files, folders or too little space, 1 when the network, the server or a checksum
failed (run again to resume). Then use the data with ``COURSE_DATA=coco`` (or the ``gpu``
profile).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import os
import re
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a clone, uninstalled

from course_lib import config  # noqa: E402

BASE_URL = "http://images.cocodataset.org"


@dataclass(frozen=True)
class Resource:
    """One archive of COCO 2017 and what extracting it must produce."""

    name: str  # the --only name
    path: str  # URL path below the base URL
    size: int  # bytes
    md5: str
    sha256: str | None  # None where no published value is known
    produces: tuple[str, ...]  # paths (relative to the data folder) that must exist afterwards


RESOURCES: dict[str, Resource] = {
    "annotations": Resource(
        "annotations", "annotations/annotations_trainval2017.zip", 252_907_541,
        "f4bbac642086de4f52a3fdda2de5fa2c",
        "113a836d90195ee1f884e704da6304dfaaecff1f023f49b6ca93c4aaae470268",
        ("annotations/person_keypoints_train2017.json", "annotations/person_keypoints_val2017.json"),
    ),
    "val": Resource(
        "val", "zips/val2017.zip", 815_585_330, "442b8da7639aecaf257c1dceb8ba8c80",
        "4f7e2ccb2866ec5041993c9cf2a952bbed69647b115d0f74da7ce8f4bef82f05", ("val2017",),
    ),
    "train": Resource(
        "train", "zips/train2017.zip", 19_336_861_798, "cced6f7f71b7629ddf16f17bbcfab6b2", None,
        ("train2017",),
    ),
}  # fmt: skip


class ChecksumError(RuntimeError):
    """A downloaded file does not have the published checksum."""


class UnsafeArchiveError(RuntimeError):
    """An archive member would be written outside the target folder (or is a link/device)."""


class TransientError(ConnectionError):
    """A failure worth retrying: no connection, a timeout, a cut transfer, HTTP 408/429/5xx."""


class BusyError(RuntimeError):
    """Another download holds the lock of the same file."""


RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


# ---------------------------------------------------------------------------------------------
# Checksums and resumable downloads
# ---------------------------------------------------------------------------------------------


def file_hashes(path: Path, chunk: int = 1 << 20) -> dict[str, str]:
    """MD5 and SHA-256 of a file, read once."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            md5.update(block)
            sha.update(block)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest()}


def verify(path: Path, *, md5: str | None = None, sha256: str | None = None) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has the given MD5 / SHA-256."""
    got = file_hashes(path)
    for kind, want in (("md5", md5), ("sha256", sha256)):
        if want and got[kind] != want.lower():
            raise ChecksumError(f"{path.name}: {kind} {got[kind]}, expected {want}")


def _open_range(url: str, have: int, timeout: float):
    """The response to a GET of ``url`` from byte ``have`` on (None: nothing is left to fetch)."""
    request = urllib.request.Request(url, headers={"User-Agent": "course-download/1"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch: the partial file is complete
            return None
        kind = TransientError if exc.code in RETRY_STATUS else RuntimeError
        raise kind(f"url: {url} answered HTTP {exc.code} ({exc.reason})") from exc
    except urllib.error.URLError as exc:
        raise TransientError(
            f"url: cannot reach {url} ({exc.reason}); check the network, or use --fiftyone"
        ) from exc
    except (OSError, http.client.HTTPException) as exc:  # a timeout or a reset before the headers
        raise TransientError(f"url: {url} did not answer ({type(exc).__name__}: {exc})") from exc


def _answer_range(response, have: int) -> tuple[int, int | None]:
    """``(first byte, total size or None)`` of a response to a request from byte ``have``.

    A 200 starts at 0; a 206 at the first byte of its ``Content-Range`` (-1 when it has none).
    The total comes from ``Content-Range``, else from ``Content-Length``."""
    length = response.headers.get("Content-Length", "")
    if response.status != 206:
        return 0, int(length) if length.isdigit() else None
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)",
                         response.headers.get("Content-Range", "").strip())  # fmt: skip
    if not match:
        return -1, None
    total = match.group(3)
    return int(match.group(1)), int(total) if total.isdigit() else None


def _receive(response, part: Path, have: int, *, size: int | None, name: str, chunk: int,
             progress: bool) -> bool:
    """Write the response's bytes to ``part`` from where they start; True when ``part`` is
    known to be complete. :class:`TransientError` when the transfer stopped early, or when a
    206 does not start at byte ``have`` (then ``part`` is dropped: the next try starts afresh)."""
    from tqdm.auto import tqdm

    start, total = _answer_range(response, have)
    if start not in (have, 0):
        part.unlink(missing_ok=True)
        raise TransientError(f"{name}: asked for bytes {have}- and got a 206 starting at "
                             f"{'an unknown byte' if start < 0 else start}: not appended; the "
                             "partial file is dropped and the download starts again")  # fmt: skip
    total = total if total is not None else size
    if total is not None:
        config.check_free_space(part.parent, max(0, total - start), name)
    with open(part, "ab" if start else "wb") as f, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
            disable=not progress) as bar:  # fmt: skip
        try:
            while block := response.read(chunk):
                f.write(block)
                bar.update(len(block))
        except (http.client.IncompleteRead, OSError) as exc:
            raise TransientError(f"{name}: the download stopped after {f.tell()} bytes "
                                 f"({type(exc).__name__}); run again to resume") from exc
        got = f.tell()
    if total is not None and got < total:
        raise TransientError(f"{name}: the connection closed after {got} of {total} bytes; "
                             "run again to resume")  # fmt: skip
    # an end of unknown position: ask again from there (a 416 confirms it), unless the server
    # ignored the Range request (200 to a resumed download) or sent nothing more
    return total is not None or (have > 0 and (start == 0 or got == have))


def _fetch_part(url: str, part: Path, *, size: int | None, name: str, timeout: float,
                retries: int, backoff: float, chunk: int, progress: bool) -> None:
    """Bring ``part`` to the whole file, resuming from its size; a transient failure is retried
    after ``backoff * 2**k`` seconds (at most 60), ``retries`` times in a row at most."""
    failures = 0
    while True:
        have = part.stat().st_size if part.is_file() else 0
        if size is not None and have > size:  # longer than the file: not a part of it
            part.unlink()
            have = 0
        try:
            response = _open_range(url, have, timeout)
            if response is None:
                return
            with response:
                if _receive(response, part, have, size=size, name=name, chunk=chunk,
                            progress=progress):  # fmt: skip
                    return
            failures = 0
        except TransientError as exc:
            now = part.stat().st_size if part.is_file() else 0
            failures = 1 if now > have else failures + 1  # progress resets the count
            if failures > retries:
                raise TransientError(f"{exc} (gave up after {retries} retries; the partial file "
                                     "is kept: run again to resume)") from exc  # fmt: skip
            time.sleep(min(60.0, backoff * 2 ** (failures - 1)))


@contextlib.contextmanager
def _locked(lock: Path, part: Path):
    """Hold an exclusive ``flock`` on ``lock`` (beside ``part``): two runs never write one file.
    :class:`BusyError` at once when another process holds it."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): no lock
        yield
        return
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BusyError(f"{part}: another download is writing this file right now (it holds "
                            f"{lock}); let it finish, or stop it and run again") from None
        try:
            if os.path.samestat(os.fstat(fd), os.stat(lock)):
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the previous holder removed the lock file meanwhile: take a new one
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


def download(url: str, dest: str | Path, *, md5: str | None = None, sha256: str | None = None,
             size: int | None = None, progress: bool = True, chunk: int = 1 << 20,
             timeout: float = 60.0, retries: int = 5, backoff: float = 1.0) -> Path:  # fmt: skip
    """Download ``url`` to ``dest``, resuming ``dest.part`` with an HTTP Range request.

    A complete ``dest`` with the right checksum is kept as it is. The bytes go to ``dest.part``
    first (under a lock, ``dest.lock``: :class:`BusyError` if another run holds it); when the
    server honours the Range request (a 206 starting at the right byte) the download continues
    where it stopped, otherwise it restarts. Transient failures (no answer within ``timeout``
    seconds, a cut transfer, HTTP 408/429/5xx) are retried with exponential back-off; the
    free space is checked once the size is known. ``dest`` appears only after the checksum
    matched; a mismatch deletes the partial file and raises :class:`ChecksumError`.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with _locked(dest.with_name(dest.name + ".lock"), part):
        if dest.is_file():
            try:
                verify(dest, md5=md5, sha256=sha256)
                return dest
            except ChecksumError:
                dest.unlink()
        _fetch_part(url, part, size=size, name=dest.name, timeout=timeout, retries=retries,
                    backoff=backoff, chunk=chunk, progress=progress)  # fmt: skip
        try:
            verify(part, md5=md5, sha256=sha256)
        except ChecksumError:
            part.unlink()
            raise
        os.replace(part, dest)
    return dest


# ---------------------------------------------------------------------------------------------
# Safe extraction
# ---------------------------------------------------------------------------------------------


def _inside(target: Path, name: str) -> bool:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return False
    resolved = (target / name).resolve()
    return resolved == target or target in resolved.parents


def _checked_members(archive: Path) -> list[tuple[str, int]]:
    """``(name, size)`` of every member of a .zip or .tar(.gz), after checking that none is a
    link or a device and none would escape a target folder (:class:`UnsafeArchiveError`)."""
    target = Path("/__target__").resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            members = [(info.filename, info.file_size) for info in zf.infolist()]
            for info in zf.infolist():
                mode = info.external_attr >> 16
                if mode and (mode & 0o170000) == 0o120000:
                    raise UnsafeArchiveError(f"{archive.name}: member {info.filename!r} is a "
                                             "symbolic link; refusing to extract")  # fmt: skip
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = []
            for m in tf.getmembers():
                if not (m.isfile() or m.isdir()):
                    raise UnsafeArchiveError(f"{archive.name}: member {m.name!r} is a link or a "
                                             "device; refusing to extract")  # fmt: skip
                members.append((m.name, m.size))
    else:
        raise ValueError(f"archive: {archive} is neither a zip nor a tar file")
    for name, _ in members:
        if not _inside(target, name):
            raise UnsafeArchiveError(
                f"{archive.name}: member {name!r} would be written outside the target folder; "
                f"refusing to extract"
            )
    return members


def check_members(archive: str | Path) -> list[str]:
    """The member names of a .zip or .tar(.gz); :class:`UnsafeArchiveError` if one escapes."""
    return [name for name, _ in _checked_members(Path(archive))]


def _check_real_paths(archive: Path, target: Path, names: list[str]) -> None:
    """Every member lands inside the REAL ``target``: symbolic links already in it (as
    ``--fiftyone`` makes) are followed, and one that leads outside is refused."""
    real = os.path.realpath(target)
    for name in names:
        dest = os.path.realpath(os.path.join(real, name))
        if os.path.commonpath([real, dest]) == real:
            continue
        path, link = target, None
        for part in Path(name).parts:
            path = path / part
            if path.is_symlink():
                link = path
                break
        raise UnsafeArchiveError(
            f"{archive.name}: member {name!r} would be written to {dest}, outside {real}"
            + (f", through the symbolic link {link}" if link else "")
            + "; refusing to extract: remove the link (or use another --dir) and run again"
        )


def safe_extract(archive: str | Path, target: str | Path) -> list[str]:
    """Extract ``archive`` into ``target`` after checking EVERY member, against the target's
    real path too (nothing is written when one member is unsafe), and the free space (the sum
    of the member sizes; ``OSError`` when it is missing). Returns the member names."""
    archive, target = Path(archive), Path(target)
    members = _checked_members(archive)
    names = [name for name, _ in members]
    target.mkdir(parents=True, exist_ok=True)
    _check_real_paths(archive, target, names)
    config.check_free_space(target, sum(size for _, size in members), archive.name)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(target)
    else:
        with tarfile.open(archive) as tf:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: the stdlib's own guard too
                tf.extractall(target, filter="data")
            else:
                tf.extractall(target)
    return names


# ---------------------------------------------------------------------------------------------
# Steps: download + verify + extract one resource; or link a FiftyOne folder
# ---------------------------------------------------------------------------------------------


def _marker(root: Path, name: str) -> Path:
    return root / f".done-{name}"


def fetch(resource: Resource, root: str | Path, *, base_url: str = BASE_URL,
          keep_archive: bool = False, progress: bool = True, timeout: float = 60.0,
          retries: int = 5) -> bool:  # fmt: skip
    """Download, verify and extract one resource into ``root``; False if it was already done."""
    root = Path(root)
    if _marker(root, resource.name).is_file() and all((root / p).exists()
                                                      for p in resource.produces):  # fmt: skip
        print(f"{resource.name}: already in {root}")
        return False
    archive = root / "downloads" / Path(resource.path).name
    url = f"{base_url.rstrip('/')}/{resource.path}"
    print(f"{resource.name}: {url} ({resource.size / 2**20:.0f} MiB)")
    download(url, archive, md5=resource.md5, sha256=resource.sha256, size=resource.size,
             progress=progress, timeout=timeout, retries=retries)  # fmt: skip
    safe_extract(archive, root)
    missing = [p for p in resource.produces if not (root / p).exists()]
    if missing:
        raise RuntimeError(f"{archive.name}: extracted, but {', '.join(missing)} is missing")
    _marker(root, resource.name).write_text(resource.md5 + "\n")
    if not keep_archive:
        archive.unlink()
    return True


def _made_here(src: Path, dst: Path, root: Path) -> bool:
    """``dst`` is what an earlier ``--fiftyone`` run made from ``src``: a link to it, or a copy
    it recorded with a marker."""
    if dst.is_symlink():
        return os.path.realpath(dst) == os.path.realpath(src)
    marker = _marker(root, f"fiftyone-{dst.name}")
    return dst.exists() and marker.is_file() and marker.read_text().strip() == str(src.resolve())


def _place(src: Path, dst: Path, mode: str, root: Path) -> None:
    """Link (or copy) ``src`` to ``dst``, which does not exist; a copy appears at once, whole."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if mode == "symlink":
        try:
            dst.symlink_to(src.resolve(), target_is_directory=src.is_dir())
            return
        except OSError:  # no symlinks here (some Windows setups): copy instead
            pass
    files = [p for p in src.rglob("*") if p.is_file()] if src.is_dir() else [src]
    config.check_free_space(dst.parent, sum(p.stat().st_size for p in files), f"copy of {src}")
    tmp = dst.with_name(f".{dst.name}.fiftyone-partial")  # ours: an interrupted copy's leftover
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp)
    elif tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    if src.is_dir():
        shutil.copytree(src, tmp)
    else:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)
    _marker(root, f"fiftyone-{dst.name}").write_text(f"{src.resolve()}\n")


def _fiftyone_sources(fo_dir: Path, splits) -> list[tuple[str, Path, Path]]:
    """``(split, images folder, annotation file)`` of every split the FiftyOne folder has."""
    found = []
    for split in splits:
        fo_split = "validation" if split == "val" else split
        images = fo_dir / fo_split / "data"
        ann_name = f"person_keypoints_{split}2017.json"
        candidates = [fo_dir / "raw" / ann_name, fo_dir / "annotations" / ann_name,
                      fo_dir / ann_name]  # fmt: skip
        ann = next((c for c in candidates if c.is_file()), None)
        if not images.is_dir():
            print(f"{split}: no {images} in the FiftyOne folder, skipped")
            continue
        if ann is None:
            raise FileNotFoundError(
                f"--fiftyone: {ann_name} not found in {fo_dir / 'raw'} (FiftyOne keeps the full "
                f"COCO annotation files there); get it with `--only annotations`"
            )
        found.append((split, images, ann))
    return found


def from_fiftyone(fo_dir: str | Path, root: str | Path, *, splits=("val", "train"),
                  mode: str = "symlink") -> list[str]:  # fmt: skip
    """Use a FiftyOne ``coco-2017`` folder: ``{validation,train}/data/*.jpg`` and the full
    annotation files in ``raw/`` (FiftyOne keeps them there). Links (or copies) them into the
    course layout under ``root``; returns the splits placed. Never deletes or replaces anything:
    a ``val2017/``, ``train2017/`` or annotation file already there that an earlier run did not
    make from the same source raises ``FileExistsError`` before anything is placed."""
    fo_dir, root = Path(fo_dir).expanduser(), Path(root)
    if not fo_dir.is_dir():
        raise FileNotFoundError(f"--fiftyone: no folder at {fo_dir}")
    if mode not in ("symlink", "copy"):
        raise ValueError(f"mode: expected 'symlink' or 'copy', got {mode!r}")
    sources = _fiftyone_sources(fo_dir, splits)
    pairs = [pair for split, images, ann in sources
             for pair in ((images, root / f"{split}2017"),
                          (ann, root / "annotations" / ann.name))]  # fmt: skip
    for src, dst in pairs:
        if (dst.exists() or dst.is_symlink()) and not _made_here(src, dst, root):
            raise FileExistsError(
                f"--fiftyone: {dst} already exists and was not made by --fiftyone from {src}; "
                "it is left as it is: move it away (or use another --dir) and run again"
            )
    for src, dst in pairs:
        if not _made_here(src, dst, root):
            _place(src, dst, mode, root)
    for split, images, ann in sources:
        n = sum(1 for _ in images.glob("*.jpg"))
        print(f"{split}: {n} images and {ann.name} from {fo_dir} ({mode})")
    return [split for split, _, _ in sources]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(RESOURCES), default=None,
                        help="what to get (default: annotations val train)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="data folder (default: $COURSE_COCO_DIR, else data/coco)")
    parser.add_argument("--base-url", default=BASE_URL, help="mirror of images.cocodataset.org")
    parser.add_argument("--keep-archives", action="store_true", help="keep the .zip files")
    parser.add_argument("--fiftyone", type=Path, default=None, metavar="DIR",
                        help="use an existing FiftyOne coco-2017 folder instead of downloading")
    parser.add_argument("--copy", action="store_true", help="with --fiftyone: copy, not symlink")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="how long one request may wait for the server (default 60)")
    parser.add_argument("--retries", type=int, default=5,
                        help="retries of a failed request, with exponential back-off (default 5)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _run(args: argparse.Namespace) -> str:
    """Do what the arguments ask; the closing message."""
    root = args.dir if args.dir is not None else config.data_dir("coco")
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"--dir: {root} is a file, not a folder")
    root.mkdir(parents=True, exist_ok=True)
    only = args.only or list(RESOURCES)
    if args.fiftyone is not None:
        splits = [s for s in ("val", "train") if s in only or "annotations" in only]
        placed = from_fiftyone(args.fiftyone, root, splits=splits,
                               mode="copy" if args.copy else "symlink")  # fmt: skip
        if not placed:
            raise FileNotFoundError(f"--fiftyone: no validation/data or train/data folder in "
                                    f"{args.fiftyone}: is it a FiftyOne coco-2017 folder?")
        return f"COCO 2017 from FiftyOne in {root}: {', '.join(placed)}"
    for name in dict.fromkeys(only):
        fetch(RESOURCES[name], root, base_url=args.base_url, keep_archive=args.keep_archives,
              progress=not args.quiet, timeout=args.timeout, retries=args.retries)  # fmt: skip
    return f"COCO 2017 ({', '.join(only)}) ready in {root}; use it with COURSE_DATA=coco"


def main(argv: list[str] | None = None) -> int:
    import math
    import urllib.parse

    parser = _parser()
    args = parser.parse_args(argv)
    if not (math.isfinite(args.timeout) and args.timeout > 0):
        parser.error(f"--timeout: expected a positive number of seconds, got {args.timeout}")
    if args.retries < 0:
        parser.error(f"--retries: expected a non-negative integer, got {args.retries}")
    if urllib.parse.urlsplit(args.base_url).scheme not in ("http", "https"):
        parser.error(f"--base-url: expected an http:// or https:// address, got {args.base_url!r}")
    code = 2
    try:
        print(_run(args))
        return 0
    except KeyboardInterrupt:
        message = "interrupted; the partial download is kept: run again to resume"
        code = 130
    except (UnsafeArchiveError, ValueError) as exc:  # a bad archive or argument
        message = str(exc)
    except (ChecksumError, ConnectionError, RuntimeError) as exc:  # network, server, busy
        message, code = str(exc), 1
    except OSError as exc:  # a missing or existing folder, no space, no permission
        message = str(exc)
    print(f"error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
