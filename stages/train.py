"""train: fit the CNN on the validated manifest and log the run to MLflow.

Reads like the training loop it is: seed -> data -> model -> fit -> save -> log.
Writes models/model.keras, models/mlflow_run.json (the run later stages log into) and
reports/plots/history.csv (per-epoch curves for `dvc plots`).
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import keras  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402

from stages import paths, tracking  # noqa: E402
from stages.dataset import make_dataset  # noqa: E402
from stages.errors import run_main  # noqa: E402
from stages.files import atomic_path, read_json, write_json  # noqa: E402
from stages.manifest import digest, read_manifest  # noqa: E402
from stages.model import loss_for, make_augmentation, make_model  # noqa: E402
from stages.params import Params, flatten, load_params  # noqa: E402

PIPELINE_VERSION = "0.1.0"


class EpochLogger(keras.callbacks.Callback):
    """Per-epoch Keras metrics -> MLflow (train_loss, val_accuracy, ...)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        named = {(k if k.startswith("val_") else f"train_{k}"): float(v) for k, v in (logs or {}).items()
                 if k != "learning_rate"}
        mlflow.log_metrics(named, step=epoch + 1)


def split_files(manifest: pd.DataFrame, split: str, classes: list[str]) -> tuple[list[str], list[int]]:
    rows = manifest[manifest["split"] == split]
    files = rows["file"].tolist()  # validate's choice: the raw file, or its normalised copy under data/normalized
    return files, [classes.index(label) for label in rows["label"]]


def run(params: Params) -> str:
    tracking.connect()  # fail now, not after training, when the store is unreachable
    experiment_id = tracking.ensure_experiment(params.mlflow.experiment_name)

    keras.utils.set_random_seed(params.seed)
    manifest = read_manifest(paths.VALIDATED, produced_by="validate")
    classes = sorted(manifest["label"].unique())
    size = tuple(params.images.size)
    train_ds = make_dataset(*split_files(manifest, "train", classes), size, params.train.batch_size, params.seed)
    val_ds = make_dataset(*split_files(manifest, "val", classes), size, params.train.batch_size)

    model = make_model((*size, 3), len(classes), params.model, make_augmentation(params.augment, params.seed))
    model.compile(
        optimizer=keras.optimizers.Adam(params.train.learning_rate),
        loss=loss_for(len(classes)),
        metrics=["accuracy"],
    )

    flat_params = flatten(params)
    root = tracking.project_root()
    tags = {
        **tracking.git_tags(root),
        **tracking.dvc_tags(),
        "params_hash": tracking.params_hash(flat_params),
        "data_digest": digest(manifest),
        "pipeline_version": PIPELINE_VERSION,
        "classes": ",".join(classes),
    }
    run_name = tracking.run_name(root, flat_params)

    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
        mlflow.log_params(flat_params)
        log_data(manifest, params)
        started = time.perf_counter()
        history = model.fit(train_ds, validation_data=val_ds, epochs=params.train.epochs,
                            callbacks=[EpochLogger()], verbose=2)
        mlflow.log_metric("train_seconds", time.perf_counter() - started)

        with atomic_path(paths.MODEL) as tmp:
            model.save(tmp)
        example = np.zeros((1, *size, 3), dtype=np.float32)
        info = mlflow.keras.log_model(
            model,
            name="model",
            # A signature rather than input_example: MLflow 3.17's keras flavour writes the
            # example before creating the model folder and fails (FileNotFoundError).
            signature=infer_signature(example, model.predict(example, verbose=0)),
            # Listing the requirements skips MLflow's inference, which reloads the model
            # in a subprocess (tens of seconds on 2 cores).
            pip_requirements=[f"tensorflow=={_version('tensorflow')}", f"keras=={keras.__version__}"],
        )
        curves = pd.DataFrame(history.history).rename_axis("epoch").reset_index()
        curves["epoch"] += 1
        with atomic_path(paths.HISTORY) as tmp:
            curves.to_csv(tmp, index=False)
        write_json(paths.RUN_INFO, {
            "run_id": run.info.run_id,
            "experiment_id": experiment_id,
            "model_uri": info.model_uri,
            "classes": classes,
            "image_size": list(size),
        })
    print(f"train: run {run.info.run_id} in {tracking.tracking_uri()}; model -> {paths.MODEL}")
    return run.info.run_id


def log_data(manifest: pd.DataFrame, params: Params) -> None:
    """The dataset as an MLflow input (digest, source, per-split counts) + the validation summary."""
    name = params.data.path if params.data.source == "path" else f"synthetic(seed={params.seed})"
    dataset = mlflow.data.from_pandas(manifest[["path", "label", "split", "sha256"]], source=str(paths.MANIFEST),
                                      name=name, digest=digest(manifest))
    counts = manifest.groupby("split").size()
    mlflow.log_input(dataset, context="training",
                     tags={f"{split}_images": str(int(counts.get(split, 0))) for split in ("train", "val", "test")})
    report = read_json(paths.VALIDATION_REPORT, produced_by="validate")
    mlflow.log_metrics({"data_images": report["images"], "data_undecodable": report["undecodable"],
                        "data_clean": report["clean"], "data_quarantined": report["quarantined"],
                        "data_normalized": report["normalized"], "data_near_duplicates": report["near_duplicates"],
                        **{f"data_quarantined_{reason}": n for reason, n in report["reasons"].items()}})
    mlflow.log_artifact(str(paths.VALIDATION_REPORT), artifact_path="reports")
    mlflow.log_artifact(str(paths.QUARANTINE), artifact_path="reports")
    mlflow.log_artifacts(str(paths.DATA_DOCS), artifact_path="data_docs")


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def main() -> None:
    run_main("train", lambda: run(load_params()))


if __name__ == "__main__":
    main()
