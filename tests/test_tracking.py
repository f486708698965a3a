from pathlib import Path

import pytest

from stages.tracking import local_artifact_root, params_hash, project_root, tracking_uri


@pytest.mark.parametrize(
    "cwd, root",
    [
        ("/work/repo", "/work/repo"),
        ("/work/repo/.dvc/tmp/exps/tmpab12", "/work/repo"),  # dvc exp run --temp
        ("/work/repo/.dvc/tmp/exps/run/abc/def", "/work/repo"),  # queued experiment
    ],
)
def test_project_root_leaves_dvc_temp_copies(cwd, root):
    assert project_root(Path(cwd)) == Path(root)


def test_tracking_uri_defaults_to_sqlite_at_the_root(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(Path("/work/repo")) == "sqlite:////work/repo/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri(Path("/work/repo")) == "http://127.0.0.1:5000"


def test_artifacts_sit_beside_a_sqlite_store():
    assert local_artifact_root("sqlite:////work/repo/mlflow.db") == "file:///work/repo/mlartifacts"
    assert local_artifact_root("http://127.0.0.1:5000") is None


def test_params_hash_depends_on_values():
    assert params_hash({"a": 1}) == params_hash({"a": 1}) != params_hash({"a": 2})


def test_describe_changes_lists_changed_params_only():
    from stages.tracking import describe_changes

    committed = {"train.epochs": 10, "train.learning_rate": 0.001, "seed": 42}
    assert describe_changes(committed, committed) == ""
    assert describe_changes({**committed, "train.epochs": 2}, committed) == "train.epochs=2"
    many = {k: v for k, v in committed.items()} | {"train.epochs": 1, "seed": 1, "train.learning_rate": 1.0}
    assert describe_changes(many, committed, limit=2) == "seed=1 train.epochs=1 +1 more"
