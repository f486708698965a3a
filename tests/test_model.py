import numpy as np
import pytest

keras = pytest.importorskip("keras")

from stages.model import (  # noqa: E402
    RandomAffine,
    affine_transforms,
    loss_for,
    make_augmentation,
    make_model,
    with_augmentation,
    with_float32_compute,
)
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
    assert [type(layer).__name__ for layer in layers] == ["RandomAffine"]
    classifier = make_model((32, 32, 3), 2, ModelParams(filters=[4], dense_units=4))
    model = with_augmentation(classifier, layers)
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    assert model(images, training=True).shape == (2, 1)
    # Outside training the augmented model is the classifier, which shares its weights.
    assert np.allclose(model(images, training=False), classifier(images, training=False))
    assert not any(isinstance(layer, RandomAffine) for layer in classifier.layers)  # the saved model


def transform(image_batch, flip=1.0, angle=0.0, scale=1.0, shift_x=0.0, shift_y=0.0):
    n, height, width = image_batch.shape[:3]
    per_image = [np.full(n, v, "float32") for v in (flip, angle, scale, shift_x, shift_y)]
    matrices = affine_transforms(*per_image, float(height), float(width))
    return keras.ops.convert_to_numpy(keras.ops.image.affine_transform(
        image_batch, matrices, interpolation="bilinear", fill_mode="reflect"))


IMAGES = np.random.default_rng(1).integers(0, 256, (2, 9, 9, 3)).astype("float32")


@pytest.mark.parametrize("move, expected", [
    ({}, IMAGES),  # identity
    ({"flip": -1.0}, IMAGES[:, :, ::-1]),  # left-right mirror
    ({"angle": np.pi / 2}, np.rot90(IMAGES, k=1, axes=(1, 2))),  # a quarter turn
    ({"shift_x": 3.0}, np.concatenate([IMAGES[:, :, 3:], IMAGES[:, :, -1:-4:-1]], axis=2)),  # reflected edge
])
def test_affine_transforms_move_pixels_exactly(move, expected):
    np.testing.assert_allclose(transform(IMAGES, **move), expected, atol=1e-3)


def test_zoom_in_enlarges_around_the_centre():
    image = np.zeros((1, 9, 9, 3), "float32")
    image[:, 3:6, 3:6] = 255  # a 3x3 square in the middle
    zoomed = transform(image, scale=0.5)  # samples half the field of view: twice as large
    assert (zoomed[0, :, :, 0] == 255).sum() == 25  # the lit 3x3 pixels now cover 5x5 fully
    assert zoomed[0, 4, 4, 0] == 255


def test_random_affine_draws_per_image_and_per_step_reproducibly():
    batch = np.random.default_rng(2).integers(0, 256, (16, 8, 8, 3)).astype("float32")
    mirrored = batch[:, :, ::-1]

    def draws(layer):
        out = keras.ops.convert_to_numpy(layer(batch, training=True))
        flipped = [bool(np.allclose(o, m)) for o, m in zip(out, mirrored, strict=True)]
        # flip only: every image is either untouched or mirrored
        assert all(f or np.allclose(o, b) for f, o, b in zip(flipped, out, batch, strict=True))
        return flipped

    layer = RandomAffine(horizontal_flip=True, seed=3)
    first, second = draws(layer), draws(layer)
    assert 0 < sum(first) < 16  # drawn per image, not per batch
    assert first != second  # the state advances from step to step
    assert draws(RandomAffine(horizontal_flip=True, seed=3)) == first  # and the seed fixes it
    np.testing.assert_array_equal(layer(batch, training=False), batch)


def test_random_affine_draws_reach_the_bounds_of_its_ranges(monkeypatch):
    # Every draw at its upper bound: the layer must then make exactly the largest move its
    # params allow (a turn fraction in radians, zoom and shift as fractions of the size).
    monkeypatch.setattr(keras.random, "uniform", lambda shape, minval, maxval, **_: keras.ops.full(shape, maxval))
    images = np.random.default_rng(3).integers(0, 256, (2, 21, 21, 3)).astype("float32")
    layer = RandomAffine(horizontal_flip=True, rotation=0.05, zoom=0.2, translation=0.1, seed=0)
    expected = transform(images, flip=1.0, angle=0.05 * 2 * np.pi, scale=1.2, shift_x=2.1, shift_y=2.1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(images, training=True)), expected, atol=1e-3)


def test_fitting_the_augmented_model_trains_the_classifier_that_is_saved(tmp_path):
    classifier = make_model((16, 16, 3), 2, ModelParams(filters=[2], dense_units=2))
    model = with_augmentation(classifier, make_augmentation(AugmentParams(), 0))
    model.compile(keras.optimizers.Adam(0.1), loss_for(2))
    before = [w.copy() for w in classifier.get_weights()]
    model.fit(np.random.default_rng(4).uniform(0, 255, (8, 16, 16, 3)), np.arange(8) % 2, epochs=1, verbose=0)
    assert any(not np.allclose(a, b) for a, b in zip(before, classifier.get_weights(), strict=True))
    classifier.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")  # plain Keras: no augmentation inside
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in classifier.layers]


def test_float32_copy_of_a_mixed_precision_model():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = make_model((16, 16, 3), 2, ModelParams(filters=[2], dense_units=4))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer(index=2).compute_dtype == "bfloat16"
    copy = with_float32_compute(model)
    assert {layer.compute_dtype for layer in copy.layers} == {"float32"}
    for a, b in zip(model.get_weights(), copy.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    images = np.random.default_rng(5).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(copy(images), model(images), atol=0.02)  # bfloat16 keeps ~3 digits


def test_xla_switch_falls_back_while_augmentation_is_in_the_model():
    model = with_augmentation(make_model((16, 16, 3), 2, ModelParams(filters=[2], dense_units=2)),
                              make_augmentation(AugmentParams(), 0))
    with pytest.warns(UserWarning, match="jit_compile"):
        model.compile(keras.optimizers.Adam(), loss_for(2), jit_compile=True)
    assert model.jit_compile is False  # XLA cannot compile the resampling op; fitting must still work
    model.fit(np.zeros((4, 16, 16, 3), "float32"), np.zeros(4, "float32"), epochs=1, verbose=0)
