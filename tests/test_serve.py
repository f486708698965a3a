"""`mlflow models serve` on the champion answers raw images like the `predict` CLI does.

Starts the real server (`--env-manager local`: this environment, nothing created or
downloaded) on a free port of 127.0.0.1; about 30 s on 2 cores.
"""

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import TINY_CLASSES
from tests.registry_helpers import cli_folder, register_champion

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def server(mlflow_store, tiny_keras_model, tmp_path):
    """The champion served; yields its base URL. The server runs in its own process group
    (it starts workers) so that the whole group is stopped afterwards."""
    model_uri = register_champion(mlflow_store, tiny_keras_model, "served")
    port = free_port()
    # No PYTHONPATH: the served model carries its own code (models-from-code).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"MLFLOW_TRACKING_URI": mlflow_store}
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"mlflow models serve exited {process.returncode}:\n{(tmp_path / 'serve.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no answer on {base}/ping in {START_TIMEOUT} s:\n{(tmp_path / 'serve.log').read_text()}")
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.mark.e2e
def test_served_champion_answers_like_the_predict_cli(server, mlflow_store, tiny_images, tmp_path):
    files = sorted(tiny_images.glob("*/*.png"))
    body = {"dataframe_split": {"columns": ["image"],
                                "data": [[base64.b64encode(f.read_bytes()).decode()] for f in files]}}
    status, served = post(f"{server}/invocations", body)
    assert status == 200, served
    served = served["predictions"]

    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store, "PYTHONPATH": str(ROOT)}
    cli = subprocess.run([sys.executable, "-m", "stages.predict", "--json", str(tiny_images)],
                         cwd=cli_folder(tmp_path / "cli", "served"), env=env, capture_output=True, text=True,
                         timeout=120)
    assert cli.returncode == 0, cli.stderr
    local = json.loads(cli.stdout)

    assert [r["path"] for r in local] == [str(f) for f in files]
    assert [r["label"] for r in served] == [r["label"] for r in local]
    for remote, here in zip(served, local, strict=True):
        assert set(remote) == {"label", *TINY_CLASSES}
        for name in TINY_CLASSES:
            assert remote[name] == pytest.approx(here[name], abs=1e-6)

    # Records with a path work too, and a non-image is a 400 that says what is wrong.
    status, by_path = post(f"{server}/invocations", {"dataframe_records": [{"path": str(files[0])}]})
    assert status == 200 and by_path["predictions"][0]["label"] == local[0]["label"]
    status, error = post(f"{server}/invocations", {"dataframe_split": {
        "columns": ["image"], "data": [[base64.b64encode(b"hello").decode()]]}})
    assert status == 400 and "row 0: not an image" in error["message"]
