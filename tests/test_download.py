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


class Server:
    """Serves ``files`` (path -> bytes) with Range support; ``cut`` = bytes sent before hanging up."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: int | None = None
        self.ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                data = server.files.get(self.path)
                server.ranges.append(self.headers.get("Range"))
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
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut is not None:
                    self.wfile.write(body[: server.cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
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
    with pytest.raises(ConnectionError, match="run again to resume"):
        dl.download(f"{server.url}/zips/big.bin", dest, md5=_md5(payload), progress=False,
                    chunk=65536)  # fmt: skip
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
