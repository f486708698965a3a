"""The register stage against a real SQLite MLflow store: versions, aliases, tags, the
decision file, re-scoring a champion trained on other data, and two registrations at once."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages.params import parse_params
from tests.registry_helpers import always_first_class, log_candidate, workdir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(mlflow_store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_store)


def register(folder: Path, monkeypatch) -> dict:
    from stages import register

    monkeypatch.chdir(folder)
    decision = register.run(parse_params(yaml.safe_load((folder / "params.yaml").read_text())))
    assert json.loads((folder / "reports/register.json").read_text()) == decision
    return decision


def champion(client, name):
    from stages.register import current_champion

    found = current_champion(client, name)
    return None if found is None else int(found.version)


def test_promotes_first_then_only_better(store, mlflow_store, tiny_keras_model, tmp_path, monkeypatch):
    name = "rule"
    first = log_candidate(mlflow_store, tiny_keras_model, "digest-a", {"accuracy": 0.8})
    decision = register(workdir(tmp_path / "1", first, {"accuracy": 0.8}, model_name=name), monkeypatch)
    assert decision["promoted"] and decision["version"] == 1 and decision["champion"] is None
    assert champion(store, name) == 1

    version = store.get_model_version(name, "1")
    assert version.tags["test_accuracy"] == "0.8" and version.tags["data_digest"] == "digest-a"
    assert version.tags["git.commit"] == "0123456789abcdef" and version.tags["params_hash"] == "feedbeef0001"
    assert version.tags["register.promoted"] == "true" and "no champion yet" in version.tags["register.reason"]
    assert "accuracy=0.8000 on data digest-a" in version.description and "Promoted to champion" in version.description
    run_tags = store.get_run(first["run_id"]).data.tags
    assert run_tags["register.promoted"] == "true" and run_tags["register.version"] == "1"

    equal = log_candidate(mlflow_store, tiny_keras_model, "digest-a", {"accuracy": 0.8})
    decision = register(workdir(tmp_path / "2", equal, {"accuracy": 0.8}, model_name=name), monkeypatch)
    assert not decision["promoted"] and decision["version"] == 2 and decision["champion"] == 0.8
    assert decision["champion_version"] == 1 and not decision["champion_rescored"]
    assert champion(store, name) == 1  # a rejected model is registered, but no alias moves
    assert store.get_model_version(name, "2").tags["register.promoted"] == "false"
    assert store.get_run(equal["run_id"]).data.tags["register.promoted"] == "false"

    better = log_candidate(mlflow_store, tiny_keras_model, "digest-a", {"accuracy": 0.9})
    decision = register(workdir(tmp_path / "3", better, {"accuracy": 0.9}, model_name=name), monkeypatch)
    assert decision["promoted"] and decision["version"] == 3
    assert champion(store, name) == 3
    assert int(store.get_model_version_by_alias(name, "previous-champion").version) == 1

    # Rerunning the stage for the same run adds no version and moves nothing.
    decision = register(tmp_path / "3", monkeypatch)
    assert decision["version"] == 3 and "already the champion" in decision["reason"]
    assert len(store.search_model_versions(f"name = '{name}'")) == 3


def test_below_the_floor_is_not_promoted_even_without_a_champion(store, mlflow_store, tiny_keras_model, tmp_path,
                                                                 monkeypatch):
    candidate = log_candidate(mlflow_store, tiny_keras_model, "digest-a", {"accuracy": 0.6})
    decision = register(workdir(tmp_path, candidate, {"accuracy": 0.6}, model_name="floor", floor=0.7), monkeypatch)
    assert not decision["promoted"] and "below the floor" in decision["reason"]
    assert champion(store, "floor") is None
    assert store.get_model_version("floor", "1").tags["register.promoted"] == "false"


@pytest.mark.parametrize("flavour", ["pyfunc", "keras"])  # keras: how champions were logged before the pyfunc
def test_champion_from_other_data_is_rescored_on_this_test_split(store, mlflow_store, tiny_keras_model, tiny_images,
                                                                 tmp_path, monkeypatch, flavour):
    name = f"rescore-{flavour}"
    # The champion scored 0.99 on its own data, but always answers "cats": 0.5 on ours.
    weak = always_first_class(tiny_keras_model, tmp_path / "weak.keras")
    old = log_candidate(mlflow_store, weak, "digest-old", {"accuracy": 0.99}, flavour=flavour)
    register(workdir(tmp_path / "old", old, {"accuracy": 0.99}, model_name=name), monkeypatch)
    assert champion(store, name) == 1

    new = log_candidate(mlflow_store, tiny_keras_model, "digest-new", {"accuracy": 0.9})
    decision = register(workdir(tmp_path / "new", new, {"accuracy": 0.9}, tiny_images, model_name=name), monkeypatch)
    assert decision["champion_rescored"] and decision["champion"] == 0.5
    assert decision["promoted"] and champion(store, name) == 2
    assert store.get_model_version(name, "2").tags["register.champion_rescored"] == "true"


def test_champion_from_the_same_data_keeps_its_recorded_score(store, mlflow_store, tiny_keras_model, tiny_images,
                                                             tmp_path, monkeypatch):
    # The control for the test above: same digest, so no re-scoring, and 0.9 < 0.99.
    name = "same-data"
    weak = always_first_class(tiny_keras_model, tmp_path / "weak.keras")
    old = log_candidate(mlflow_store, weak, "digest-same", {"accuracy": 0.99})
    register(workdir(tmp_path / "old", old, {"accuracy": 0.99}, model_name=name), monkeypatch)
    new = log_candidate(mlflow_store, tiny_keras_model, "digest-same", {"accuracy": 0.9})
    decision = register(workdir(tmp_path / "new", new, {"accuracy": 0.9}, tiny_images, model_name=name), monkeypatch)
    assert not decision["champion_rescored"] and decision["champion"] == 0.99
    assert not decision["promoted"] and champion(store, name) == 1


def test_champion_for_other_classes_cannot_be_compared(store, mlflow_store, tiny_keras_model, tiny_images, tmp_path,
                                                      monkeypatch):
    from stages.errors import PipelineError

    name = "other-classes"
    old = log_candidate(mlflow_store, tiny_keras_model, "digest-old", {"accuracy": 0.8}, classes=["birds", "fish"])
    register(workdir(tmp_path / "old", old, {"accuracy": 0.8}, model_name=name), monkeypatch)
    new = log_candidate(mlflow_store, tiny_keras_model, "digest-new", {"accuracy": 0.9})
    with pytest.raises(PipelineError, match=r"predicts classes \['birds', 'fish'\], this run's data has"):
        register(workdir(tmp_path / "new", new, {"accuracy": 0.9}, tiny_images, model_name=name), monkeypatch)
    assert champion(store, name) == 1
    assert store.get_model_version(name, "2").tags["register.reason"].startswith("error: the champion")


def test_metrics_without_the_rule_metric_is_a_clear_error(tmp_path, monkeypatch):
    from stages.errors import PipelineError

    folder = workdir(tmp_path, {"run_id": "r", "model_uri": "models:/m-1", "classes": ["a", "b"]}, {"loss": 0.3})
    with pytest.raises(PipelineError, match=r"reports/metrics.json has no `accuracy` \(register.metric\)"):
        register(folder, monkeypatch)


def test_two_registrations_at_once_leave_the_better_champion(store, mlflow_store, tiny_keras_model, tmp_path):
    name = "race"
    folders = {}
    for label, score in (("worse", 0.8), ("better", 0.9)):
        info = log_candidate(mlflow_store, tiny_keras_model, "digest-a", {"accuracy": score})
        folders[label] = workdir(tmp_path / label, info, {"accuracy": score}, model_name=name)
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store, "PYTHONPATH": str(ROOT)}
    started = [subprocess.Popen([sys.executable, "-m", "stages.register"], cwd=folder, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for folder in folders.values()]
    results = [process.communicate(timeout=120) + (process.returncode,) for process in started]
    assert [code for _, _, code in results] == [0, 0], results

    decisions = {label: json.loads((folder / "reports/register.json").read_text()) for label, folder in folders.items()}
    better = decisions["better"]["version"]
    assert champion(store, name) == better and decisions["better"]["promoted"]
    assert sorted(d["version"] for d in decisions.values()) == [1, 2]
