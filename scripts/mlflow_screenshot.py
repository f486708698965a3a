"""Screenshot the MLflow UI comparing the latest pipeline runs (docs/mlflow-compare.png).

    python scripts/mlflow_screenshot.py [--out docs/mlflow-compare.png] [--runs 2]

Needs at least two runs in the store (e.g. `dvc repro`, then
`dvc exp run -S augment.enabled=false`) and Chromium (`apt-get install chromium`).
Starts `mlflow ui` on a free 127.0.0.1 port against the pipeline's store
(MLFLOW_TRACKING_URI or the embedded mlflow.db), opens the compare view headless, saves the
PNG, and stops the UI.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.params import load_params  # noqa: E402
from stages.tracking import tracking_uri  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def latest_runs(uri: str, experiment_name: str, count: int) -> tuple[str, list[str]]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(experiment_name)
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"],
                              max_results=count) if experiment else []
    if len(runs) < 2:
        sys.exit(f"need at least 2 runs in experiment {experiment_name!r} of {uri}; run the pipeline twice, "
                 "e.g. `dvc repro` then `dvc exp run -S augment.enabled=false`")
    return experiment.experiment_id, [r.info.run_id for r in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/mlflow-compare.png"))
    parser.add_argument("--runs", type=int, default=2, help="how many of the latest runs to compare")
    parser.add_argument("--size", default="1400,2750", help="window width,height in pixels (the whole compare page)")
    args = parser.parse_args()

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        sys.exit("Chromium not found: install it (Debian: apt-get install chromium)")
    uri = tracking_uri()
    experiment_id, run_ids = latest_runs(uri, load_params().mlflow.experiment_name, args.runs)

    port = free_port()
    ui = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                           "--host", "127.0.0.1", "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                if requests.get(f"{base}/health", timeout=5).ok:
                    break
            except requests.RequestException:  # not listening yet, or busy starting up
                time.sleep(0.5)
        query = urllib.parse.urlencode({"runs": json.dumps(run_ids), "experiments": json.dumps([experiment_id])})
        page = f"{base}/#/compare-runs?{query}"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                            f"--user-data-dir={profile}", f"--window-size={args.size}",
                            "--virtual-time-budget=20000", f"--screenshot={args.out.resolve()}", page],
                           check=True, capture_output=True, timeout=120)
        print(f"compared runs {', '.join(run_ids)} -> {args.out}")
    finally:
        ui.terminate()
        ui.wait(timeout=30)


if __name__ == "__main__":
    main()
