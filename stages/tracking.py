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
import yaml
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
        if uri.startswith(("http://", "https://")):
            # A quick probe: MLflow's own client retries with backoff for minutes.
            import requests

            requests.get(f"{uri.rstrip('/')}/health", timeout=10).raise_for_status()
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


def _git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def git_tags(root: Path) -> dict[str, str]:
    """Commit, dirty flag and branch of the repository, when it is a git checkout."""
    commit = _git(root, "rev-parse", "HEAD")
    if not commit:
        return {}
    return {
        "mlflow.source.git.commit": commit,
        "git.commit": commit,
        "git.dirty": str(bool(_git(root, "status", "--porcelain", "--untracked-files=no"))).lower(),
        "git.branch": _git(root, "rev-parse", "--abbrev-ref", "HEAD"),
    }


def dvc_tags() -> dict[str, str]:
    """The DVC experiment's name and baseline commit, set by `dvc exp run`."""
    names = {"DVC_EXP_NAME": "dvc.exp_name", "DVC_EXP_BASELINE_REV": "dvc.baseline_rev"}
    return {tag: os.environ[var] for var, tag in names.items() if os.environ.get(var)}


def describe_changes(current: dict[str, object], committed: dict[str, object], limit: int = 3) -> str:
    """`key=value` for each param that differs from the committed params.yaml."""
    changed = [f"{k}={current[k]}" for k in sorted(current) if committed.get(k, object()) != current[k]]
    if len(changed) > limit:
        changed = changed[:limit] + [f"+{len(changed) - limit} more"]
    return " ".join(changed)


def run_name(root: Path, flat_params: dict[str, object]) -> str:
    """The DVC experiment name under `dvc exp run`; else short commit + params changed since it."""
    if os.environ.get("DVC_EXP_NAME"):
        return os.environ["DVC_EXP_NAME"]
    commit = _git(root, "rev-parse", "--short", "HEAD") or "no-git"
    committed_yaml = _git(root, "show", f"HEAD:{paths.PARAMS.as_posix()}")
    if not committed_yaml:
        return commit
    from stages.params import flatten, parse_params

    try:
        committed = flatten(parse_params(yaml.safe_load(committed_yaml)))
    except PipelineError:  # the committed params predate a schema change
        return commit
    return f"{commit} {describe_changes(flat_params, committed)}".strip()


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
