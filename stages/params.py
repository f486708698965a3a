"""Typed params: `params.yaml` parsed once, bad values rejected with the key that is wrong.

Every stage calls `load_params()` first, so a bad value stops the first stage that runs
with one line such as::

    params.yaml: train.learning_rate = -1.0: Input should be greater than 0

Unknown keys are errors too (a typo such as `train.epoch` would otherwise be ignored).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from stages.errors import PipelineError
from stages.presets import PRESETS

PARAMS_FILE = Path("params.yaml")

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitParams(Strict):
    train: Fraction = 0.7
    val: Fraction = 0.15
    test: Fraction = 0.15

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitParams:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must sum to 1, got {total:g}")
        if min(self.train, self.val, self.test) <= 0:
            raise ValueError("every split ratio must be > 0 (train, val and test are all used)")
        return self


class SyntheticParams(Strict):
    images_per_class: Annotated[int, Field(ge=10)] = 500
    image_size: Annotated[int, Field(ge=16, le=1024)] = 150


def _label(value: str) -> str:
    # A label names a folder under data/raw: no separators, no leading dot.
    if not re.fullmatch(r"[^\W_][\w.-]*", value):
        raise ValueError("a label starts with a letter or digit and holds only letters, digits, '_', '-' and '.'")
    return value


def _sha256(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise ValueError("must be the archive's SHA-256 as 64 hex digits (what `sha256sum FILE` prints)")
    return value.lower()


def _url(value: str) -> str:
    if urlsplit(value).scheme not in ("http", "https", "file"):
        raise ValueError("must start with http://, https:// or file://")
    return value


Label = Annotated[str, AfterValidator(_label)]


class DownloadParams(Strict):
    retries: Annotated[int, Field(ge=0, le=20)] = 4
    backoff_s: Annotated[float, Field(ge=0.0, le=60.0)] = 1.0
    timeout_s: Annotated[float, Field(gt=0.0, le=600.0)] = 60.0


class LimitsParams(Strict):
    max_files: Annotated[int, Field(ge=1)] = 200_000
    max_unpacked_mb: Annotated[int, Field(ge=1)] = 10_240


class DataParams(Strict):
    source: Literal["synthetic", "url", "path"] = "synthetic"
    preset: Literal[tuple(PRESETS)] | None = None  # type: ignore[valid-type]
    url: Annotated[str, AfterValidator(_url)] | None = None
    sha256: Annotated[str, AfterValidator(_sha256)] | None = None
    path: str | None = None
    classes: list[Label] | None = None
    class_map: dict[str, Label] = {}
    split: SplitParams = SplitParams()
    download: DownloadParams = DownloadParams()
    limits: LimitsParams = LimitsParams()
    synthetic: SyntheticParams = SyntheticParams()

    @model_validator(mode="after")
    def _source_given(self) -> DataParams:
        if self.source == "path" and not self.path:
            raise ValueError("source 'path' needs data.path: a folder with one sub-folder per class, "
                             "or a .zip/.tar/.tar.gz/.tgz archive of one")
        if self.source == "url" and not (self.url or self.preset):
            raise ValueError("source 'url' needs data.url (an http(s):// or file:// URL of a .zip/.tar/.tar.gz "
                             f"archive) or data.preset (one of {', '.join(PRESETS)})")
        if self.preset and self.source != "url":
            raise ValueError(f"preset {self.preset!r} needs source 'url' (a preset is a download)")
        if self.preset and self.url:
            raise ValueError("set data.preset or data.url, not both (the preset supplies the URL)")
        if self.classes is not None and len(set(self.classes)) < 2:
            raise ValueError("data.classes needs at least 2 distinct class names (or null to use every folder)")
        return self

    @property
    def archive_url(self) -> str | None:
        return self.url or (PRESETS[self.preset].url if self.preset else None)

    @property
    def archive_sha256(self) -> str | None:
        """The pinned hash: data.sha256 wins over the preset's."""
        return self.sha256 or (PRESETS[self.preset].sha256 if self.preset else None)


class ImagesParams(Strict):
    size: tuple[Annotated[int, Field(ge=16, le=1024)], Annotated[int, Field(ge=16, le=1024)]] = (150, 150)
    cache_max_gb: Annotated[float, Field(ge=0.0)] = 4.0


class AugmentParams(Strict):
    enabled: bool = True
    horizontal_flip: bool = True
    rotation: Annotated[float, Field(ge=0.0, le=0.5)] = 0.1
    zoom: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    translation: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    contrast: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    brightness: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0


class ModelParams(Strict):
    filters: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)] = [32, 64, 128]
    dense_units: Annotated[int, Field(ge=1)] = 128
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.5


class EarlyStoppingParams(Strict):
    patience: Annotated[int, Field(ge=0)] = 0
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"


class TrainParams(Strict):
    epochs: Annotated[int, Field(ge=1)] = 8
    learning_rate: Annotated[float, Field(gt=0.0, le=10.0)] = 0.001
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 32
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    lr_schedule: Literal["constant", "cosine"] = "constant"
    early_stopping: EarlyStoppingParams = EarlyStoppingParams()
    class_weight: Literal["none", "balanced"] = "none"
    deterministic: bool = False
    mixed_precision: Literal["auto", "none", "float16", "bfloat16"] = "auto"
    jit_compile: bool = False

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _switch_means_float16(cls, value: object) -> object:
        # `mixed_precision: true/false` was the switch before bfloat16 existed: keep it working.
        if isinstance(value, bool):
            return "float16" if value else "none"
        return value


# Pillow's own decompression-bomb guard (Image.MAX_IMAGE_PIXELS, about 89 megapixels):
# validate.max_pixels may lower the limit, not raise it.
PILLOW_MAX_PIXELS = 89_478_485
FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "MPO", "TIFF")  # what validate.allowed_formats may list


class ValidateParams(Strict):
    on_corrupt: Literal["quarantine", "fail"] = "quarantine"
    allowed_formats: Annotated[list[Literal[FORMATS]], Field(min_length=1)] = [
        "JPEG", "PNG", "GIF", "BMP", "WEBP", "MPO"]
    min_width: Annotated[int, Field(ge=1)] = 16
    min_height: Annotated[int, Field(ge=1)] = 16
    max_pixels: Annotated[int, Field(ge=1, le=PILLOW_MAX_PIXELS)] = 40_000_000
    min_images_per_class: Annotated[int, Field(ge=1)] = 10
    min_images_per_split: Annotated[int, Field(ge=1)] = 1
    max_imbalance_ratio: Annotated[float, Field(ge=1.0)] = 10.0
    near_duplicate_similarity: Annotated[float, Field(gt=0.5, le=1.0)] = 0.9
    on_near_duplicate: Literal["report", "quarantine", "fail"] = "report"
    workers: Annotated[int, Field(ge=0, le=256)] = 0


class MlflowParams(Strict):
    experiment_name: Annotated[str, Field(min_length=1)] = "image-classifier"


Metric = Literal["accuracy", "precision", "recall", "f1", "roc_auc", "loss"]
# The direction of each metric is fixed by what it measures, so it is derived rather than
# a param: a `direction` key could only ever contradict the metric.
LOWER_IS_BETTER = frozenset({"loss"})


class RegisterParams(Strict):
    """The promotion rule (stages/register.py:decide applies it)."""

    model_name: Annotated[str, Field(min_length=1)] = "image-classifier"
    metric: Metric = "accuracy"
    floor: Annotated[float, Field(allow_inf_nan=False)] | None = 0.7
    min_improvement: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0
    min_relative_improvement: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0

    @property
    def lower_is_better(self) -> bool:
        return self.metric in LOWER_IS_BETTER

    @field_validator("floor")
    @classmethod
    def _floor_in_range(cls, floor: float | None, info: ValidationInfo) -> float | None:
        metric = info.data.get("metric")
        if floor is None or metric is None:
            return floor
        if metric in LOWER_IS_BETTER and floor < 0:
            raise ValueError(f"for {metric} (lower is better) the floor is the highest acceptable value, >= 0")
        if metric not in LOWER_IS_BETTER and not 0.0 <= floor <= 1.0:
            raise ValueError(f"{metric} lies between 0 and 1, so must its floor (null = no floor)")
        return floor


class GateRule(Strict):
    """How far one metric may move the wrong way before the gate fails (see stages/gate.py)."""

    direction: Literal["max", "min"]  # max: higher is better (accuracy); min: lower is better (loss)
    abs_tol: Annotated[float, Field(ge=0.0)] = 0.0
    # A fraction of the baseline (0.05 = 5%); the bound catches `5` meant as a percentage.
    rel_tol: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0


class GateParams(Strict):
    # Any metric name evaluate writes; a name missing from the metrics is an error at gate time.
    metrics: Annotated[dict[Annotated[str, Field(min_length=1)], GateRule], Field(min_length=1)] = {
        "accuracy": GateRule(direction="max", abs_tol=0.04),
        "f1": GateRule(direction="max", abs_tol=0.04),
        "roc_auc": GateRule(direction="max", abs_tol=0.01),
        "loss": GateRule(direction="min", abs_tol=0.05, rel_tol=0.5),
    }

    @field_validator("metrics")
    @classmethod
    def _directions_match(cls, metrics: dict[str, GateRule]) -> dict[str, GateRule]:
        # `direction` is spelled out so that a new metric can be gated, but for the metrics
        # evaluate writes it is fixed (LOWER_IS_BETTER): a contradiction would pass regressions.
        wrong = [f"{name} has direction {rule.direction!r}, but {'lower' if name in LOWER_IS_BETTER else 'higher'} "
                 f"is better for {name}: use {'min' if name in LOWER_IS_BETTER else 'max'}"
                 for name, rule in metrics.items()
                 if name in get_args(Metric) and (rule.direction == "min") != (name in LOWER_IS_BETTER)]
        if wrong:
            raise ValueError("; ".join(wrong))
        return metrics


class Params(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    seed: int = 42
    data: DataParams = DataParams()
    images: ImagesParams = ImagesParams()
    augment: AugmentParams = AugmentParams()
    model: ModelParams = ModelParams()
    train: TrainParams = TrainParams()
    # `validate` and `register` would shadow pydantic's own methods, hence the aliases.
    validation: ValidateParams = Field(ValidateParams(), alias="validate")
    mlflow: MlflowParams = MlflowParams()
    registry: RegisterParams = Field(RegisterParams(), alias="register")
    gate: GateParams = GateParams()


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key (typo?); see params.yaml comments for the keys that exist"
    if error["type"] == "missing":
        return f"{key}: missing"
    if error["type"] == "literal_error":
        message = f"not allowed; {message[0].lower()}{message[1:]}"
    value = error.get("input")
    shown = f" = {value!r}" if key and not isinstance(value, dict) else ""
    return f"{key or '(top level)'}{shown}: {message}"


def parse_params(raw: dict, source: str = str(PARAMS_FILE)) -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        lines = [f"{source}: {_describe(e)}" for e in error.errors()]
        raise PipelineError("\n".join(lines)) from None


def load_params(path: Path = PARAMS_FILE) -> Params:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path} not found: run the stages from the repository root") from None
    except yaml.YAMLError as error:
        raise PipelineError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise PipelineError(f"{path} must be a mapping of sections (seed, data, train, ...)")
    return parse_params(raw, str(path))


def flatten(params: Params) -> dict[str, object]:
    """Dotted keys (`train.learning_rate`) for logging and hashing."""
    flat: dict[str, object] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else key, item)
        else:
            flat[prefix] = value

    walk("", params.model_dump(mode="json", by_alias=True))
    return flat
