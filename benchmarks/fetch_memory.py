"""Peak memory of `fetch` on a ~1 GB archive: download + verify + extract + manifest.

Builds a zip of incompressible random "images" (stored, so the archive is as big as its
contents) in a temporary folder, serves it with `python -m http.server` on 127.0.0.1, and
runs the fetch stage in a child process twice: on a tiny archive (the baseline: Python,
pandas, requests... imported) and on the big one. The child's peak RSS comes from
wait4()'s rusage, so nothing in this process is counted. Streaming means the big fetch
should cost about the same memory as the tiny one, not the archive's size.

    python benchmarks/fetch_memory.py              # ~1 GiB; needs ~3.5 GiB of free disk
    python benchmarks/fetch_memory.py --size-mb 256

Not part of the test suite (it takes a minute and writes gigabytes).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILE_MB = 16  # per "image": 64 files make 1 GiB


def build_archive(path: Path, size_mb: int) -> str:
    """A stored zip of random files in cats_and_dogs_filtered's layout; returns its sha256."""
    files = max(4, size_mb // FILE_MB)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for i in range(files):
            label = ("cats", "dogs")[i % 2]
            split = "validation" if i % 8 < 2 else "train"
            with zf.open(f"big/{split}/{label}/{i:04d}.jpg", "w", force_zip64=True) as out:
                for _ in range(FILE_MB):
                    out.write(os.urandom(1 << 20))
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(directory: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port),
                               "--directory", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return server, port
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("http.server did not start")


def fetch_in_child(project: Path, url: str, sha256: str) -> tuple[float, float]:
    """Run the fetch stage in `project`; returns (seconds, peak RSS in MiB)."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "params.yaml").write_text(f"data:\n  source: url\n  url: {url}\n  sha256: {sha256}\n")
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "stages.fetch"], cwd=project, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"fetch failed:\n{child.stderr.read().decode()}")
    return seconds, usage.ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="archive size in MiB (default 1024)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to build (default: a temp folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="fetch-memory-") as tmp:
        work = Path(tmp)
        (work / "www").mkdir()
        print(f"building a {args.size_mb} MiB archive of random files in {work} ...", flush=True)
        small_sha = build_archive(work / "www/small.zip", 4 * FILE_MB)
        big_sha = build_archive(work / "www/big.zip", args.size_mb)
        big_bytes = (work / "www/big.zip").stat().st_size
        server, port = serve(work / "www")
        try:
            url = f"http://127.0.0.1:{port}"
            base_s, base_mb = fetch_in_child(work / "small", f"{url}/small.zip", small_sha)
            big_s, big_mb = fetch_in_child(work / "big", f"{url}/big.zip", big_sha)
            cached_s, cached_mb = fetch_in_child(work / "big", f"{url}/big.zip", big_sha)
        finally:
            server.terminate()
            server.wait()
    print(f"archive: {big_bytes / 2**20:,.0f} MiB ({big_bytes:,} bytes), {max(4, args.size_mb // FILE_MB)} files")
    print(f"baseline fetch, {4 * FILE_MB} MiB archive:   peak RSS {base_mb:6.1f} MiB, {base_s:5.1f} s")
    print(f"fetch, download + verify + extract:  peak RSS {big_mb:6.1f} MiB, {big_s:5.1f} s")
    print(f"fetch again, from the cache:         peak RSS {cached_mb:6.1f} MiB, {cached_s:5.1f} s")


if __name__ == "__main__":
    main()
