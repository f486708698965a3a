"""The `predict` console script: the champion by default, a table or JSON, clear errors."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from stages import predict
from tests.conftest import TINY_CLASSES
from tests.registry_helpers import cli_folder, register_champion

ROOT = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], cwd: Path, store: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | {"PYTHONPATH": str(ROOT)}
    if store:
        env["MLFLOW_TRACKING_URI"] = store
    return subprocess.run([sys.executable, "-m", "stages.predict", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_predict_is_a_declared_console_script():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["predict"] == "stages.predict:main"


@pytest.fixture(scope="module")
def champion(mlflow_store, tiny_keras_model):
    return register_champion(mlflow_store, tiny_keras_model, "predict-tests")


def test_no_champion_is_one_clear_line(mlflow_store, tiny_images, tmp_path):
    result = run_cli([str(tiny_images)], cli_folder(tmp_path, "never-registered"), mlflow_store)
    assert result.returncode == 1
    assert "predict: error: no champion yet: the registered model 'never-registered' has no alias 'champion'" \
        in result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_that_is_not_an_image_is_one_clear_line(mlflow_store, champion, tiny_images, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    result = run_cli([str(tiny_images / "cats/0.png"), "notes.txt"], cli_folder(tmp_path, "predict-tests"),
                     mlflow_store)
    assert result.returncode == 1
    assert "predict: error: row 1 (notes.txt): not an image" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    "args, expected",
    [
        (["nowhere.png"], "nowhere.png: no such file or folder"),
        (["empty"], "empty: no image files in this folder"),
    ],
)
def test_bad_paths_are_refused_before_any_model_loads(tmp_path, monkeypatch, capsys, args, expected):
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        predict.main(args)
    assert f"predict: error: {expected}" in capsys.readouterr().err


def test_no_store_here_is_a_clear_message_and_creates_nothing(tiny_images, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(cli_folder(tmp_path, "predict-tests"))
    with pytest.raises(SystemExit):
        predict.main([str(tiny_images)])
    assert "predict: error: no MLflow store at" in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists()


def test_table_and_json_from_the_champion(mlflow_store, champion, tiny_images, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    monkeypatch.chdir(cli_folder(tmp_path, "predict-tests"))
    predict.main([str(tiny_images)])
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["path", "label", *TINY_CLASSES]
    assert len(table) == 1 + 16 and str(tiny_images / "cats/0.png") in table[1]

    predict.main(["--json", str(tiny_images / "dogs"), "--model-uri", champion])
    records = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in records] == [str(tiny_images / f"dogs/{i}.png") for i in range(8)]
    for record in records:
        assert set(record) == {"path", "label", *TINY_CLASSES}
        assert record["label"] == max(TINY_CLASSES, key=record.get)
        assert record["cats"] + record["dogs"] == pytest.approx(1.0)
