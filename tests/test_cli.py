"""The stage commands as users run them: bad input -> one clear line, exit 1, no traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

ENV = {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # the stages package, from anywhere


@pytest.mark.parametrize(
    "params, expected",
    [
        ("data:\n  source: ftp\n", "fetch: error: params.yaml: data.source = 'ftp': not allowed; "
                                   "input should be 'synthetic', 'url' or 'path'"),
        ("train:\n  learning_rate: -1\n", "fetch: error: params.yaml: train.learning_rate = -1"),
        ("data:\n  source: path\n  path: /no/such/folder\n", "fetch: error: data.path = '/no/such/folder' is not"),
    ],
)
def test_fetch_rejects_bad_input_clearly(tmp_path, params, expected):
    (tmp_path / "params.yaml").write_text(params)
    result = subprocess.run([sys.executable, "-m", "stages.fetch"], cwd=tmp_path, capture_output=True, text=True,
                            env=ENV)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_stage_without_inputs_says_which_stage_to_run(tmp_path):
    (tmp_path / "params.yaml").write_text("seed: 1\n")
    result = subprocess.run([sys.executable, "-m", "stages.validate"], cwd=tmp_path, capture_output=True, text=True,
                            env=ENV)
    assert result.returncode == 1
    assert "data/manifest.csv not found: run the `fetch` stage first" in result.stderr
