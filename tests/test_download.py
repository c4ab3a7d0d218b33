"""data_scripts/download_coco.py offline: a local HTTP server on 127.0.0.1 serves the files."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
import json
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("download_coco",
                                               ROOT / "data_scripts" / "download_coco.py")
dl = importlib.util.module_from_spec(_spec)
sys.modules["download_coco"] = dl  # dataclasses look their module up
_spec.loader.exec_module(dl)
_sleep = time.sleep


class Server:
    """Serves ``files`` (path -> bytes) with Range support, and misbehaves on request:

    ``cut``: bytes sent before hanging up (first ``cut_times`` requests, all when None);
    ``no_length``: send no Content-Length (the body ends when the connection closes);
    ``fail``: HTTP statuses answered to the first requests; ``hang``: seconds the first request
    waits before answering; ``shift``: a 206 that starts this many bytes later than asked;
    ``no_range_header``: a 206 without Content-Range.
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: int | None = None
        self.cut_times: int | None = None
        self.no_length = False
        self.fail: list[int] = []
        self.hang = 0.0
        self.shift = 0
        self.no_range_header = False
        self.ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                data = server.files.get(self.path)
                server.ranges.append(self.headers.get("Range"))
                if server.hang and len(server.ranges) == 1:
                    _sleep(server.hang)  # not time.sleep, which tests replace
                if server.fail:
                    self.send_error(server.fail.pop(0))
                    return
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    start += server.shift
                    self.send_response(206)
                    if not server.no_range_header:
                        self.send_header("Content-Range",
                                         f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                if not server.no_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cutting = server.cut is not None and (server.cut_times is None
                                                      or server.cut_times > 0)  # fmt: skip
                if cutting:
                    if server.cut_times is not None:
                        server.cut_times -= 1
                    self.wfile.write(body[: server.cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)  # fmt: skip
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def _md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def test_interrupted_download_resumes_with_range(server, tmp_path):
    payload = bytes(range(256)) * 4000  # 1 MB
    server.files["/zips/big.bin"] = payload
    server.cut = 300_000  # the connection drops after 300 kB
    dest = tmp_path / "big.bin"
    with pytest.raises(ConnectionError, match="run again to resume"):  # no retry: give up
        dl.download(f"{server.url}/zips/big.bin", dest, md5=_md5(payload), progress=False,
                    chunk=65536, retries=0)  # fmt: skip
    part = tmp_path / "big.bin.part"
    assert not dest.exists() and part.stat().st_size == 300_000
    server.cut = None
    out = dl.download(f"{server.url}/zips/big.bin", dest, md5=_md5(payload),
                      sha256=hashlib.sha256(payload).hexdigest(), progress=False)  # fmt: skip
    assert out == dest and dest.read_bytes() == payload and not part.exists()
    assert server.ranges == [None, "bytes=300000-"]
    # a complete file with the right checksum is not fetched again
    dl.download(f"{server.url}/zips/big.bin", dest, md5=_md5(payload), progress=False)
    assert len(server.ranges) == 2


def test_server_ignoring_range_restarts_and_complete_part_is_kept(server, tmp_path):
    payload = b"abcdef" * 1000
    server.files["/a.bin"] = payload
    (tmp_path / "a.bin.part").write_bytes(payload)  # complete but not yet verified: 416
    dl.download(f"{server.url}/a.bin", tmp_path / "a.bin", md5=_md5(payload), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == payload and server.ranges == ["bytes=6000-"]


def test_checksum_mismatch_deletes_the_partial_file(server, tmp_path):
    server.files["/x.bin"] = b"corrupted bytes"
    with pytest.raises(dl.ChecksumError, match="md5 .* expected 0000"):
        dl.download(f"{server.url}/x.bin", tmp_path / "x.bin", md5="0" * 32, progress=False)
    assert not (tmp_path / "x.bin").exists() and not (tmp_path / "x.bin.part").exists()
    with pytest.raises(RuntimeError, match="HTTP 404"):
        dl.download(f"{server.url}/missing.bin", tmp_path / "m.bin", progress=False)


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("bad", ["../evil.txt", "annotations/../../evil.txt", "/tmp/evil.txt"])
def test_archive_member_escaping_the_target_is_refused(tmp_path, bad):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(_zip({"annotations/ok.json": b"{}", bad: b"owned"}))
    target = tmp_path / "out"
    with pytest.raises(dl.UnsafeArchiveError, match="outside the target"):
        dl.safe_extract(archive, target)
    assert not (tmp_path / "evil.txt").exists()
    assert not (target / "annotations" / "ok.json").exists()  # nothing extracted at all


def test_tar_links_are_refused_and_safe_archives_extract(tmp_path):
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("data/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(dl.UnsafeArchiveError, match="link"):
        dl.safe_extract(archive, tmp_path / "t")
    good = tmp_path / "good.zip"
    good.write_bytes(_zip({"val2017/1.jpg": b"jpg", "annotations/a.json": b"{}"}))
    assert sorted(dl.safe_extract(good, tmp_path / "g")) == ["annotations/a.json", "val2017/1.jpg"]
    assert (tmp_path / "g" / "val2017" / "1.jpg").read_bytes() == b"jpg"


def test_main_downloads_verifies_extracts_and_skips_on_rerun(server, tmp_path, monkeypatch):
    ann = {"images": [], "annotations": [], "categories": []}
    blob = _zip({"annotations/person_keypoints_train2017.json": json.dumps(ann).encode(),
                 "annotations/person_keypoints_val2017.json": json.dumps(ann).encode()})
    server.files["/annotations/annotations_trainval2017.zip"] = blob
    fake = dl.Resource("annotations", "annotations/annotations_trainval2017.zip", len(blob),
                       _md5(blob), hashlib.sha256(blob).hexdigest(),
                       dl.RESOURCES["annotations"].produces)  # fmt: skip
    monkeypatch.setitem(dl.RESOURCES, "annotations", fake)
    args = ["--only", "annotations", "--dir", str(tmp_path / "coco"), "--base-url", server.url,
            "--quiet"]  # fmt: skip
    assert dl.main(args) == 0
    assert (tmp_path / "coco" / "annotations" / "person_keypoints_val2017.json").is_file()
    assert not (tmp_path / "coco" / "downloads" / "annotations_trainval2017.zip").exists()
    n = len(server.ranges)
    assert dl.main(args) == 0 and len(server.ranges) == n  # done: nothing fetched again
    # a corrupted mirror: the checksum error is reported, exit status 1
    corrupted = dataclasses.replace(fake, md5="1" * 32, sha256=None)
    monkeypatch.setitem(dl.RESOURCES, "annotations", corrupted)
    assert dl.main(["--only", "annotations", "--dir", str(tmp_path / "c2"), "--base-url",
                    server.url, "--quiet"]) == 1  # fmt: skip


def test_the_published_checksums_are_wired_in():
    assert dl.RESOURCES["val"].md5 == "442b8da7639aecaf257c1dceb8ba8c80"
    assert dl.RESOURCES["train"].md5 == "cced6f7f71b7629ddf16f17bbcfab6b2"
    assert dl.RESOURCES["annotations"].md5 == "f4bbac642086de4f52a3fdda2de5fa2c"


@pytest.mark.parametrize("copy", [False, True])
def test_fiftyone_folder_is_linked_into_the_coco_layout(tmp_path, copy):
    fo = tmp_path / "fiftyone" / "coco-2017"
    (fo / "validation" / "data").mkdir(parents=True)
    (fo / "validation" / "data" / "000000000139.jpg").write_bytes(b"jpg")
    (fo / "validation" / "labels.json").write_text("{}")
    (fo / "raw").mkdir()
    (fo / "raw" / "person_keypoints_val2017.json").write_text('{"images": []}')
    root = tmp_path / "coco"
    args = ["--fiftyone", str(fo), "--dir", str(root), "--only", "val"] + (["--copy"] if copy else [])
    assert dl.main(args) == 0
    assert (root / "val2017" / "000000000139.jpg").read_bytes() == b"jpg"
    assert (root / "annotations" / "person_keypoints_val2017.json").read_text() == '{"images": []}'
    assert (root / "val2017").is_symlink() != copy
    (fo / "raw" / "person_keypoints_val2017.json").unlink()
    with pytest.raises(FileNotFoundError, match="person_keypoints_val2017.json not found"):
        dl.from_fiftyone(fo, root, splits=("val",))
    with pytest.raises(FileNotFoundError, match="--fiftyone: no folder"):
        dl.from_fiftyone(tmp_path / "nope", root)


# ---------------------------------------------------------------------------------------------
# Faults and bad input: cut transfers, lying servers, retries, locks, full disks, symlinks
# ---------------------------------------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 4000  # 1 MB
FAST = {"progress": False, "chunk": 65536, "backoff": 0.0}


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.mark.parametrize("size", [len(PAYLOAD), None], ids=["size known", "size unknown"])
def test_a_cut_download_without_content_length_is_resumed(server, tmp_path, size):
    server.files["/big.bin"] = PAYLOAD
    server.no_length = True  # the body ends when the connection closes: a cut looks like an end
    server.cut, server.cut_times = 300_000, 1
    dest = tmp_path / "big.bin"
    dl.download(f"{server.url}/big.bin", dest, md5=_md5(PAYLOAD), size=size, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges[:2] == [None, "bytes=300000-"]  # resumed from the partial file's size


def test_a_cut_download_keeps_its_partial_file_for_the_next_run(server, tmp_path):
    server.files["/big.bin"] = PAYLOAD
    server.no_length = True
    server.cut, server.cut_times = 300_000, 1
    dest = tmp_path / "big.bin"
    with pytest.raises(ConnectionError, match="300000 of 1024000 bytes.*run again to resume"):
        dl.download(f"{server.url}/big.bin", dest, md5=_md5(PAYLOAD), size=len(PAYLOAD),
                    retries=0, **FAST)  # fmt: skip
    assert (tmp_path / "big.bin.part").stat().st_size == 300_000  # not thrown away
    dl.download(f"{server.url}/big.bin", dest, md5=_md5(PAYLOAD), size=len(PAYLOAD), **FAST)
    assert dest.read_bytes() == PAYLOAD and server.ranges == [None, "bytes=300000-"]


@pytest.mark.parametrize("lie", ["shift", "no_range_header"])
def test_a_206_that_starts_at_another_byte_is_not_appended(server, tmp_path, lie):
    server.files["/big.bin"] = PAYLOAD
    setattr(server, lie, 1000 if lie == "shift" else True)
    (tmp_path / "big.bin.part").write_bytes(PAYLOAD[:300_000])
    dest = tmp_path / "big.bin"
    dl.download(f"{server.url}/big.bin", dest, md5=_md5(PAYLOAD), sha256=_sha(PAYLOAD), **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges == ["bytes=300000-", None]  # the answer was refused: a fresh start


def test_transient_errors_are_retried_with_exponential_backoff(server, tmp_path, monkeypatch):
    sleeps = []
    monkeypatch.setattr(dl.time, "sleep", sleeps.append)
    server.files["/a.bin"] = PAYLOAD
    server.fail = [503, 502, 500]
    dest = tmp_path / "a.bin"
    dl.download(f"{server.url}/a.bin", dest, md5=_md5(PAYLOAD), progress=False, backoff=0.5)
    assert dest.read_bytes() == PAYLOAD and len(server.ranges) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    server.fail = [503] * 10  # a server that stays down: give up, say so
    with pytest.raises(ConnectionError, match="HTTP 503.*after 2 retries"):
        dl.download(f"{server.url}/a.bin", tmp_path / "b.bin", progress=False, retries=2,
                    backoff=0.5)  # fmt: skip
    server.fail = []
    n = len(server.ranges)
    with pytest.raises(RuntimeError, match="HTTP 404"):  # permanent: asked once
        dl.download(f"{server.url}/missing.bin", tmp_path / "m.bin", progress=False, backoff=0)
    assert len(server.ranges) == n + 1


def test_a_hanging_server_times_out_and_is_retried(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    server.hang = 3.0  # the first request gets no answer for 3 s
    start = time.monotonic()
    dl.download(f"{server.url}/a.bin", tmp_path / "a.bin", md5=_md5(PAYLOAD), timeout=0.5,
                **FAST)  # fmt: skip
    assert time.monotonic() - start < 2.5 and len(server.ranges) == 2


def test_two_downloads_never_write_one_partial_file(server, tmp_path):
    import fcntl

    server.files["/a.bin"] = PAYLOAD
    dest = tmp_path / "a.bin"
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:1000])
    with open(tmp_path / "a.bin.lock", "w") as other:  # another download holds the lock
        fcntl.flock(other, fcntl.LOCK_EX)
        with pytest.raises(dl.BusyError, match=r"a\.bin\.part.*another download"):
            dl.download(f"{server.url}/a.bin", dest, md5=_md5(PAYLOAD), **FAST)
        assert server.ranges == [] and (tmp_path / "a.bin.part").stat().st_size == 1000
    dl.download(f"{server.url}/a.bin", dest, md5=_md5(PAYLOAD), **FAST)
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "a.bin.lock").exists()


def _fake_free(monkeypatch, free: int) -> None:
    import shutil

    usage = shutil.disk_usage("/")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=free))


def test_free_space_is_checked_before_downloading_and_extracting(server, tmp_path, monkeypatch):
    server.files["/a.bin"] = PAYLOAD
    _fake_free(monkeypatch, 100_000)
    with pytest.raises(OSError, match=f"a.bin: needs 1024000 bytes .* in {tmp_path}.* 100000 b"):
        dl.download(f"{server.url}/a.bin", tmp_path / "a.bin", size=len(PAYLOAD), **FAST)
    assert not (tmp_path / "a.bin.part").exists() or (tmp_path / "a.bin.part").stat().st_size == 0
    archive = tmp_path / "big.zip"
    archive.write_bytes(_zip({"val2017/1.jpg": b"x" * 150_000, "val2017/2.jpg": b"y" * 10}))
    with pytest.raises(OSError, match="big.zip: needs 150010 bytes .* 100000 bytes"):
        dl.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "val2017").exists()


def _annotations_resource(server, monkeypatch) -> bytes:
    ann = {"images": [], "annotations": [], "categories": []}
    blob = _zip({"annotations/person_keypoints_train2017.json": json.dumps(ann).encode(),
                 "annotations/person_keypoints_val2017.json": json.dumps(ann).encode()})
    server.files["/annotations/annotations_trainval2017.zip"] = blob
    fake = dl.Resource("annotations", "annotations/annotations_trainval2017.zip", len(blob),
                       _md5(blob), _sha(blob), dl.RESOURCES["annotations"].produces)  # fmt: skip
    monkeypatch.setitem(dl.RESOURCES, "annotations", fake)
    return blob


def test_extraction_never_writes_through_a_symbolic_link_in_the_target(server, tmp_path,
                                                                        monkeypatch):
    _annotations_resource(server, monkeypatch)
    root, elsewhere = tmp_path / "coco", tmp_path / "fiftyone" / "raw"
    elsewhere.mkdir(parents=True)
    (elsewhere / "person_keypoints_val2017.json").write_text("FiftyOne's own file")
    root.mkdir()
    (root / "annotations").symlink_to(elsewhere, target_is_directory=True)  # as --fiftyone does
    archive = tmp_path / "a.zip"
    archive.write_bytes(server.files["/annotations/annotations_trainval2017.zip"])
    with pytest.raises(dl.UnsafeArchiveError, match=f"through the symbolic link {root}/annotations"):
        dl.safe_extract(archive, root)
    (root / "annotations").unlink()  # a file link, too
    (root / "annotations").mkdir()
    (root / "annotations" / "person_keypoints_val2017.json").symlink_to(
        elsewhere / "person_keypoints_val2017.json")
    with pytest.raises(dl.UnsafeArchiveError, match="outside"):
        dl.safe_extract(archive, root)
    assert (elsewhere / "person_keypoints_val2017.json").read_text() == "FiftyOne's own file"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["person_keypoints_val2017.json"]
    # a link that stays inside the (real) target is fine, and so is a target reached by a link
    (root / "annotations" / "person_keypoints_val2017.json").unlink()
    (root / "real").mkdir()
    (root / "annotations").rmdir()
    (root / "annotations").symlink_to(root / "real", target_is_directory=True)
    (tmp_path / "link_to_coco").symlink_to(root, target_is_directory=True)
    dl.safe_extract(archive, tmp_path / "link_to_coco")
    assert (root / "real" / "person_keypoints_val2017.json").is_file()


def _fiftyone(tmp_path: Path) -> Path:
    fo = tmp_path / "fiftyone" / "coco-2017"
    (fo / "validation" / "data").mkdir(parents=True)
    (fo / "validation" / "data" / "000000000139.jpg").write_bytes(b"jpg")
    (fo / "raw").mkdir()
    (fo / "raw" / "person_keypoints_val2017.json").write_text('{"images": []}')
    return fo


@pytest.mark.parametrize("existing", ["val2017/mine.jpg", "annotations/person_keypoints_val2017.json"])
@pytest.mark.parametrize("copy", [False, True])
def test_fiftyone_never_deletes_what_it_did_not_make(tmp_path, capsys, existing, copy):
    fo, root = _fiftyone(tmp_path), tmp_path / "coco"
    (root / existing).parent.mkdir(parents=True)
    (root / existing).write_bytes(b"the user's own")
    args = ["--fiftyone", str(fo), "--dir", str(root), "--only", "val"] + ["--copy"] * copy
    assert dl.main(args) == 2
    err = capsys.readouterr().err
    what = root / existing.split("/")[0] if existing.startswith("val") else root / existing
    assert err.startswith("error: --fiftyone: ") and f"{what} already exists" in err
    assert len(err.splitlines()) == 1
    assert (root / existing).read_bytes() == b"the user's own"
    assert not (root / "val2017" / "000000000139.jpg").exists()  # nothing placed at all


@pytest.mark.parametrize("copy", [False, True])
def test_fiftyone_reruns_are_idempotent(tmp_path, copy):
    fo, root = _fiftyone(tmp_path), tmp_path / "coco"
    args = ["--fiftyone", str(fo), "--dir", str(root), "--only", "val"] + ["--copy"] * copy
    assert dl.main(args) == 0
    assert dl.main(args) == 0  # what it made itself is recognised, not replaced or refused
    assert (root / "val2017" / "000000000139.jpg").read_bytes() == b"jpg"
    assert (root / "val2017").is_symlink() != copy
    assert (fo / "validation" / "data" / "000000000139.jpg").read_bytes() == b"jpg"


def test_bad_arguments_and_files_give_one_error_line_and_exit_2(tmp_path, capsys, server,
                                                                monkeypatch):
    (tmp_path / "a_file").write_text("x")
    cases = [
        ["--dir", str(tmp_path / "a_file"), "--only", "annotations"],
        ["--fiftyone", str(tmp_path / "nope"), "--dir", str(tmp_path / "c")],
        ["--fiftyone", str(tmp_path), "--dir", str(tmp_path / "c")],  # no split in it
    ]
    for args in cases:
        assert dl.main(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.splitlines()) == 1, (args, err)
        assert "Traceback" not in err
    for args in (["--timeout", "0"], ["--timeout", "-5"], ["--retries", "-1"],
                 ["--base-url", "file:///etc"], ["--only", "test"]):
        with pytest.raises(SystemExit) as info:
            dl.main(args)
        assert info.value.code == 2
        assert "error:" in capsys.readouterr().err
    # a broken archive from a mirror that has it with the right checksum: exit 2, no traceback
    blob = b"not a zip at all"
    server.files["/annotations/annotations_trainval2017.zip"] = blob
    monkeypatch.setitem(dl.RESOURCES, "annotations", dl.Resource(
        "annotations", "annotations/annotations_trainval2017.zip", len(blob), _md5(blob), None,
        dl.RESOURCES["annotations"].produces))
    assert dl.main(["--only", "annotations", "--dir", str(tmp_path / "c"), "--base-url",
                    server.url, "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("error: archive: ") and len(err.splitlines()) == 1


def test_main_passes_timeout_and_retries(server, tmp_path, monkeypatch):
    _annotations_resource(server, monkeypatch)
    sleeps = []
    monkeypatch.setattr(dl.time, "sleep", sleeps.append)
    server.hang = 3.0
    start = time.monotonic()
    assert dl.main(["--only", "annotations", "--dir", str(tmp_path / "coco"), "--base-url",
                    server.url, "--quiet", "--timeout", "0.5", "--retries", "1"]) == 0
    assert time.monotonic() - start < 2.5 and len(server.ranges) == 2 and sleeps == [1.0]


def test_ctrl_c_keeps_the_partial_download_and_says_so(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dl, "fetch", interrupted)
    assert dl.main(["--only", "annotations", "--dir", str(tmp_path), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert err == "error: interrupted; the partial download is kept: run again to resume\n"
