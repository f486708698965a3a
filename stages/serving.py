"""Log the trained CNN as an image classifier that MLflow can load and serve by itself.

`log_image_classifier` logs stages/image_classifier.py as model code (MLflow's
models-from-code) with the Keras file as an artifact and the class names and image size
in `model_config`, so `mlflow.pyfunc.load_model("models:/NAME@champion")` and
`mlflow models serve` take raw images and need nothing from this project.

What MLflow 3.17's pyfunc does with the signature and the input example, which shaped
this: the explicit signature (an optional binary `image` and string `path` column in;
`label` and one double column per class out) is stored as given, without loading the
model; its binary column is what makes the scoring server base64-decode `image`. The input
example (one tiny PNG) is checked against that signature, stored as
`serving_input_example.json` (a ready request body for `/invocations`), and then served
once in-process from the saved model: a smoke test of the logged model at training time,
which MLflow turns into a warning, not an error, when it fails. Unlike the keras flavour
(see the git history of stages/train.py), pyfunc writes the example without trouble.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types import ColSpec, Schema

from stages.errors import PipelineError

MODEL_CODE = Path(__file__).with_name("image_classifier.py")
RESERVED = {"label"}  # output column names a class cannot take


def signature(classes: Sequence[str]) -> ModelSignature:
    inputs = Schema([ColSpec("binary", "image", required=False), ColSpec("string", "path", required=False)])
    outputs = Schema([ColSpec("string", "label"), *(ColSpec("double", name) for name in classes)])
    return ModelSignature(inputs=inputs, outputs=outputs)


def example_image() -> bytes:
    """A 4x4 PNG: small enough to sit in the model's folder as its serving example."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def log_image_classifier(model_path: Path, classes: Sequence[str], image_size: Sequence[int]) -> ModelInfo:
    """Log `model_path` (a .keras file) into the active run as the pyfunc model `model`."""
    clashes = RESERVED & set(classes)
    if clashes:
        raise PipelineError(f"a class may not be named {sorted(clashes)}: it is an output column of the "
                            "served model; rename that class folder")
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(MODEL_CODE),
        artifacts={"keras_model": str(model_path)},
        model_config={"classes": list(classes), "image_size": [int(s) for s in image_size]},
        signature=signature(classes),
        input_example=pd.DataFrame({"image": [example_image()]}),
        # Listing the requirements skips MLflow's inference, which reloads the model in a
        # subprocess (tens of seconds on 2 cores). MLflow adds itself to the list.
        pip_requirements=[f"tensorflow=={version('tensorflow')}", f"keras=={version('keras')}",
                          f"pandas=={version('pandas')}", f"numpy=={version('numpy')}"],
    )


def load_image_predictor(model_uri: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """`predict(DataFrame with an image or path column) -> label + class probabilities` for
    a logged model: the image classifier above, or a bare Keras model that train logged
    before it existed (wrapped here with the same preprocessing, classes from its run)."""
    from mlflow.exceptions import MlflowException

    try:
        model_info = mlflow.models.get_model_info(model_uri)
        if "keras" not in model_info.flavors:
            model = mlflow.pyfunc.load_model(model_uri)
            if "classes" not in model.model_config:
                raise PipelineError(f"{model_uri} is not an image classifier logged by this pipeline "
                                    "(no class names in its model_config)")
            return model.predict
        from stages.image_classifier import ImageClassifier

        keras_model = mlflow.keras.load_model(model_uri)
        run_tags = mlflow.MlflowClient().get_run(model_info.run_id).data.tags if model_info.run_id else {}
    except MlflowException as error:
        raise PipelineError(f"cannot load the model {model_uri}: {error.message}") from None
    if not run_tags.get("classes"):
        raise PipelineError(f"{model_uri} is a bare Keras model and its run has no `classes` tag: "
                            "its class names are unknown")
    wrapper = ImageClassifier(keras_model, run_tags["classes"].split(","), keras_model.input_shape[1:3])
    return lambda frame: wrapper.predict(None, frame)
