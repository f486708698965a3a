"""End to end: `dvc repro` in a temporary copy of the repository, on tiny generated data.

About a minute on 2 cores. Run the quick tests alone with `pytest -m "not e2e"`.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "data": {"synthetic": {"images_per_class": 30, "image_size": 32}},
    "images": {"size": [32, 32]},
    "model": {"filters": [8, 16, 32], "dense_units": 16},
    "train": {"epochs": 1, "batch_size": 16},
    "register": {"model_name": "e2e-model", "floor": None},  # 1 epoch on 60 images: any score goes
}


def merge(base: dict, override: dict) -> dict:
    return {k: merge(base[k], v) if isinstance(v, dict) else v for k, v in override.items()} | {
        k: v for k, v in base.items() if k not in override
    }


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # this venv's python and dvc
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A git + DVC repo holding the project's files (as in the working tree) and tiny params."""
    repo = tmp_path_factory.mktemp("e2e") / "repo"
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for name in listed:
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "e2e@example.com"],
                ["git", "config", "user.name", "e2e"], ["git", "add", "-A"], ["git", "commit", "-qm", "e2e"]):
        run(cmd, repo)
    return repo


def mlflow_client(repo: Path):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")


@pytest.mark.e2e
def test_dvc_repro_runs_every_stage_and_logs_to_mlflow(repo):
    run(["dvc", "repro"], repo)

    import json

    import pandas as pd

    manifest = pd.read_csv(repo / "data/manifest.csv")
    assert len(manifest) == 60 and set(manifest["split"]) == {"train", "val", "test"}
    assert (repo / "models/model.keras").stat().st_size > 0
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert {"accuracy", "precision", "recall", "f1", "roc_auc", "loss"} <= set(metrics)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert len(pd.read_csv(repo / "reports/plots/confusion.csv")) == metrics["n_test"]
    decision = json.loads((repo / "reports/register.json").read_text())
    assert decision["promoted"] is True and decision["version"] == 1

    client = mlflow_client(repo)
    experiment = client.get_experiment_by_name("image-classifier")
    assert experiment.artifact_location.startswith((repo / "mlartifacts").as_uri())
    [mlrun] = client.search_runs([experiment.experiment_id])
    assert mlrun.data.params["train.epochs"] == "1"
    assert mlrun.data.params["images.size"] == "[32, 32]"
    assert mlrun.data.metrics["test_accuracy"] == pytest.approx(metrics["accuracy"])
    assert {"train_loss", "val_loss", "val_accuracy"} <= set(mlrun.data.metrics)
    assert mlrun.data.tags["git.commit"] == run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    assert mlrun.data.tags["register.promoted"] == "true"
    champion = client.get_model_version_by_alias("e2e-model", "champion")
    assert champion.run_id == mlrun.info.run_id
    assert champion.tags["data_digest"] == mlrun.data.tags["data_digest"]
    assert champion.tags["register.promoted"] == "true"
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    served = mlflow.models.get_model_info("models:/e2e-model@champion")
    assert served.flavors["python_function"]["config"] == {"classes": ["cats", "dogs"], "image_size": [32, 32]}

    # Nothing changed: nothing reruns.
    again = run(["dvc", "repro"], repo)
    assert "Data and pipelines are up to date" in again.stdout
    assert "up to date" in run(["dvc", "status"], repo).stdout


@pytest.mark.e2e
def test_dvc_exp_run_changes_a_param_and_logs_a_second_run(repo):
    run(["dvc", "exp", "run", "-S", "train.epochs=2", "-n", "two-epochs"], repo)
    shown = run(["dvc", "exp", "show", "--csv", "--no-pager"], repo).stdout
    assert "two-epochs" in shown and "train.epochs" in shown.splitlines()[0]
    assert "accuracy" in shown.splitlines()[0]

    client = mlflow_client(repo)
    runs = client.search_runs([client.get_experiment_by_name("image-classifier").experiment_id])
    assert sorted(r.data.params["train.epochs"] for r in runs) == ["1", "2"]
    [exp_run] = [r for r in runs if r.data.params["train.epochs"] == "2"]
    assert exp_run.data.tags["dvc.exp_name"] == "two-epochs"
    assert exp_run.info.run_name == "two-epochs"
    assert len(client.search_model_versions("name='e2e-model'")) == 2


@pytest.mark.e2e
def test_bad_param_stops_the_stage_with_one_clear_line(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["learning_rate"] = -1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    failed = run(["dvc", "repro"], repo, check=False)
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert "train: error: params.yaml: train.learning_rate = -1: Input should be greater than 0" in output
    assert "Traceback" not in output
