"""The image pyfunc: same pixels as training, any input form gives the same answer, clear errors."""

import base64
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from stages.errors import PipelineError
from tests.conftest import TINY_CLASSES, TINY_SIZE


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_served_preprocessing_matches_training(tmp_path, fmt):
    from stages.dataset import load_image
    from stages.image_classifier import preprocess

    rng = np.random.default_rng(1)
    path = tmp_path / f"x.{fmt.lower()}"
    Image.fromarray(rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)).save(path, format=fmt)
    trained_on = load_image(str(path), TINY_SIZE).numpy()
    served = preprocess(path.read_bytes(), TINY_SIZE)
    assert served.shape == (*TINY_SIZE, 3) and served.dtype == np.float32
    np.testing.assert_array_equal(served, trained_on)


@pytest.fixture(scope="module")
def logged(mlflow_store, tiny_keras_model):
    from tests.registry_helpers import log_candidate

    # Logged as train does (stages.serving.log_image_classifier), artifacts beside the store.
    return SimpleNamespace(**log_candidate(mlflow_store, tiny_keras_model, "digest-a", {"accuracy": 0.9}))


def test_logged_model_carries_its_classes_size_and_signature(logged):
    import mlflow

    model = mlflow.pyfunc.load_model(logged.model_uri)
    assert model.model_config == {"classes": TINY_CLASSES, "image_size": list(TINY_SIZE)}
    signature = model.metadata.signature
    assert signature.inputs.input_names() == ["image", "path"]
    assert signature.outputs.input_names() == ["label", *TINY_CLASSES]
    assert set(model.metadata.flavors) == {"python_function"}  # nothing Keras-specific to know


def test_paths_bytes_and_base64_give_the_same_predictions(logged, tiny_images):
    import mlflow

    model = mlflow.pyfunc.load_model(logged.model_uri)
    files = sorted(tiny_images.glob("*/*.png"))
    by_path = model.predict(pd.DataFrame({"path": [str(f) for f in files]}))
    by_bytes = model.predict(pd.DataFrame({"image": [f.read_bytes() for f in files]}))
    by_base64 = model.predict(pd.DataFrame({"image": [base64.b64encode(f.read_bytes()).decode() for f in files]}))
    assert list(by_path.columns) == ["label", *TINY_CLASSES]
    pd.testing.assert_frame_equal(by_path, by_bytes)
    pd.testing.assert_frame_equal(by_path, by_base64)
    np.testing.assert_allclose(by_path[TINY_CLASSES].sum(axis=1), 1.0, rtol=1e-6)
    assert set(by_path["label"]) <= set(TINY_CLASSES)
    # The tiny model learned the tint: most images get their folder's label.
    assert (by_path["label"] == [f.parent.name for f in files]).mean() >= 0.75


def test_unreadable_rows_are_named_in_one_error(logged, tmp_path):
    import mlflow
    from mlflow.exceptions import MlflowException

    (tmp_path / "notes.jpg").write_text("not an image")
    model = mlflow.pyfunc.load_model(logged.model_uri)
    with pytest.raises(MlflowException) as error:
        model.predict(pd.DataFrame({"path": [str(tmp_path / "notes.jpg"), str(tmp_path / "missing.png")]}))
    assert f"row 0 ({tmp_path / 'notes.jpg'}): not an image" in error.value.message
    assert f"row 1 ({tmp_path / 'missing.png'}): No such file" in error.value.message
    with pytest.raises(MlflowException, match="expected a DataFrame with a column `image`"):
        model.predict(pd.DataFrame({"file": ["x.png"]}))


def test_a_class_named_like_an_output_column_is_refused(tiny_keras_model):
    from stages.serving import log_image_classifier

    with pytest.raises(PipelineError, match=r"may not be named \['label'\]"):
        log_image_classifier(tiny_keras_model, ["label", "dogs"], TINY_SIZE)
