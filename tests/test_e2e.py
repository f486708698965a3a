"""End to end: `dvc repro` in a temporary copy of the repository, on tiny generated data.

About two minutes on 2 cores (the gate test alone about one). Run the quick tests alone with
`pytest -m "not e2e"`.
"""

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.pipeline_repo import make_repo, run, set_params

# Small but learnable, for the gate: TINY's 30 images of 32x32 per class stay at chance, which
# cannot tell a harmful change from a good one. 300 per class at 64x64, no augmentation, 15
# epochs at a higher learning rate reach well above chance in seconds of fitting (measured:
# test accuracy 0.73, ROC AUC 0.79; learning_rate 1.0 on the same setup: 0.5 and 0.5).
LEARNABLE = {
    "data": {"synthetic": {"images_per_class": 300, "image_size": 64}},
    "images": {"size": [64, 64]},
    "augment": {"enabled": False},
    "model": {"filters": [16, 32, 64], "dense_units": 32},
    "train": {"epochs": 15, "batch_size": 32, "learning_rate": 0.003},
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return make_repo(tmp_path_factory.mktemp("e2e") / "repo")


def mlflow_client(repo: Path):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")


@pytest.mark.e2e
def test_dvc_repro_runs_every_stage_and_logs_to_mlflow(repo):
    run(["dvc", "repro"], repo)

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
    # The precision `train.mixed_precision: auto` chose on this machine is logged, and the saved
    # model computes in float32 whatever precision trained it.
    from stages.precision import policy_for_this_machine

    assert mlrun.data.params["dtype_policy"] == policy_for_this_machine("auto")
    keras = pytest.importorskip("keras")
    model = keras.models.load_model(repo / "models/model.keras")
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}
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
    set_params(repo, {"train": {"learning_rate": -1}})
    failed = run(["dvc", "repro"], repo, check=False)
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert "train: error: params.yaml: train.learning_rate = -1: Input should be greater than 0" in output
    assert "Traceback" not in output


@pytest.mark.e2e
def test_gate_fails_a_harmful_param_change(tmp_path):
    """A good run becomes the baseline; the same setup with train.learning_rate 1.0 fails the gate."""
    repo = make_repo(tmp_path / "repo", LEARNABLE)
    run(["dvc", "repro", "evaluate"], repo)  # register plays no part in the gate
    good = json.loads((repo / "reports/metrics.json").read_text())
    # The baseline must be worth defending, else "worse" could not be told from noise.
    assert good["accuracy"] >= 0.6 and good["roc_auc"] >= 0.65, good
    accepted = run(["python", "-m", "stages.gate", "--accept"], repo)
    assert "accepted reports/metrics.json as the new baseline baseline/metrics.json" in accepted.stdout
    same = run(["python", "-m", "stages.gate"], repo)
    assert "## Metric gate: PASS" in same.stdout

    set_params(repo, {"train": {"learning_rate": 1.0}})
    run(["dvc", "repro", "evaluate"], repo)  # the pipeline succeeds: a worse idea is not a broken pipeline
    harmed = run(["python", "-m", "stages.gate"], repo, check=False)
    assert harmed.returncode == 1, harmed.stdout + harmed.stderr
    assert "## Metric gate: FAIL" in harmed.stdout
    rows = {line.split("|")[1].strip(): line for line in harmed.stdout.splitlines() if line.startswith("| ")}
    for metric in ("accuracy", "roc_auc"):
        assert rows[metric].endswith("| **FAIL** |"), rows[metric]
    assert (repo / "reports/gate.md").read_text() in harmed.stdout
