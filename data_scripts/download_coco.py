"""Download the real COCO 2017 person keypoints into the course's data layout.

    python data_scripts/download_coco.py                         # annotations + val + train
    python data_scripts/download_coco.py --only annotations val  # 240 MB + 780 MB, no train
    python data_scripts/download_coco.py --fiftyone ~/fiftyone/coco-2017   # reuse FiftyOne's

Result (``course_lib.config.data_dir("coco")``, i.e. ``data/coco``)::

    annotations/person_keypoints_{train,val}2017.json
    train2017/*.jpg   val2017/*.jpg

Every archive is checked against its published MD5 (and SHA-256 where known) before it is
extracted; an interrupted download is resumed with an HTTP Range request (the partial file is
kept as ``<name>.part``); extraction refuses any archive member whose path would land outside
the target folder. A finished step leaves a marker, so a rerun skips it.
Then use the data with ``COURSE_DATA=coco`` (or the ``gpu`` profile).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import sys
import tarfile
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
        raise RuntimeError(f"url: {url} answered HTTP {exc.code} ({exc.reason})") from exc
    except urllib.error.URLError as exc:
        raise RuntimeError(
            f"url: cannot reach {url} ({exc.reason}); check the network, or use --fiftyone"
        ) from exc


def _receive(response, part: Path, have: int, *, size: int | None, name: str, chunk: int,
             progress: bool) -> None:
    """Append the response's bytes to ``part`` (or restart it when the server sent all of it)."""
    from tqdm.auto import tqdm

    if response.status == 206:
        mode = "ab"
    else:  # the server ignored the Range request: start again
        mode, have = "wb", 0
    length = response.headers.get("Content-Length")
    total = have + int(length) if length is not None else size
    with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                     unit_divisor=1024, desc=name, disable=not progress) as bar:
        try:
            while block := response.read(chunk):
                f.write(block)
                bar.update(len(block))
        except (http.client.IncompleteRead, OSError) as exc:
            raise ConnectionError(
                f"{name}: the download stopped after {part.stat().st_size} bytes "
                f"({type(exc).__name__}); run again to resume"
            ) from exc
    if length is not None and part.stat().st_size < total:
        raise ConnectionError(f"{name}: the connection closed after {part.stat().st_size} of "
                              f"{total} bytes; run again to resume")


def download(url: str, dest: str | Path, *, md5: str | None = None, sha256: str | None = None,
             size: int | None = None, progress: bool = True, chunk: int = 1 << 20,
             timeout: float = 60.0) -> Path:  # fmt: skip
    """Download ``url`` to ``dest``, resuming ``dest.part`` with an HTTP Range request.

    A complete ``dest`` with the right checksum is kept as it is. The bytes go to ``dest.part``
    first; when the server honours the Range request (206) the download continues where it
    stopped, otherwise (200) it restarts. ``dest`` appears only after the checksum matched; a
    mismatch deletes the partial file and raises :class:`ChecksumError`.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        try:
            verify(dest, md5=md5, sha256=sha256)
            return dest
        except ChecksumError:
            dest.unlink()
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    response = _open_range(url, have, timeout)
    if response is not None:
        with response:
            _receive(response, part, have, size=size, name=dest.name, chunk=chunk,
                     progress=progress)
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


def check_members(archive: str | Path) -> list[str]:
    """The member names of a .zip or .tar(.gz); :class:`UnsafeArchiveError` if one escapes."""
    archive = Path(archive)
    target = Path("/__target__").resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            for info in zf.infolist():
                mode = info.external_attr >> 16
                if mode and (mode & 0o170000) == 0o120000:
                    raise UnsafeArchiveError(f"{archive.name}: member {info.filename!r} is a "
                                             "symbolic link; refusing to extract")  # fmt: skip
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            names = []
            for m in tf.getmembers():
                if not (m.isfile() or m.isdir()):
                    raise UnsafeArchiveError(f"{archive.name}: member {m.name!r} is a link or a "
                                             "device; refusing to extract")  # fmt: skip
                names.append(m.name)
    else:
        raise ValueError(f"archive: {archive} is neither a zip nor a tar file")
    for name in names:
        if not _inside(target, name):
            raise UnsafeArchiveError(
                f"{archive.name}: member {name!r} would be written outside the target folder; "
                f"refusing to extract"
            )
    return names


def safe_extract(archive: str | Path, target: str | Path) -> list[str]:
    """Extract ``archive`` into ``target`` after checking EVERY member (nothing is written when
    one member is unsafe). Returns the member names."""
    archive, target = Path(archive), Path(target)
    names = check_members(archive)
    target.mkdir(parents=True, exist_ok=True)
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
          keep_archive: bool = False, progress: bool = True) -> bool:  # fmt: skip
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
             progress=progress)  # fmt: skip
    safe_extract(archive, root)
    missing = [p for p in resource.produces if not (root / p).exists()]
    if missing:
        raise RuntimeError(f"{archive.name}: extracted, but {', '.join(missing)} is missing")
    _marker(root, resource.name).write_text(resource.md5 + "\n")
    if not keep_archive:
        archive.unlink()
    return True


def _place(src: Path, dst: Path, mode: str) -> None:
    if dst.is_symlink() or dst.is_file():
        dst.unlink()
    elif dst.is_dir():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if mode == "symlink":
        try:
            dst.symlink_to(src.resolve(), target_is_directory=src.is_dir())
            return
        except OSError:  # no symlinks here (some Windows setups): copy instead
            pass
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy2(src, dst)


def from_fiftyone(fo_dir: str | Path, root: str | Path, *, splits=("val", "train"),
                  mode: str = "symlink") -> list[str]:  # fmt: skip
    """Use a FiftyOne ``coco-2017`` folder: ``{validation,train}/data/*.jpg`` and the full
    annotation files in ``raw/`` (FiftyOne keeps them there). Links (or copies) them into the
    course layout under ``root``; returns the splits placed."""
    fo_dir, root = Path(fo_dir).expanduser(), Path(root)
    if not fo_dir.is_dir():
        raise FileNotFoundError(f"--fiftyone: no folder at {fo_dir}")
    if mode not in ("symlink", "copy"):
        raise ValueError(f"mode: expected 'symlink' or 'copy', got {mode!r}")
    placed = []
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
        _place(images, root / f"{split}2017", mode)
        _place(ann, root / "annotations" / ann_name, mode)
        n = sum(1 for _ in images.glob("*.jpg"))
        print(f"{split}: {n} images and {ann_name} from {fo_dir} ({mode})")
        placed.append(split)
    return placed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(RESOURCES), default=None,
                        help="what to get (default: annotations val train)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="data folder (default: data/coco of the repository)")
    parser.add_argument("--base-url", default=BASE_URL, help="mirror of images.cocodataset.org")
    parser.add_argument("--keep-archives", action="store_true", help="keep the .zip files")
    parser.add_argument("--fiftyone", type=Path, default=None, metavar="DIR",
                        help="use an existing FiftyOne coco-2017 folder instead of downloading")
    parser.add_argument("--copy", action="store_true", help="with --fiftyone: copy, not symlink")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    root = args.dir if args.dir is not None else config.data_dir("coco")
    root.mkdir(parents=True, exist_ok=True)
    only = args.only or list(RESOURCES)
    if args.fiftyone is not None:
        splits = [s for s in ("val", "train") if s in only or "annotations" in only]
        placed = from_fiftyone(args.fiftyone, root, splits=splits,
                               mode="copy" if args.copy else "symlink")  # fmt: skip
        print(f"COCO 2017 from FiftyOne in {root}: {', '.join(placed) or 'nothing'}")
        return 0 if placed else 1
    try:
        for name in only:
            fetch(RESOURCES[name], root, base_url=args.base_url, keep_archive=args.keep_archives,
                  progress=not args.quiet)  # fmt: skip
    except (ChecksumError, UnsafeArchiveError, RuntimeError, ConnectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"COCO 2017 ({', '.join(only)}) ready in {root}; use it with COURSE_DATA=coco")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
