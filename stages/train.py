"""train: fit the CNN on the validated manifest and log the run to MLflow.

Reads like the training loop it is: seed -> data -> model -> fit -> save -> log.
Writes models/model.keras, models/mlflow_run.json (the run later stages log into) and
reports/plots/history.csv (per-epoch curves for `dvc plots`).
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from contextlib import ExitStack
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import keras  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from stages import paths, tracking  # noqa: E402
from stages.dataset import cache_bytes, load_image, make_dataset  # noqa: E402
from stages.errors import run_main  # noqa: E402
from stages.files import atomic_path, read_json, write_json  # noqa: E402
from stages.manifest import digest, read_manifest  # noqa: E402
from stages.model import (  # noqa: E402
    loss_for,
    make_augmentation,
    make_model,
    with_augmentation,
    with_float32_compute,
)
from stages.params import Params, TrainParams, flatten, load_params  # noqa: E402
from stages.precision import policy_for_this_machine  # noqa: E402
from stages.serving import log_image_classifier  # noqa: E402

PIPELINE_VERSION = "0.1.0"


class EpochLogger(keras.callbacks.Callback):
    """Per-epoch Keras metrics -> MLflow (train_loss, val_accuracy, learning_rate, ...)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        named = {(k if k.startswith(("val_", "learning_rate")) else f"train_{k}"): float(v)
                 for k, v in (logs or {}).items()}
        mlflow.log_metrics(named, step=epoch + 1)


def split_files(manifest: pd.DataFrame, split: str, classes: list[str]) -> tuple[list[str], list[int]]:
    rows = manifest[manifest["split"] == split]
    files = rows["file"].tolist()  # validate's choice: the raw file, or its normalised copy under data/normalized
    return files, [classes.index(label) for label in rows["label"]]


def configure_tensorflow(train: TrainParams, seed: int) -> str:
    """Seeds, op determinism and the dtype policy; returns the policy (logged with the run)."""
    keras.utils.set_random_seed(seed)  # Python, NumPy and TensorFlow RNGs
    if train.deterministic:
        tf.config.experimental.enable_op_determinism()
    policy = policy_for_this_machine(train.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    return policy


def make_optimizer(train: TrainParams, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    learning_rate = train.learning_rate
    if train.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, steps_per_epoch * train.epochs)
    if train.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    if train.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    return keras.optimizers.Adam(learning_rate)


def class_weights(labels: list[int], num_classes: int, mode: str) -> dict[int, float] | None:
    """`balanced`: n / (classes * count) per class, so every class weighs the same in the loss."""
    if mode == "none":
        return None
    counts = np.bincount(labels, minlength=num_classes)
    return {c: len(labels) / (num_classes * n) for c, n in enumerate(counts) if n > 0}


def make_callbacks(train: TrainParams) -> list[keras.callbacks.Callback]:
    callbacks: list[keras.callbacks.Callback] = [EpochLogger()]
    if train.early_stopping.patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=train.early_stopping.monitor, patience=train.early_stopping.patience,
            restore_best_weights=True, verbose=1))
    return callbacks


def preview_augmentation(files: list[str], params: Params, variants: int = 5) -> Path:
    """A PNG grid: a few training images, each followed by augmented variants."""
    import matplotlib.pyplot as plt

    from stages import figures

    size = params.images.size
    originals = np.stack([load_image(f, size).numpy() for f in files[:4]])
    layers = make_augmentation(params.augment, params.seed)  # fresh layers: training's RNG untouched
    augmented = []
    for _ in range(variants if layers else 0):
        batch = tf.convert_to_tensor(originals, tf.float32)
        for layer in layers:
            batch = layer(batch, training=True)
        augmented.append(np.clip(batch.numpy(), 0, 255).astype(np.uint8))
    figure = figures.augmentation_grid(originals, augmented)
    paths.AUGMENTATION_PREVIEW.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(paths.AUGMENTATION_PREVIEW) as tmp:
        figure.savefig(tmp, format="png", dpi=80)
    plt.close(figure)
    return paths.AUGMENTATION_PREVIEW


def run(params: Params) -> str:
    tracking.connect()  # fail now, not after training, when the store is unreachable
    experiment_id = tracking.ensure_experiment(params.mlflow.experiment_name)

    policy = configure_tensorflow(params.train, params.seed)
    print(f"train: dtype policy {policy} (train.mixed_precision: {params.train.mixed_precision})")
    manifest = read_manifest(paths.VALIDATED, produced_by="validate")
    classes = sorted(manifest["label"].unique())
    size = tuple(params.images.size)
    train_files, train_labels = split_files(manifest, "train", classes)
    val_files, val_labels = split_files(manifest, "val", classes)

    with ExitStack() as stack:
        # Decoded images beyond the RAM budget are cached on disk, for this run only.
        cache_dir = None
        if cache_bytes(len(train_files) + len(val_files), size) > params.images.cache_max_gb * 1e9:
            paths.CACHE_DIR.mkdir(parents=True, exist_ok=True)
            cache_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=paths.CACHE_DIR)))
            print(f"train: decoded images exceed images.cache_max_gb; caching them on disk in {cache_dir}")
        batch_size = params.train.batch_size
        train_ds = make_dataset(train_files, train_labels, size, batch_size, params.seed,
                                cache_file=cache_dir / "train" if cache_dir else None)
        val_ds = make_dataset(val_files, val_labels, size, batch_size,
                              cache_file=cache_dir / "val" if cache_dir else None)

        classifier = make_model((*size, 3), len(classes), params.model)  # what is saved
        model = with_augmentation(classifier, make_augmentation(params.augment, params.seed))  # what is fitted
        steps_per_epoch = -(-len(train_files) // batch_size)
        model.compile(optimizer=make_optimizer(params.train, steps_per_epoch), loss=loss_for(len(classes)),
                      metrics=["accuracy"], jit_compile=params.train.jit_compile)

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
        with mlflow.start_run(experiment_id=experiment_id, run_name=tracking.run_name(root, flat_params),
                              tags=tags) as run:
            mlflow.log_params({**flat_params, "dtype_policy": policy})
            log_data(manifest, params)
            mlflow.log_artifact(str(preview_augmentation(train_files, params)), artifact_path="plots")

            started = time.perf_counter()
            history = model.fit(train_ds, validation_data=val_ds, epochs=params.train.epochs,
                                class_weight=class_weights(train_labels, len(classes), params.train.class_weight),
                                callbacks=make_callbacks(params.train),
                                shuffle=False,  # the tf.data pipeline shuffles, with the seed
                                verbose=2)
            mlflow.log_metric("train_seconds", time.perf_counter() - started)

            with atomic_path(paths.MODEL) as tmp:
                with_float32_compute(classifier).save(tmp)  # runs anywhere, whatever the training precision
            info = log_image_classifier(paths.MODEL, classes, size)  # raw images in, labels out
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
    with warnings.catch_warnings():  # MLflow registers two resolvers for local paths and warns about it
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(manifest[["path", "label", "split", "sha256"]],
                                          source=str(paths.MANIFEST), name=name, digest=digest(manifest))
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


def main() -> None:
    run_main("train", lambda: run(load_params()))


if __name__ == "__main__":
    main()
