import os

import numpy as np
import pytest
from PIL import Image

# Quiet TensorFlow and GX before any test imports them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


# Shared by the registry, serving and predict tests: a tiny trained CNN and an MLflow store.
TINY_CLASSES = ["cats", "dogs"]
TINY_SIZE = (32, 32)


@pytest.fixture(scope="session")
def tiny_images(tmp_path_factory):
    """<root>/<class>/<i>.png: reddish noisy "cats", bluish noisy "dogs", 8 of each, 40x40."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for label, tint in zip(TINY_CLASSES, ([60, -30, -30], [-30, -30, 60]), strict=True):
        (root / label).mkdir()
        for i in range(8):
            pixels = np.clip(rng.normal(128, 40, (40, 40, 3)) + tint, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def tiny_keras_model(tiny_images, tmp_path_factory):
    """A .keras file trained for 3 epochs on `tiny_images` (a few seconds)."""
    import keras

    from stages.dataset import make_dataset
    from stages.model import loss_for, make_model
    from stages.params import ModelParams

    keras.utils.set_random_seed(0)
    files = sorted(tiny_images.glob("*/*.png"))
    labels = [TINY_CLASSES.index(f.parent.name) for f in files]
    model = make_model((*TINY_SIZE, 3), 2, ModelParams(filters=[4], dense_units=8, dropout=0.0))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss_for(2), metrics=["accuracy"])
    model.fit(make_dataset(files, labels, TINY_SIZE, 8, shuffle_seed=0), epochs=3, verbose=0)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory) -> str:
    """A SQLite tracking store, created once (its schema migrations take seconds)."""
    import mlflow

    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    mlflow.MlflowClient(tracking_uri=uri).search_experiments()
    return uri
