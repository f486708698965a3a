import numpy as np
import pytest

keras = pytest.importorskip("keras")

from stages.model import make_augmentation, make_model  # noqa: E402
from stages.params import AugmentParams, ModelParams  # noqa: E402


@pytest.mark.parametrize("num_classes, output_shape", [(2, (3, 1)), (4, (3, 4))])
def test_model_outputs_probabilities(num_classes, output_shape):
    model = make_model((32, 32, 3), num_classes, ModelParams(filters=[4, 8], dense_units=8))
    out = model.predict(np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)), verbose=0)
    assert out.shape == output_shape
    assert np.all((out >= 0) & (out <= 1))
    conv = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in conv] == [4, 8]


def test_augmentation_follows_params_and_keeps_shape():
    assert make_augmentation(AugmentParams(enabled=False), 0) == []
    assert make_augmentation(AugmentParams(horizontal_flip=False, rotation=0, zoom=0), 0) == []
    layers = make_augmentation(AugmentParams(), 0)
    assert [type(layer).__name__ for layer in layers] == ["RandomFlip", "RandomRotation", "RandomZoom"]
    model = make_model((32, 32, 3), 2, ModelParams(filters=[4], dense_units=4), layers)
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    assert model(images, training=True).shape == (2, 1)
    assert np.allclose(model(images, training=False), model(images, training=False))
