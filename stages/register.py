"""register: add the model to the MLflow registry; alias `champion` moves only to a better one.

Every pipeline run's model becomes a new version of `register.model_name`, tagged with its
test metric. The alias `champion` moves to it when there is no champion yet or when it
beats the champion on `register.metric` (lower is better for `loss`, higher otherwise).
The decision and its reason go to reports/register.json and to tags on the run.
"""

from __future__ import annotations

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from stages import paths, tracking
from stages.errors import run_main
from stages.files import read_json, write_json
from stages.params import Params, load_params

CHAMPION = "champion"


def decide(metric: str, candidate: float, champion: float | None) -> tuple[bool, str]:
    """Promote the candidate? Pure: the promotion rule and its reason."""
    if champion is None:
        return True, f"no champion yet: candidate {metric}={candidate:.4f} becomes champion"
    better = candidate < champion if metric == "loss" else candidate > champion
    verb = "beats" if better else "does not beat"
    return better, f"candidate {metric}={candidate:.4f} {verb} champion {metric}={champion:.4f}"


def champion_score(client: MlflowClient, name: str, metric: str) -> tuple[str | None, float | None]:
    """(version, score) of the current champion, or (None, None) when there is none."""
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None, None
    score = version.tags.get(f"test_{metric}")
    if score is None and version.run_id:
        score = client.get_run(version.run_id).data.metrics.get(f"test_{metric}")
    return version.version, (float(score) if score is not None else None)


def run(params: Params) -> dict:
    name, metric = params.registry.model_name, params.registry.metric
    info = tracking.read_run_info()
    candidate = float(read_json(paths.METRICS, produced_by="evaluate")[metric])

    with tracking.resume_run():
        client = MlflowClient()
        version = mlflow.register_model(info["model_uri"], name)
        client.set_model_version_tag(name, version.version, f"test_{metric}", str(candidate))
        previous_version, previous_score = champion_score(client, name, metric)
        promote, reason = decide(metric, candidate, previous_score)
        if promote:
            client.set_registered_model_alias(name, CHAMPION, version.version)
        mlflow.set_tags({"register.promoted": str(promote).lower(), "register.reason": reason,
                         "register.version": version.version})

    decision = {
        "model_name": name,
        "version": int(version.version),
        "metric": metric,
        "candidate": candidate,
        "champion_version": int(previous_version) if previous_version else None,
        "champion": previous_score,
        "promoted": promote,
        "reason": reason,
    }
    write_json(paths.REGISTER_DECISION, decision)
    print(f"register: {name} v{version.version}: {'PROMOTED to' if promote else 'not'} {CHAMPION}; {reason}")
    return decision


def main() -> None:
    run_main("register", lambda: run(load_params()))


if __name__ == "__main__":
    main()
