"""Throughput of the validate stage: 10,000 images of 500x375 by default.

Generates noisy JPEGs with shapes (two classes) into a temporary folder, builds the
manifest as fetch does, then runs the whole validate stage (`python -m stages.validate`:
scan + GX contract + reports, start-up included) once per worker count and prints, for
each: images/s, CPU time / wall time over the stage's process tree, and the peak resident
memory of that tree (the stage and its scan workers together, sampled every 50 ms with
psutil, which DVC already depends on). The speed-up of N workers over 1 shows whether the
cores are really used, and so do the CPU seconds of each scan thread over the scan's wall
time; --scan-only also times the per-image work alone in threads vs processes (the reason
the stage uses threads).

    python benchmarks/validate_throughput.py                     # 10,000 images, 1 worker then every core
    python benchmarks/validate_throughput.py --repeat 3 --scan-only
    python benchmarks/validate_throughput.py --images 2000 --workers 1 2 4

The machine's load average is printed before and after: on a shared machine other jobs
take CPU from the workers, and the speed-up says less (--repeat N reports the best of N
interleaved rounds).

Not part of the test suite (timings are not assertions).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the stages package, run from anywhere, here and in child processes
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


def make_image(job: tuple[Path, int, int, int]) -> None:
    """One 'photo': smooth noise, a few filled shapes, JPEG quality 90 (about 60 kB at 500x375)."""
    import numpy as np
    from PIL import Image, ImageDraw

    path, width, height, seed = job
    rng = np.random.default_rng(seed)
    pixels = rng.normal(128, 40, size=(height // 4, width // 4, 3)).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB").resize((width, height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(20, width // 2)), int(rng.integers(20, height // 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x, y, x + w, y + h], fill=colour)
    image.save(path, "JPEG", quality=90)


def generate(root: Path, count: int, width: int, height: int) -> float:
    started = time.perf_counter()
    jobs = []
    for i in range(count):
        label = ("cats", "dogs")[i % 2]
        (root / label).mkdir(parents=True, exist_ok=True)
        jobs.append((root / label / f"{i:06d}.jpg", width, height, i))
    with ProcessPoolExecutor() as pool:
        list(pool.map(make_image, jobs, chunksize=64))
    return time.perf_counter() - started


class TreeMonitor:
    """Peak RSS (summed over the processes this one started, and theirs) and their CPU time.

    CPU time: the last sample seen of every process that ran, so a worker that has exited
    still counts; the 50 ms sampling period bounds what is missed."""

    def __init__(self, period: float = 0.05):
        import psutil

        self.psutil, self.period = psutil, period
        self.root = psutil.Process()
        self.peak_rss = 0
        self.cpu: dict[int, float] = {}
        self.threads: dict[tuple[int, int], float] = {}  # CPU seconds of every non-main thread
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        total = 0
        for process in self.root.children(recursive=True):  # the stage and its workers, not this script
            try:
                with process.oneshot():
                    total += process.memory_info().rss
                    times = process.cpu_times()
                    self.cpu[process.pid] = times.user + times.system
                    for thread in process.threads():
                        if thread.id != process.pid:  # not the main thread
                            self.threads[(process.pid, thread.id)] = thread.user_time + thread.system_time
            except self.psutil.Error:  # exited between listing and reading
                continue
        self.peak_rss = max(self.peak_rss, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.period)

    def __enter__(self) -> TreeMonitor:
        self._sample()
        self.start_cpu = dict(self.cpu)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def cpu_seconds(self) -> float:
        return sum(t - self.start_cpu.get(pid, 0.0) for pid, t in self.cpu.items())

    def worker_cpu(self) -> list[float]:
        """CPU seconds of each thread that did real work (> 0.2 s): the scan's worker threads."""
        return [t for _, t in sorted(self.threads.items()) if t > 0.2]


def run_stage(workers: int) -> dict:
    """`python -m stages.validate` as DVC runs it, in a fresh process: each run pays the same
    start-up (imports, GX context, the worker pool)."""
    import subprocess

    import yaml

    Path("params.yaml").write_text(yaml.safe_dump({"validate": {"workers": workers, "min_images_per_class": 1}}))
    with TreeMonitor() as monitor:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "stages.validate"], capture_output=True, text=True)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"validate failed:\n{done.stdout}\n{done.stderr}")
    scanned = next(line.strip() for line in done.stdout.splitlines() if "scanned" in line)
    scan_seconds = float(re.search(r"in ([\d.]+) s", scanned).group(1))
    return {"wall": wall, "cpu": monitor.cpu_seconds, "peak_rss": monitor.peak_rss, "scanned": scanned,
            "scan_seconds": scan_seconds, "workers_cpu": monitor.worker_cpu()}


def scan_only(files: list[Path], workers: int, kind: str) -> dict:
    """The per-image work alone: the stage's own threaded scan (validate.scan_images), or the
    same per-file function (stages.images.scan_file) in a process pool, chunked alike."""
    import multiprocessing
    from itertools import repeat

    import pandas as pd

    from stages import paths
    from stages.images import scan_file
    from stages.validate import SCAN_CHUNK, scan_images

    manifest = pd.DataFrame({"path": [f.relative_to(paths.RAW_DIR).as_posix() for f in files]})
    with tempfile.TemporaryDirectory() as copies, TreeMonitor() as monitor:
        started, cpu = time.perf_counter(), time.process_time()
        if kind == "threads":
            scan_images(manifest, paths.RAW_DIR, Path(copies), 40_000_000, workers)
        else:
            context = multiprocessing.get_context("forkserver")
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                list(pool.map(scan_file, files, repeat(None), repeat(40_000_000), chunksize=SCAN_CHUNK))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"rate": len(files) / wall, "cpu": cpu + monitor.cpu_seconds, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--workers", type=int, nargs="+", default=None,
                        help="worker counts to compare (default: 1 and every available core)")
    parser.add_argument("--keep", type=Path, default=None, help="generate into (and keep) this folder")
    parser.add_argument("--scan-only", action="store_true",
                        help="also time the per-image scan alone in threads vs processes (why threads)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; each setting's best round is reported")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = args.workers or sorted({1, cores})

    from stages import paths
    from stages.manifest import build_manifest

    work = args.keep or Path(tempfile.mkdtemp(prefix="validate-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)  # the stage reads and writes data/ and reports/ under the current folder
    print(f"cores available: {cores}; load average (1, 5, 15 min) before: {_load()}")
    if not (paths.RAW_DIR.is_dir() and paths.MANIFEST.is_file()):
        seconds = generate(paths.RAW_DIR, args.images, args.width, args.height)
        build_manifest(paths.RAW_DIR, (0.7, 0.15, 0.15), seed=0).to_csv(paths.MANIFEST, index=False)
        print(f"generated {args.images} images of {args.width}x{args.height} in {seconds:.1f} s under {work}")
    count = len(list(paths.RAW_DIR.glob("*/*.jpg")))

    # Rounds interleave the settings, so a burst of load from other jobs hits them alike;
    # the best round of each is the one least disturbed.
    runs: dict[int, list[dict]] = {n: [] for n in workers}
    for _ in range(args.repeat):
        for n in workers:
            runs[n].append(run_stage(n))
    print(f"\nthe validate stage (python -m stages.validate, start-up and GX included), best of {args.repeat}:")
    best = {n: min(results, key=lambda r: r["wall"]) for n, results in runs.items()}
    for n, result in best.items():
        print(f"  workers={n}: {count} images in {result['wall']:.1f} s = {count / result['wall']:.0f} images/s "
              f"(median {count / statistics.median(r['wall'] for r in runs[n]):.0f}); CPU/wall "
              f"{result['cpu'] / result['wall']:.2f}; peak RSS (stage + workers) {result['peak_rss'] / 2**20:.0f} MiB\n"
              f"    {result['scanned']} = {count / result['scan_seconds']:.0f} images/s; CPU seconds per scan "
              f"thread: {', '.join(f'{c:.1f}' for c in result['workers_cpu'])} = "
              f"{sum(result['workers_cpu']) / result['scan_seconds']:.2f} cores busy while scanning", flush=True)
    for n in workers[1:]:
        print(f"  speed-up {n} vs {workers[0]} worker(s): stage {best[workers[0]]['wall'] / best[n]['wall']:.2f}x, "
              f"scan {best[workers[0]]['scan_seconds'] / best[n]['scan_seconds']:.2f}x")
    print(f"  load average after: {_load()}")

    if args.scan_only:
        files = sorted(paths.RAW_DIR.glob("*/*.jpg"))
        rates: dict[tuple[str, int], list[dict]] = {}
        for _ in range(args.repeat):
            for kind in ("threads", "processes"):
                for n in workers:
                    rates.setdefault((kind, n), []).append(scan_only(files, n, kind))
        print(f"\nthe scan alone (threads: the stage's scan_images; processes: a process pool), best of {args.repeat}:")
        for (kind, n), results in rates.items():
            top = max(results, key=lambda r: r["rate"])
            print(f"  {n} {kind}: {top['rate']:.0f} images/s (median "
                  f"{statistics.median(r['rate'] for r in results):.0f}); CPU/wall {top['cpu'] / top['wall']:.2f}")
        print(f"  load average after: {_load()}")
    if args.keep is None:
        os.chdir(Path.home())
        shutil.rmtree(work, ignore_errors=True)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
