"""End to end from a download: `dvc repro` on a cats_and_dogs_filtered-style archive served on
127.0.0.1, then a forced fetch that must come from the download cache (DVC leaves it alone).

About a minute on 2 cores; `pytest -m "not e2e"` skips it.
"""

import json

import pandas as pd
import pytest

from tests.fetch_kit import ArchiveServer, cats_and_dogs_filtered, sha256, write_zip
from tests.pipeline_repo import make_repo, run

TINY = {
    "images": {"size": [32, 32]},
    "model": {"filters": [8, 16], "dense_units": 8},
    "train": {"epochs": 1, "batch_size": 8},
    "register": {"model_name": "e2e-download"},
}


@pytest.fixture
def server():
    server = ArchiveServer()
    yield server
    server.close()


@pytest.mark.e2e
def test_pipeline_trains_on_a_downloaded_archive_and_refetches_from_the_cache(tmp_path, server):
    archive = write_zip(tmp_path / "cats_and_dogs_filtered.zip", cats_and_dogs_filtered(train=10, val=5))
    data = {"source": "url", "url": server.serve(archive), "sha256": sha256(archive),
            "download": {"retries": 1, "backoff_s": 0.1, "timeout_s": 10.0}}
    repo = make_repo(tmp_path / "repo", TINY | {"data": data})

    run(["dvc", "repro"], repo)
    manifest = pd.read_csv(repo / "data/manifest.csv")
    assert manifest.groupby("split").size().to_dict() == {"test": 4, "train": 16, "val": 10}
    assert set(manifest["label"]) == {"cat", "dog"}
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert metrics["n_test"] == 4 and 0.0 <= metrics["accuracy"] <= 1.0
    assert json.loads((repo / "reports/register.json").read_text())["promoted"] is True
    assert server.gets("cats_and_dogs_filtered.zip") == 1

    # DVC deletes a stage's outputs before rerunning it; the download cache is not one of them.
    run(["dvc", "repro", "--force", "--single-item", "fetch"], repo)
    assert server.gets("cats_and_dogs_filtered.zip") == 1
    assert json.loads((repo / "reports/fetch.json").read_text())["downloaded"] is False
    assert pd.read_csv(repo / "data/manifest.csv").equals(manifest)
    assert "cache" not in run(["git", "status", "--porcelain"], repo).stdout  # .cache/ is git-ignored
