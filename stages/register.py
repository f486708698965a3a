"""register: add the model to the MLflow registry; alias `champion` moves only to a better one.

The rule (`register.*` params, `decide` below): a candidate is promoted when its test score
clears the floor and, if there is a champion, beats it by more than zero, by at least
`min_improvement` and by at least `min_relative_improvement` of the champion's score. Both
are scored on the same test data: when the champion was trained on another manifest
(its `data_digest` differs), it is re-scored on this run's test split first.

Every candidate becomes a registered version, promoted or not: the registry is the full
history, a rejected version can still be inspected or promoted by hand, and only the aliases
say which model to use (`champion`; the one it displaced gets `previous-champion`). A rerun
of this stage for the same MLflow run reuses that run's version instead of adding another.
The decision, both scores and the reason go to reports/register.json and to tags on the run
and on the version.

Concurrent registrations (two pipelines, or `dvc exp run` jobs, finishing together): the
registry has no compare-and-set on aliases, so `promote` re-reads the champion right
before moving the alias and again after, and compares again whenever another registration
moved it in between. On a remote store it waits `SETTLE_SECONDS` before that last read, long
enough for a writer that read the old champion just before our write to have written too.
On the default SQLite store a file lock beside the database serialises registrations
entirely (SQLite also dislikes concurrent writers).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from stages import paths, tracking
from stages.errors import PipelineError, run_main
from stages.files import read_json, write_json
from stages.params import Params, RegisterParams, load_params

CHAMPION = "champion"
PREVIOUS = "previous-champion"
EPSILON = 1e-9  # float noise: 0.57 - 0.56 < 0.01 in binary floating point
SETTLE_SECONDS = 2.0  # remote stores: > the gap between another writer's last read and its write
MAX_ROUNDS = 10  # compare-and-move attempts before giving up under constant contention
LOCK_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(rule: RegisterParams, candidate: float, champion: float | None) -> Decision:
    """Promote the candidate? Pure: the promotion rule and its reason, in words."""
    metric, lower = rule.metric, rule.lower_is_better
    direction = "lower" if lower else "higher"
    if not math.isfinite(candidate):
        return Decision(False, f"candidate {metric}={candidate} is not a number: it cannot be ranked")
    if rule.floor is not None and (candidate > rule.floor if lower else candidate < rule.floor):
        bound = "above the maximum" if lower else "below the floor"
        return Decision(False, f"candidate {metric}={candidate:.4f} is {bound} register.floor={rule.floor:g} "
                               f"({direction} is better)")
    if champion is None:
        cleared = "" if rule.floor is None else f", clears register.floor={rule.floor:g}"
        return Decision(True, f"no champion yet; candidate {metric}={candidate:.4f}{cleared}")
    if not math.isfinite(champion):
        return Decision(True, f"champion {metric} is {champion} on this test data; candidate "
                              f"{metric}={candidate:.4f} is the first comparable score")
    gain = champion - candidate if lower else candidate - champion
    needed = max(rule.min_improvement, rule.min_relative_improvement * abs(champion))
    better = gain > EPSILON and gain >= needed - EPSILON
    scores = f"candidate {metric}={candidate:.4f} vs champion {champion:.4f} ({direction} is better)"
    if better:
        return Decision(True, f"{scores}: improves by {gain:.4f} >= required {needed:.4f}")
    why = "no improvement" if gain <= EPSILON else f"improves by {gain:.4f} < required {needed:.4f}"
    return Decision(False, f"{scores}: {why}")


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    champion_version: str | None  # the champion compared against (the one displaced when promoted)
    champion_score: float | None  # its score on the candidate's test data
    champion_rescored: bool  # True when that score was computed here, on this run's test split


# (score on this run's test data, whether it had to be re-scored) of a registered version.
ScoreOf = Callable[[ModelVersion], tuple[float | None, bool]]


def current_champion(client: MlflowClient, name: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:  # no alias yet (or no registered model)
        return None


def _version(model_version: ModelVersion | None) -> str | None:
    return None if model_version is None else str(model_version.version)


def promote(client: MlflowClient, name: str, version: str, candidate: float, rule: RegisterParams,
            score_of: ScoreOf, settle: float = 0.0, max_rounds: int = MAX_ROUNDS) -> Outcome:
    """Compare with the current champion and move the alias if the rule says so, safely
    against another registration doing the same at the same time (module docstring)."""
    version = str(version)
    for _ in range(max_rounds):
        champion = current_champion(client, name)
        if _version(champion) == version:  # this stage ran before for the same run
            return Outcome(Decision(True, f"version {version} is already the {CHAMPION}"), None, None, False)
        score, rescored = score_of(champion) if champion is not None else (None, False)
        decision = decide(rule, candidate, score)
        outcome = Outcome(decision, _version(champion), score, rescored)
        if not decision.promote:
            return outcome
        # Scoring may have taken seconds (re-scoring loads a model): is it still the champion?
        if _version(current_champion(client, name)) != _version(champion):
            continue
        client.set_registered_model_alias(name, CHAMPION, version)
        if champion is not None:
            client.set_registered_model_alias(name, PREVIOUS, champion.version)
        time.sleep(settle)
        if _version(current_champion(client, name)) == version:
            return outcome
        # Another registration moved the alias after we did: compare with its model next round.
    raise PipelineError(f"the {CHAMPION} alias of {name} kept moving under concurrent registrations "
                        f"({max_rounds} rounds); rerun `dvc repro -f register`")


@contextmanager
def store_lock(uri: str):
    """Serialise registrations on a SQLite store (file lock beside the database); a server
    serialises nothing, so `promote`'s re-checks carry the weight there."""
    from filelock import FileLock, Timeout

    lock = FileLock(f"{uri.removeprefix('sqlite:///')}.register.lock", timeout=LOCK_TIMEOUT_SECONDS)
    try:
        with lock:
            yield
    except Timeout:
        raise PipelineError(f"another registration has held {lock.lock_file} for {LOCK_TIMEOUT_SECONDS} s; "
                            "is one stuck? If none is running, delete the lock file") from None


def held_out_split(classes: list[str]) -> tuple[list[str], list[int]]:
    """This run's test images and their class indices (from the validated manifest)."""
    from stages.manifest import read_manifest

    rows = read_manifest(paths.VALIDATED, produced_by="validate")
    rows = rows[rows["split"] == "test"]
    if rows.empty:
        raise PipelineError(f"{paths.VALIDATED} has no test rows to re-score the champion on; rerun `dvc repro`")
    unknown = sorted(set(rows["label"]) - set(classes))
    if unknown:
        raise PipelineError(f"{paths.VALIDATED} has labels {unknown} unknown to the trained model; rerun `dvc repro`")
    return [str(paths.RAW_DIR / p) for p in rows["path"]], [classes.index(label) for label in rows["label"]]


def rescore(model_uri: str, files: list[str], y_true: list[int], classes: list[str], metric: str) -> float:
    import numpy as np
    import pandas as pd

    from stages.evaluate import compute_metrics
    from stages.serving import load_image_predictor

    out = load_image_predictor(model_uri)(pd.DataFrame({"path": files}))
    theirs = [c for c in out.columns if c != "label"]
    if sorted(theirs) != sorted(classes):
        raise PipelineError(f"the champion {model_uri} predicts classes {theirs}, this run's data has {classes}: "
                            "they cannot be compared on the same test data; use another register.model_name")
    return compute_metrics(np.asarray(y_true), out[classes].to_numpy(dtype=float))[metric]


def champion_scorer(client: MlflowClient, name: str, metric: str, digest: str | None,
                    classes: list[str]) -> ScoreOf:
    """Score a registered version on this run's test data: its recorded test score when it
    was trained on the same manifest, else re-scored here (at most once per version)."""
    cache: dict[str, tuple[float | None, bool]] = {}

    def score_of(model_version: ModelVersion) -> tuple[float | None, bool]:
        if model_version.version in cache:
            return cache[model_version.version]
        run = None
        if model_version.run_id:
            try:
                run = client.get_run(model_version.run_id)
            except MlflowException:  # the run was deleted; the version stays usable
                pass
        run_tags = run.data.tags if run else {}
        their_digest = model_version.tags.get("data_digest") or run_tags.get("data_digest")
        recorded = model_version.tags.get(f"test_{metric}") or (run.data.metrics.get(f"test_{metric}") if run else None)
        if digest and their_digest == digest and recorded is not None:
            result = (float(recorded), False)
        else:
            print(f"register: champion v{model_version.version} was trained on data {their_digest or 'unknown'}, "
                  f"not {digest}: re-scoring it on this run's test split")
            files, y_true = held_out_split(classes)
            uri = f"models:/{name}/{model_version.version}"
            result = (rescore(uri, files, y_true, classes, metric), True)
        cache[model_version.version] = result
        return result

    return score_of


def register_version(client: MlflowClient, name: str, info: dict) -> ModelVersion:
    """The registered version of this run's model: the existing one on a rerun, else a new one."""
    existing = client.search_model_versions(f"name = '{name}' and run_id = '{info['run_id']}'")
    same_model = [v for v in existing if v.source == info["model_uri"]]
    if same_model:
        return max(same_model, key=lambda v: int(v.version))
    return mlflow.register_model(info["model_uri"], name)


def version_tags(scores: dict, run_tags: dict[str, str]) -> dict[str, str]:
    """What identifies the model: its test metrics, data, code and params."""
    tags = {f"test_{k}": str(v) for k, v in scores.items()}
    tags.update({key: run_tags[key] for key in ("data_digest", "git.commit", "git.dirty", "params_hash")
                 if key in run_tags})
    return tags


def decision_tags(decision: dict) -> dict[str, str]:
    keys = ("promoted", "reason", "metric", "candidate", "champion", "champion_version", "champion_rescored")

    def text(value: object) -> str:
        return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    return {f"register.{k}": text(decision[k]) for k in keys}


def description(decision: dict, run_tags: dict[str, str]) -> str:
    commit = run_tags.get("git.commit", "unknown")[:12]
    return (f"test {decision['metric']}={decision['candidate']:.4f} on data {run_tags.get('data_digest', 'unknown')}, "
            f"git {commit}, params {run_tags.get('params_hash', 'unknown')}. "
            f"{'Promoted to' if decision['promoted'] else 'Not promoted to'} {CHAMPION}: {decision['reason']}")


def run(params: Params) -> dict:
    rule = params.registry
    name, metric = rule.model_name, rule.metric
    info = tracking.read_run_info()
    scores = read_json(paths.METRICS, produced_by="evaluate")
    if metric not in scores:
        raise PipelineError(f"{paths.METRICS} has no `{metric}` (register.metric): rerun `dvc repro -f evaluate`")
    candidate = float(scores[metric])

    with tracking.resume_run() as active:
        uri = tracking.tracking_uri()
        client = MlflowClient()
        run_tags = client.get_run(active.info.run_id).data.tags
        digest = run_tags.get("data_digest")
        local = uri.startswith("sqlite:///")
        with store_lock(uri) if local else nullcontext():
            version = register_version(client, name, info)
            for key, value in version_tags(scores, run_tags).items():
                client.set_model_version_tag(name, version.version, key, value)
            try:
                outcome = promote(client, name, version.version, candidate, rule,
                                  champion_scorer(client, name, metric, digest, info["classes"]),
                                  settle=0.0 if local else SETTLE_SECONDS)
            except PipelineError as error:  # the version exists: say why it has no decision
                client.set_model_version_tag(name, version.version, "register.promoted", "false")
                client.set_model_version_tag(name, version.version, "register.reason", f"error: {error}")
                raise
            decision = {
                "model_name": name,
                "version": int(version.version),
                "metric": metric,
                "lower_is_better": rule.lower_is_better,
                "floor": rule.floor,
                "min_improvement": rule.min_improvement,
                "min_relative_improvement": rule.min_relative_improvement,
                "candidate": candidate,
                "data_digest": digest,
                "champion_version": int(outcome.champion_version) if outcome.champion_version else None,
                "champion": outcome.champion_score,
                "champion_rescored": outcome.champion_rescored,
                "promoted": outcome.decision.promote,
                "reason": outcome.decision.reason,
            }
            for key, value in decision_tags(decision).items():
                client.set_model_version_tag(name, version.version, key, value)
            client.update_model_version(name, version.version, description=description(decision, run_tags))
        mlflow.set_tags({**decision_tags(decision), "register.version": version.version})

    write_json(paths.REGISTER_DECISION, decision)
    verdict = f"PROMOTED to {CHAMPION}" if decision["promoted"] else f"not promoted; {CHAMPION} unchanged"
    print(f"register: {name} v{version.version}: {verdict}; {decision['reason']}")
    return decision


def main() -> None:
    run_main("register", lambda: run(load_params()))


if __name__ == "__main__":
    main()
