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
        ({"data": {"source": "ftp"}}, "data.source = 'ftp': not allowed; input should be 'synthetic', 'url' or 'path'"),
        ({"data": {"source": "path"}}, "needs data.path"),
        ({"data": {"split": {"train": 0.5}}}, "data.split: train + val + test must sum to 1"),
        ({"data": {"split": {"train": 0.85, "val": 0.15, "test": 0.0}}}, "every split ratio must be > 0"),
        ({"augment": {"zoom": 1.5}}, "augment.zoom = 1.5"),
        ({"model": {"filters": []}}, "model.filters"),
        ({"register": {"metric": "speed"}}, "register.metric = 'speed': not allowed"),
        ({"register": {"floor": 1.5}}, "register.floor = 1.5: accuracy lies between 0 and 1"),
        ({"register": {"metric": "loss", "floor": -0.1}}, "register.floor = -0.1: for loss (lower is better)"),
        ({"register": {"floor": float("nan")}}, "register.floor = nan: Input should be a finite number"),
        ({"register": {"min_improvement": -0.01}}, "register.min_improvement = -0.01"),
        ({"register": {"min_relative_improvement": -1}}, "register.min_relative_improvement = -1"),
        ({"register": {"direction": "up"}}, "register.direction: unknown key"),
        ({"train": {"epoch": 3}}, "train.epoch: unknown key"),
        ({"gate": {"metrics": {"accuracy": {"direction": "up"}}}},
         "gate.metrics.accuracy.direction = 'up': not allowed; input should be 'max' or 'min'"),
        ({"gate": {"metrics": {"loss": {"direction": "max"}}}},
         "gate.metrics: loss has direction 'max', but lower is better for loss: use min"),
        ({"gate": {"metrics": {"roc_auc": {"direction": "min"}}}},
         "gate.metrics: roc_auc has direction 'min', but higher is better for roc_auc: use max"),
        ({"gate": {"metrics": {"accuracy": {"direction": "max", "abs_tol": -0.1}}}}, "gate.metrics.accuracy.abs_tol"),
        ({"gate": {"metrics": {"accuracy": {"direction": "max", "rel_tol": 5}}}},
         "gate.metrics.accuracy.rel_tol = 5: Input should be less than or equal to 1"),
        ({"gate": {"metrics": {"accuracy": {"abs_tol": 0.1}}}}, "gate.metrics.accuracy.direction: missing"),
        ({"gate": {"metrics": {}}}, "gate.metrics: Dictionary should have at least 1 item"),
        ({"data": {"source": "url"}}, "data: source 'url' needs data.url"),
        ({"data": {"source": "url", "url": "ftp://x/y.zip"}},
         "data.url = 'ftp://x/y.zip': must start with http://, https:// or file://"),
        ({"data": {"sha256": "abc"}}, "data.sha256 = 'abc': must be the archive's SHA-256 as 64 hex digits"),
        ({"data": {"source": "url", "preset": "imagenet"}}, "data.preset = 'imagenet': not allowed; input should be "
                                                            "'cats_and_dogs_filtered' or 'pet_images'"),
        ({"data": {"preset": "pet_images"}}, "data: preset 'pet_images' needs source 'url'"),
        ({"data": {"source": "url", "preset": "pet_images", "url": "http://x/y.zip"}},
         "set data.preset or data.url, not both"),
        ({"data": {"class_map": {"Cat": "../cat"}}}, "data.class_map.Cat = '../cat': a label starts with a letter"),
        ({"data": {"classes": ["cat", ".dog"]}}, "data.classes.1 = '.dog': a label starts with a letter"),
        ({"data": {"download": {"retries": -1}}}, "data.download.retries = -1"),
        ({"data": {"limits": {"max_unpacked_mb": 0}}}, "data.limits.max_unpacked_mb = 0"),
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


def test_loss_floor_may_exceed_one_and_direction_follows_the_metric():
    register = parse_params({"register": {"metric": "loss", "floor": 2.5}}).registry
    assert register.floor == 2.5 and register.lower_is_better
    assert not parse_params({"register": {"metric": "roc_auc"}}).registry.lower_is_better


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
