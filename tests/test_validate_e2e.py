"""End to end on a dirty image folder: `dvc repro` quarantines what cannot be used,
normalises what can, trains and evaluates on the clean rows, and reports all of it to
DVC metrics and to the MLflow run."""

import json

import pandas as pd
import pytest

from stages.manifest import SPLITS
from tests.helpers import DIRTY, KEEP_LABELS, LEAKS, dirty_tree
from tests.pipeline_repo import make_repo, run

pytestmark = pytest.mark.e2e


def test_pipeline_trains_on_the_clean_rows_of_a_dirty_folder(tmp_path):
    source = dirty_tree(tmp_path / "dirty", clean_per_class=30)
    repo = make_repo(tmp_path / "repo", {"data": {"source": "path", "path": str(source), "class_map": KEEP_LABELS}})
    run(["dvc", "repro"], repo)

    # fetch splits the folder itself (seeded): a copy is a leak only when it and its
    # original land in different splits, and then the one in the later split is flagged.
    split = pd.read_csv(repo / "data/manifest.csv").set_index("path")["split"]
    order = {name: i for i, name in enumerate(SPLITS)}
    expected = {name: outcome for name, outcome in DIRTY.items() if name not in LEAKS}
    for copy, original in LEAKS.items():
        if split[copy] != split[original]:
            later = max(copy, original, key=lambda name: order[split[name]])
            expected[later] = DIRTY[copy]
    assert "cats/cat_000.jpg" in expected or "cats/copy_of_cat_000.jpg" in expected, "no exact leak to find"

    flagged = pd.read_csv(repo / "reports/quarantine.csv").set_index("path")
    wanted = {name: outcome for name, outcome in expected.items() if outcome[0] in ("quarantined", "reported")}
    assert {name: (row["action"], row["reason"]) for name, row in flagged.iterrows()} == wanted

    validated = pd.read_csv(repo / "data/validated.csv").set_index("path")
    quarantined = {name for name, (kind, _) in wanted.items() if kind == "quarantined"}
    assert not quarantined & set(validated.index)
    assert len(validated) == len(split) - len(quarantined)
    for name, (kind, _) in expected.items():
        if kind == "normalized":
            assert validated.loc[name, "file"] == f"data/normalized/{name}.png"
            assert (repo / validated.loc[name, "file"]).is_file()

    # train and evaluate ran on exactly the clean rows.
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert metrics["n_test"] == (validated["split"] == "test").sum()
    assert len(pd.read_csv(repo / "reports/plots/history.csv")) == 1

    report = json.loads((repo / "reports/validation.json").read_text())
    assert report["success"] and report["quarantined"] == len(quarantined) and report["reasons"]["empty"] == 1
    shown = run(["dvc", "exp", "show", "--csv", "--no-pager"], repo).stdout.splitlines()
    header = shown[0].split(",")
    assert {"quarantined", "clean", "reasons.empty", "per_class_split.cats.test"} <= set(header)

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    [mlrun] = client.search_runs([client.get_experiment_by_name("image-classifier").experiment_id])
    logged = mlrun.data.metrics
    assert logged["data_quarantined"] == len(quarantined) and logged["data_quarantined_empty"] == 1
    assert logged["data_clean"] == len(validated) and logged["data_normalized"] == report["normalized"]
    artifacts = {f.path for f in client.list_artifacts(mlrun.info.run_id, "reports")}
    assert {"reports/validation.json", "reports/quarantine.csv"} <= artifacts
    assert "data_docs/index.html" in {f.path for f in client.list_artifacts(mlrun.info.run_id, "data_docs")}

    again = run(["dvc", "repro"], repo)
    assert "Data and pipelines are up to date" in again.stdout


def test_on_corrupt_fail_stops_the_pipeline_naming_the_files(tmp_path):
    source = dirty_tree(tmp_path / "dirty", clean_per_class=12)
    repo = make_repo(tmp_path / "repo", {"data": {"source": "path", "path": str(source), "class_map": KEEP_LABELS},
                                          "validate": {"on_corrupt": "fail"}})
    failed = run(["dvc", "repro"], repo, check=False)
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert "validate: error: " in output and "Traceback" not in output
    for name in ("cats/empty.jpg", "cats/truncated.jpg", "dogs/text.jpg", "dogs/tiny.jpg", "cats/bomb.png"):
        assert f"data/raw/{name}: " in output
    assert not (repo / "models/model.keras").exists()
