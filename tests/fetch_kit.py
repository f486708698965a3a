"""What the fetch tests build: small archives in the two public layouts, unsafe archives,
and an HTTP server on 127.0.0.1 that honours Range, counts requests and misbehaves on cue."""

from __future__ import annotations

import hashlib
import io
import re
import socket
import stat
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image


def jpeg(seed: int, size: int = 32) -> bytes:
    """A noise JPEG: distinct seeds give distinct images, far apart by perceptual hash too
    (validate quarantines copies across splits, so look-alike test images would vanish)."""
    import numpy as np

    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "JPEG")
    return buffer.getvalue()


def cats_and_dogs_filtered(train: int = 10, val: int = 5) -> dict[str, bytes]:
    """cats_and_dogs_filtered/{train,validation}/{cats,dogs}/ plus the litter the real one has."""
    top = "cats_and_dogs_filtered"
    entries = {f"{top}/vectorize.py": b"print('not an image')\n"}
    for split, n, offset in (("train", train, 0), ("validation", val, 1000)):
        for label in ("cats", "dogs"):
            for i in range(n):
                seed = offset + i + (500 if label == "dogs" else 0)
                entries[f"{top}/{split}/{label}/{label[:-1]}.{offset + i}.jpg"] = jpeg(seed)
    entries[f"{top}/train/cats/.DS_Store"] = b"\0\0\0\1Bud1"
    return entries


def pet_images(n: int = 12) -> dict[str, bytes]:
    """PetImages/{Cat,Dog}/<i>.jpg with Thumbs.db in each, a licence and a readme beside."""
    entries = {"CDLA-Permissive-2.0.pdf": b"%PDF-1.4 licence", "readme[1].txt": b"Cats and dogs"}
    for label in ("Cat", "Dog"):
        for i in range(n):
            entries[f"PetImages/{label}/{i}.jpg"] = jpeg(i * 2 + (label == "Dog"))
        entries[f"PetImages/{label}/Thumbs.db"] = b"thumbnail cache"
    return entries


def write_zip(path: Path, entries: dict[str, bytes], symlinks: dict[str, str] | None = None,
              compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # Unix, so the mode bits below are read as such
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def write_tar(path: Path, entries: dict[str, bytes], mode: str = "w:gz",
              extra: list[tarfile.TarInfo] | None = None) -> Path:
    """`extra` members (links, devices...) are appended after the files, without data."""
    with tarfile.open(path, mode) as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)
    return path


def tar_link(name: str, target: str, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def tar_special(name: str, kind: bytes = tarfile.FIFOTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ArchiveServer:
    """Serves `files` (name -> path) on 127.0.0.1.

    `ranges`: honour `Range: bytes=N-` with 206 (else always 200, the whole file).
    `faults`: consumed one per request, in order: ("drop", n) sends the full Content-Length
    header but only n body bytes then closes the connection; ("status", code) answers code.
    `requests` lists (name, Range header) of every GET; `sent` counts body bytes sent.
    """

    def __init__(self, ranges: bool = True) -> None:
        self.files: dict[str, Path] = {}
        self.ranges = ranges
        self.faults: list[tuple[str, int]] = []
        self.requests: list[tuple[str, str | None]] = []
        self.sent = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        # A short poll interval: shutdown() waits for it (0.5 s by default, per test).
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def serve(self, path: Path, name: str | None = None) -> str:
        name = name or path.name
        self.files[name] = path
        return self.url(name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def gets(self, name: str) -> int:
        return sum(1 for requested, _ in self.requests if requested == name)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        owner: ArchiveServer = self.server.owner
        name, wanted = self.path.lstrip("/"), self.headers.get("Range")
        with owner.lock:
            owner.requests.append((name, wanted))
            fault = owner.faults.pop(0) if owner.faults else None
        if name not in owner.files:
            self.send_error(404)
            return
        if fault and fault[0] == "status":
            self.send_error(fault[1])
            return
        body = owner.files[name].read_bytes()
        match = re.fullmatch(r"bytes=(\d+)-", wanted or "")
        start = int(match.group(1)) if owner.ranges and match else 0
        if start >= len(body) > 0:
            self.send_error(416)
            return
        if start:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("Accept-Ranges", "bytes" if owner.ranges else "none")
        self.end_headers()
        payload = body[start:]
        if fault and fault[0] == "drop":
            payload = payload[: fault[1]]
        with owner.lock:  # counted before writing: the client may be done before this thread resumes
            owner.sent += len(payload)
        self.wfile.write(payload)
        if fault and fault[0] == "drop":
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
