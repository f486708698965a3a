"""MLflow lineage end to end: a real `mlflow server`, and queued DVC experiments.

Each pipeline run must be findable and comparable: params, test metrics, figures, the
model, the dataset input and the lineage tags, whichever store it logs into.
"""

import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.pipeline_repo import make_repo, run

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real tracking server on 127.0.0.1 with its own SQLite store and artifact folder."""
    root = tmp_path_factory.mktemp("server")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "artifacts")],
        stdout=open(root / "server.log", "w"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail(f"mlflow server did not start:\n{(root / 'server.log').read_text()[-2000:]}")
    yield url
    server.terminate()
    server.wait(timeout=30)


def api(url: str, method: str, endpoint: str, **body):
    call = requests.get if method == "GET" else requests.post
    response = call(f"{url}/api/2.0/mlflow/{endpoint}", **({"params": body} if method == "GET" else {"json": body}),
                    timeout=30)
    response.raise_for_status()
    return response.json()


def test_two_runs_against_a_tracking_server_are_comparable(tmp_path, mlflow_server):
    repo = make_repo(tmp_path / "repo")
    env = {"MLFLOW_TRACKING_URI": mlflow_server}
    run(["dvc", "repro"], repo, env=env)
    run(["dvc", "exp", "run", "-S", "train.learning_rate=0.002", "-n", "faster-lr"], repo, env=env)
    assert not (repo / "mlflow.db").exists()  # nothing went to the embedded store

    experiment = api(mlflow_server, "GET", "experiments/get-by-name", experiment_name="image-classifier")
    runs = api(mlflow_server, "POST", "runs/search", experiment_ids=[experiment["experiment"]["experiment_id"]])["runs"]
    assert len(runs) == 2
    by_lr = {}
    for found in runs:
        params = {p["key"]: p["value"] for p in found["data"]["params"]}
        by_lr[params["train.learning_rate"]] = found
        metrics = {m["key"] for m in found["data"]["metrics"]}
        assert {"test_accuracy", "test_roc_auc", "test_loss", "train_loss", "val_accuracy"} <= metrics
        tags = {t["key"]: t["value"] for t in found["data"]["tags"]}
        assert {"git.commit", "git.dirty", "git.branch", "params_hash", "data_digest", "pipeline_version"} <= set(tags)

        run_id = found["info"]["run_id"]
        plots = api(mlflow_server, "GET", "artifacts/list", run_id=run_id, path="plots")["files"]
        assert {f["path"] for f in plots} == {"plots/training_curves.png", "plots/confusion_matrix.png",
                                              "plots/roc_pr_curves.png", "plots/misclassified.png",
                                              "plots/augmentation.png"}
        listed = api(mlflow_server, "GET", "artifacts/list", run_id=run_id, path="reports")["files"]
        reports = {f["path"] for f in listed}
        assert {"reports/metrics.json", "reports/validation.json"} <= reports
        assert found["outputs"]["model_outputs"], "the model is logged as the run's output"
        [data_input] = found["inputs"]["dataset_inputs"]
        assert data_input["dataset"]["digest"] == tags["data_digest"]

    assert set(by_lr) == {"0.001", "0.002"}
    exp_tags = {t["key"]: t["value"] for t in by_lr["0.002"]["data"]["tags"]}
    assert exp_tags["dvc.exp_name"] == "faster-lr" and by_lr["0.002"]["info"]["run_name"] == "faster-lr"
    assert by_lr["0.002"]["data"]["tags"] != by_lr["0.001"]["data"]["tags"]


def test_unreachable_server_fails_train_at_its_start(tmp_path):
    repo = make_repo(tmp_path / "repo")
    started = time.monotonic()
    failed = run(["dvc", "repro"], repo, env={"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}, check=False)
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert "train: error: cannot reach the MLflow tracking store http://127.0.0.1:" in output
    assert "Traceback" not in output and "Epoch 1/" not in output
    assert time.monotonic() - started < 120


def test_queued_experiments_log_into_the_default_store(tmp_path):
    repo = make_repo(tmp_path / "repo")
    run(["dvc", "exp", "run", "--queue", "-S", "train.epochs=2", "-n", "queued-a"], repo)
    run(["dvc", "exp", "run", "--queue", "-S", "train.learning_rate=0.002", "-n", "queued-b"], repo)
    run(["dvc", "exp", "run", "--run-all"], repo)  # runs the queue in temporary copies under .dvc/tmp/exps

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("image-classifier").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["queued-a", "queued-b"]
    assert not list((repo / ".dvc" / "tmp").rglob("mlflow.db"))
