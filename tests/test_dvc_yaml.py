"""dvc.yaml, params.yaml and stages/paths.py must tell the same story."""

from pathlib import Path

import yaml

from stages import paths
from stages.params import flatten, load_params

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())


def _names(entries):
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries}


def test_stages_in_order():
    assert list(DVC["stages"]) == ["fetch", "validate", "train", "evaluate", "register"]
    for name, stage in DVC["stages"].items():
        assert stage["cmd"] == f"python -m stages.{name}"
        assert f"stages/{name}.py" in stage["deps"]


def test_outputs_are_the_paths_the_code_writes():
    declared = set()
    for stage in DVC["stages"].values():
        declared |= _names(stage.get("outs", [])) | _names(stage.get("metrics", []))
    written = {paths.RAW_DIR, paths.MANIFEST, paths.FETCH_REPORT, paths.VALIDATED, paths.NORMALIZED_DIR,
               paths.VALIDATION_REPORT, paths.QUARANTINE, paths.DATA_DOCS, paths.MODEL, paths.RUN_INFO, paths.HISTORY,
               paths.AUGMENTATION_PREVIEW, paths.METRICS, paths.CONFUSION, paths.ROC, paths.REGISTER_DECISION}
    assert declared == {p.as_posix() for p in written}
    assert _names(DVC["plots"]) == {p.as_posix() for p in (paths.HISTORY, paths.CONFUSION, paths.ROC,
                                                            paths.AUGMENTATION_PREVIEW)}


def test_stage_params_exist_in_params_yaml():
    flat = flatten(load_params(ROOT / "params.yaml"))
    for stage in DVC["stages"].values():
        for key in stage.get("params", []):
            assert key in flat or any(k.startswith(f"{key}.") for k in flat), key


def test_every_stage_module_is_a_dep_somewhere():
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "stages").glob("*.py") if p.name != "__init__.py"}
    deps = set().union(*(set(s["deps"]) for s in DVC["stages"].values()))
    shared = {"stages/params.py", "stages/paths.py", "stages/errors.py", "stages/files.py", "stages/tracking.py"}
    tools = {"stages/predict.py", "stages/gate.py"}  # console scripts (pyproject [project.scripts]): no stage runs them
    assert modules - deps <= shared | tools


def test_validate_lists_every_param_that_changes_its_outputs():
    """Exact keys: every validate.* param but workers (speed only), so each change reruns validate."""
    listed = set(DVC["stages"]["validate"]["params"])
    keys = {k for k in flatten(load_params(ROOT / "params.yaml")) if k.startswith("validate.")}
    assert listed == (keys - {"validate.workers"}) | {"data.classes"}


def test_metrics_files_are_not_git_ignored():
    """cache:false metrics are committed with dvc.lock; `dvc exp show` reads them from git."""
    import subprocess

    for stage in DVC["stages"].values():
        for name in _names(stage.get("metrics", [])):
            ignored = subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT).returncode == 0
            assert not ignored, f"{name} is git-ignored"


def test_gate_is_not_a_dvc_stage():
    # A failing stage would fail `dvc repro` / `dvc exp run` for every worse idea; CI runs the gate after.
    assert "gate" not in DVC["stages"]
    assert not any("stages.gate" in s["cmd"] for s in DVC["stages"].values())
