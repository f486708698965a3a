"""predict: classify image files with the champion model (or any MLflow model URI).

    predict cat.jpg photos/                  # champion of register.model_name (params.yaml)
    predict --json photos/                   # JSON records instead of a table
    predict --model-uri models:/image-classifier/3 cat.jpg

Folders are searched recursively for image files (by extension); files named on the command
line are sent as they are, and the model says which ones are not images. The store is the
pipeline's (stages/tracking.py): `mlflow.db` in the current folder, or MLFLOW_TRACKING_URI.
Prints one row per image: the path, the predicted label and the probability of each class.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keep stderr for errors

from stages.errors import PipelineError, run_main  # noqa: E402
from stages.manifest import is_image_name  # noqa: E402

CHAMPION = "champion"  # the alias stages/register.py moves


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="predict", description="Classify images with the registered champion.")
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files and/or folders")
    parser.add_argument("--model-uri", help="any MLflow model URI; default models:/<register.model_name>@champion")
    parser.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    return parser.parse_args(argv)


def collect_images(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_image_name(p))
            if not found:
                raise PipelineError(f"{path}: no image files in this folder (.jpg, .jpeg, .png, .bmp, .gif, .webp)")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise PipelineError(f"{path}: no such file or folder")
    return files


def open_store() -> str:
    """The pipeline's tracking store; never creates an empty SQLite file by looking."""
    from stages import tracking

    uri = tracking.tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise PipelineError(f"no MLflow store at {uri.removeprefix('sqlite:///')}: run the pipeline here first "
                            "(dvc repro), run predict from the repository root, or set MLFLOW_TRACKING_URI")
    return tracking.connect()


def champion_uri(store: str) -> str:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from stages.params import load_params

    name = load_params().registry.model_name
    try:
        MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        raise PipelineError(f"no champion yet: the registered model '{name}' has no alias '{CHAMPION}' in {store}. "
                            "No run has passed the promotion rule so far (see reports/register.json); "
                            "pass --model-uri to use another model") from None
    return f"models:/{name}@{CHAMPION}"


def predict(files: list[Path], model_uri: str):
    """DataFrame: path, label, one probability column per class."""
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from stages.serving import load_image_predictor

    predictor = load_image_predictor(model_uri)
    try:
        frame = predictor(pd.DataFrame({"path": [str(f) for f in files]}))
    except MlflowException as error:  # the model names the rows it could not read
        raise PipelineError(error.message) from None
    frame.insert(0, "path", [str(f) for f in files])
    return frame


def run(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    files = collect_images(args.paths)
    # A model folder on disk needs no store; registry and run URIs do.
    if args.model_uri and not args.model_uri.startswith(("models:/", "runs:/")):
        model_uri = args.model_uri
    else:
        store = open_store()
        model_uri = args.model_uri or champion_uri(store)
    frame = predict(files, model_uri)
    if args.json:
        print(json.dumps(frame.to_dict(orient="records"), indent=2))
    else:
        print(frame.to_string(index=False, float_format=lambda p: f"{p:.4f}"))


def main(argv: list[str] | None = None) -> None:
    run_main("predict", lambda: run(argv if argv is not None else sys.argv[1:]))


if __name__ == "__main__":
    main()
