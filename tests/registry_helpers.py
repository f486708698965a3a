"""Builders for registry tests: logged candidate runs and the files the register stage reads."""

import json
import shutil
from pathlib import Path

import pandas as pd

from tests.conftest import TINY_CLASSES, TINY_SIZE

EXPERIMENT = "register-tests"


def log_candidate(store: str, keras_path: Path, digest: str, metrics: dict, flavour: str = "pyfunc",
                  classes: list[str] = TINY_CLASSES) -> dict:
    """An MLflow run as train + evaluate leave it (tags, test metrics, the model); returns
    the content of models/mlflow_run.json for it."""
    import mlflow

    from stages import tracking
    from stages.serving import log_image_classifier

    mlflow.set_tracking_uri(store)
    experiment_id = tracking.ensure_experiment(EXPERIMENT)
    tags = {"data_digest": digest, "git.commit": "0123456789abcdef", "params_hash": "feedbeef0001",
            "classes": ",".join(classes)}
    with mlflow.start_run(experiment_id=experiment_id, tags=tags) as run:
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items()})
        if flavour == "pyfunc":
            info = log_image_classifier(keras_path, classes, TINY_SIZE)
        else:  # how train logged models before the image pyfunc existed
            import keras

            info = mlflow.keras.log_model(keras.models.load_model(keras_path), name="model",
                                          pip_requirements=["tensorflow", "keras"])
    return {"run_id": run.info.run_id, "experiment_id": experiment_id, "model_uri": info.model_uri,
            "classes": list(classes), "image_size": list(TINY_SIZE)}


def workdir(root: Path, run_info: dict, metrics: dict, images: Path | None = None,
            model_name: str = "m", **rule) -> Path:
    """A folder laid out like the repository after evaluate: params.yaml, the run info,
    the metrics and, given `images` (<class>/<i>.png), data/raw and data/validated.csv with
    images 4+ of each class in the test split."""
    import yaml

    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump({"register": {"model_name": model_name, **rule}}))
    (root / "models").mkdir(exist_ok=True)
    (root / "models/mlflow_run.json").write_text(json.dumps(run_info))
    (root / "reports").mkdir(exist_ok=True)
    (root / "reports/metrics.json").write_text(json.dumps(metrics))
    if images is not None:
        shutil.copytree(images, root / "data/raw", dirs_exist_ok=True)
        files = sorted((root / "data/raw").glob("*/*.png"))
        pd.DataFrame({
            "path": [f.relative_to(root / "data/raw").as_posix() for f in files],
            "label": [f.parent.name for f in files],
            "split": ["test" if int(f.stem) >= 4 else "train" for f in files],
        }).to_csv(root / "data/validated.csv", index=False)
    return root


def always_first_class(keras_path: Path, target: Path) -> Path:
    """A copy of the model that predicts the first class for every image: its accuracy on a
    balanced test split is exactly 0.5, whatever the images."""
    import keras
    import numpy as np

    model = keras.models.load_model(keras_path)
    output = model.get_layer("probability")
    kernel, bias = output.get_weights()
    output.set_weights([np.zeros_like(kernel), np.full_like(bias, -8.0)])  # sigmoid(-8): first class
    model.save(target)
    return target


def register_champion(store: str, keras_path: Path, name: str) -> str:
    """Log the model, register it as version 1 of `name` with alias champion; its URI."""
    import mlflow

    info = log_candidate(store, keras_path, "digest-a", {"accuracy": 0.9})
    version = mlflow.register_model(info["model_uri"], name)
    mlflow.MlflowClient(tracking_uri=store).set_registered_model_alias(name, "champion", version.version)
    return f"models:/{name}@champion"


def cli_folder(root: Path, model_name: str) -> Path:
    """A folder with a params.yaml naming the registered model, to run `predict` in."""
    import yaml

    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump({"register": {"model_name": model_name}}))
    return root
