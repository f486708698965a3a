"""The served model: an MLflow pyfunc that takes raw images and returns a label and a
probability per class.

This file is logged as *model code* (MLflow's models-from-code: `python_model=<this file>`),
so it is copied into every logged model and must stand alone: it imports no `stages`
module, and a model keeps working after this file changes or where the project is not
installed (`mlflow models serve`, a Docker image). The Keras model travels as the artifact
`keras_model`; the class names and the image size travel in the model's `model_config`.

Input, a pandas DataFrame with one row per image and either column:

- `image`: the encoded file's bytes (JPEG, PNG, GIF, BMP, WebP), or the same as base64 text.
  `mlflow models serve` expects base64 text here: the signature declares the column
  binary, so the scoring server decodes it before `predict` sees it.
- `path`: a path to an image file, read where the model runs.

Output: a DataFrame with `label` (the most probable class) and one column per class name
holding its probability.

Images are decoded and resized exactly as the training pipeline does
(stages/dataset.py:load_image; tests/test_serving.py checks both give the same pixels).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

MAX_LISTED = 5  # bad rows named in one error
BATCH_SIZE = 32


def read_inputs(model_input: pd.DataFrame) -> list[bytes | str]:
    """Per row, the image's bytes (from `image`) or else its path (from `path`)."""
    if not isinstance(model_input, pd.DataFrame) or not {"image", "path"} & set(model_input.columns):
        raise MlflowException(
            "expected a DataFrame with a column `image` (image bytes or base64 text) or `path` "
            f"(image file paths); got {type(model_input).__name__} "
            f"{list(getattr(model_input, 'columns', []))}",
            INVALID_PARAMETER_VALUE,
        )
    images = model_input["image"] if "image" in model_input else pd.Series([None] * len(model_input))
    paths = model_input["path"] if "path" in model_input else pd.Series([None] * len(model_input))
    rows: list[bytes | str] = []
    for i, (image, path) in enumerate(zip(images, paths, strict=True)):
        if isinstance(image, (bytes, bytearray, memoryview)):
            rows.append(bytes(image))
        elif isinstance(image, str) and image:
            rows.append(_from_base64(image, i))
        elif isinstance(path, str) and path:
            rows.append(path)
        else:
            raise MlflowException(f"row {i}: neither `image` nor `path` is given", INVALID_PARAMETER_VALUE)
    return rows


def _from_base64(text: str, row: int) -> bytes:
    # Tolerate a data URL prefix ("data:image/png;base64,...") as browsers produce it.
    payload = text.split(",", 1)[1] if text.startswith("data:") else text
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        raise MlflowException(f"row {row}: `image` is not valid base64", INVALID_PARAMETER_VALUE) from None


def preprocess(data: bytes, size: Sequence[int]) -> np.ndarray:
    """Encoded image -> (height, width, 3) float32 in 0-255, as stages/dataset.py does it."""
    import tensorflow as tf

    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image = tf.image.resize(image, size, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8).numpy().astype(np.float32)


def load_batch(rows: Sequence[bytes | str], size: Sequence[int]) -> np.ndarray:
    """Decode every row; one error naming every row that is missing or not an image."""
    import tensorflow as tf

    images, bad = [], []
    for i, row in enumerate(rows):
        shown = f"row {i}" + (f" ({row})" if isinstance(row, str) else "")
        try:
            data = Path(row).read_bytes() if isinstance(row, str) else row
        except OSError as error:  # missing, a folder, no permission
            bad.append(f"{shown}: {error.strerror or error}")
            continue
        try:
            images.append(preprocess(data, size))
        except tf.errors.InvalidArgumentError:
            bad.append(f"{shown}: not an image (or a format TensorFlow cannot decode)")
    if bad:
        more = f" and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
        raise MlflowException("; ".join(bad[:MAX_LISTED]) + more, INVALID_PARAMETER_VALUE)
    return np.stack(images) if images else np.zeros((0, *size, 3), np.float32)


def class_probabilities(outputs: np.ndarray) -> np.ndarray:
    """(n, classes) probabilities from the model's outputs (one sigmoid unit for 2 classes).
    The same rule as stages/evaluate.py, repeated because this file stands alone."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        return np.hstack([1.0 - outputs, outputs])
    return outputs


def predictions(probs: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame(probs, columns=list(classes))
    frame.insert(0, "label", [classes[i] for i in probs.argmax(axis=1)] if len(probs) else [])
    return frame


class ImageClassifier(mlflow.pyfunc.PythonModel):
    """Raw images in, `label` + per-class probabilities out (see the module docstring)."""

    def __init__(self, keras_model=None, classes: Sequence[str] = (), image_size: Sequence[int] = ()):
        # Set directly when wrapping an in-memory Keras model (stages/register.py re-scores
        # champions logged before this flavour existed); from the logged model otherwise.
        self.keras_model, self.classes, self.image_size = keras_model, list(classes), list(image_size)

    def load_context(self, context) -> None:
        import keras

        self.keras_model = keras.models.load_model(context.artifacts["keras_model"], compile=False)
        self.classes = list(context.model_config["classes"])
        self.image_size = list(context.model_config["image_size"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        batch = load_batch(read_inputs(model_input), self.image_size)
        if not len(batch):
            return predictions(np.zeros((0, len(self.classes))), self.classes)
        outputs = self.keras_model.predict(batch, batch_size=BATCH_SIZE, verbose=0)
        return predictions(class_probabilities(outputs), self.classes)


# Models-from-code: MLflow runs this file when it logs or loads the model and takes the
# object given here. Importing the module elsewhere only records this (cheap) instance.
mlflow.models.set_model(ImageClassifier())
