"""MLflow helpers shared by train, evaluate and register.

Embedded default: a SQLite store `mlflow.db` at the repository root with artifacts in
`mlartifacts/` beside it, so no server is needed (`mlflow ui --backend-store-uri
sqlite:///mlflow.db` opens it). `MLFLOW_TRACKING_URI` switches to any other store, e.g. a
tracking server.

One pipeline run = one MLflow run: train starts it and records its id in
models/mlflow_run.json; evaluate and register log into the same run.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from stages import paths
from stages.errors import PipelineError
from stages.files import read_json
from stages.paths import project_root


def tracking_uri(root: Path | None = None) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root or project_root()) / 'mlflow.db'}"


def connect() -> str:
    """Point MLflow at the store and check it answers, before any long work starts."""
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        mlflow.search_experiments(max_results=1)
    except Exception as error:  # any failure here means the store is unusable
        raise PipelineError(
            f"cannot reach the MLflow tracking store {uri}: {type(error).__name__}: {str(error)[:300]}\n"
            "Start the server, fix MLFLOW_TRACKING_URI, or unset it to use the embedded SQLite store."
        ) from None
    return uri


def local_artifact_root(uri: str) -> str | None:
    """`mlartifacts/` beside a SQLite store's file; None for a server, which decides itself."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()


def ensure_experiment(name: str) -> str:
    """The experiment's id, creating it (artifacts beside a SQLite store) if needed."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return mlflow.create_experiment(name, artifact_location=local_artifact_root(mlflow.get_tracking_uri()))
    except MlflowException:  # created meanwhile by a concurrent run
        return mlflow.get_experiment_by_name(name).experiment_id


def git_tags(root: Path) -> dict[str, str]:
    """Commit, dirty flag and branch of the repository, when it is a git checkout."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {
        "mlflow.source.git.commit": commit,
        "git.commit": commit,
        "git.dirty": str(dirty).lower(),
        "git.branch": git("rev-parse", "--abbrev-ref", "HEAD"),
    }


def params_hash(flat_params: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(flat_params, sort_keys=True).encode()).hexdigest()[:12]


def read_run_info() -> dict:
    return read_json(paths.RUN_INFO, produced_by="train")


def resume_run():
    """Reopen the pipeline run that train started (a context manager, like start_run)."""
    connect()
    run_id = read_run_info()["run_id"]
    try:
        return mlflow.start_run(run_id=run_id)
    except MlflowException as error:
        raise PipelineError(
            f"the MLflow run {run_id} recorded in {paths.RUN_INFO} is not in {tracking_uri()} "
            f"({error.message[:200]}); was MLFLOW_TRACKING_URI changed since train? "
            f"Rerun with `dvc repro -f train` to start a new run."
        ) from None
