from pathlib import Path

import pytest
import yaml

from stages.errors import PipelineError
from stages.params import Params, flatten, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]


def test_committed_params_yaml_parses():
    params = load_params(ROOT / "params.yaml")
    assert params.data.source == "synthetic"
    assert params.images.size == (150, 150)


def test_committed_params_yaml_sets_every_key_explicitly():
    # Defaults live in params.yaml for users to read, not only in the code.
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    written = set(flatten(Params.model_validate(raw)))
    assert written == set(flatten(Params()))
    assert set(_flat_keys(raw)) == written


def _flat_keys(raw: dict, prefix: str = ""):
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flat_keys(value, f"{dotted}.")
        else:
            yield dotted


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"train": {"learning_rate": -1}}, "train.learning_rate = -1: Input should be greater than 0"),
        ({"train": {"epochs": 0}}, "train.epochs = 0"),
        ({"train": {"batch_size": "big"}}, "train.batch_size = 'big'"),
        ({"data": {"source": "ftp"}}, "data.source = 'ftp': not allowed; input should be 'synthetic' or 'path'"),
        ({"data": {"source": "path"}}, "needs data.path"),
        ({"data": {"split": {"train": 0.5}}}, "data.split: train + val + test must sum to 1"),
        ({"data": {"split": {"train": 0.85, "val": 0.15, "test": 0.0}}}, "every split ratio must be > 0"),
        ({"augment": {"zoom": 1.5}}, "augment.zoom = 1.5"),
        ({"model": {"filters": []}}, "model.filters"),
        ({"register": {"metric": "speed"}}, "register.metric = 'speed': not allowed"),
        ({"train": {"epoch": 3}}, "train.epoch: unknown key"),
        ({"validate": {"on_corrupt": "skip"}}, "validate.on_corrupt = 'skip': not allowed; input should be "
                                               "'quarantine' or 'fail'"),
        ({"validate": {"allowed_formats": ["JPG"]}}, "validate.allowed_formats.0 = 'JPG': not allowed"),
        ({"validate": {"max_pixels": 10**9}}, "validate.max_pixels = 1000000000: Input should be less than or "
                                              "equal to 89478485"),
        ({"validate": {"near_duplicate_similarity": 1.5}}, "validate.near_duplicate_similarity = 1.5"),
        ({"validate": {"on_near_duplicate": "warn"}}, "validate.on_near_duplicate = 'warn': not allowed"),
        ({"validate": {"max_imbalance_ratio": 0.5}}, "validate.max_imbalance_ratio = 0.5"),
    ],
)
def test_bad_values_name_the_key(raw, expected):
    with pytest.raises(PipelineError) as error:
        parse_params(raw)
    assert expected in str(error.value)
    assert str(error.value).startswith("params.yaml: ")


def test_flatten_uses_yaml_names():
    flat = flatten(Params())
    assert flat["train.learning_rate"] == 0.001
    assert "validate.min_images_per_class" in flat and "register.model_name" in flat


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(PipelineError, match="not found"):
        load_params(tmp_path / "params.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed")
    with pytest.raises(PipelineError, match="not valid YAML"):
        load_params(bad)
