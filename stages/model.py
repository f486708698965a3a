"""The seed's CNN, built from params: Conv2D -> MaxPooling2D blocks, Flatten, Dropout, Dense.

`make_model` is a pure builder (Keras examples' habit): it takes the input shape, the
number of classes and the params, and returns an uncompiled model that accepts raw
0-255 RGB images, so whoever loads the saved model needs no preprocessing of their own.
Augmentation wraps it only for training (`with_augmentation`): the saved model holds no
training-only layers, so it loads anywhere with plain Keras.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from stages.params import AugmentParams, ModelParams


def affine_transforms(flip: object, angle: object, scale: object, shift_x: object, shift_y: object,
                      height: object, width: object) -> object:
    """Per image, the 8 numbers of `keras.ops.image.affine_transform` for one combined move.

    The output pixel (x, y) samples the input at  c + scale * R(angle) * F * ((x, y) - c) + shift,
    with c the image centre and F = diag(flip, 1): flip = -1 mirrors left-right, 1 keeps. Every
    argument but height and width holds one value per image.
    """
    cos, sin = ops.cos(angle) * scale, ops.sin(angle) * scale
    a0, a1, b0, b1 = cos * flip, -sin, sin * flip, cos
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    a2 = centre_x + shift_x - (a0 * centre_x + a1 * centre_y)
    b2 = centre_y + shift_y - (b0 * centre_x + b1 * centre_y)
    zeros = ops.zeros_like(a0)
    return ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


@keras.saving.register_keras_serializable(package="stages")
class RandomAffine(layers.Layer):
    """Random horizontal flip, rotation, zoom and translation in ONE bilinear resample.

    Keras' RandomRotation, RandomZoom and RandomTranslation each resample the whole batch:
    chained with RandomFlip (flip, rotation, zoom) they took 0.78 ms per 150x150 image on the
    2-core dev CPU, this layer 0.38 ms, and the image is interpolated once instead of twice
    (three times with translation), so it stays sharper. The seed's ImageDataGenerator also
    composed its moves into one matrix. Ranges follow the Keras layers: rotation as a
    fraction of a full turn, zoom and translation as fractions of the image size; edges are
    filled by reflection. Identity outside training.
    """

    def __init__(self, horizontal_flip: bool = True, rotation: float = 0.0, zoom: float = 0.0,
                 translation: float = 0.0, seed: int | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")  # resample in float32 even under a mixed policy
        super().__init__(**kwargs)
        self.horizontal_flip, self.rotation, self.zoom, self.translation = horizontal_flip, rotation, zoom, translation
        self.seed = seed
        # XLA cannot compile the resampling op: Keras then fits without XLA, with a warning.
        self.supports_jit = False
        # A variable of the layer: its state advances every training step, unlike a seeded
        # layer mapped over tf.data, which repeats one draw for every batch of an epoch.
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        images = ops.cast(images, self.compute_dtype)
        if not training:
            return images
        shape = ops.shape(images)
        height, width = ops.cast(shape[1], "float32"), ops.cast(shape[2], "float32")

        def uniform(bound):  # one draw per image in [-bound, bound]
            return keras.random.uniform((shape[0],), -bound, bound, seed=self.seed_generator)

        flip = ops.where(uniform(1.0) < 0, -1.0, 1.0) if self.horizontal_flip else ops.ones((shape[0],))
        transforms = affine_transforms(
            flip, uniform(self.rotation) * 2 * math.pi, 1 + uniform(self.zoom),
            uniform(self.translation) * width, uniform(self.translation) * height, height, width)
        return ops.image.affine_transform(images, transforms, interpolation="bilinear", fill_mode="reflect")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "horizontal_flip": self.horizontal_flip, "rotation": self.rotation,
                "zoom": self.zoom, "translation": self.translation, "seed": self.seed}


def make_augmentation(augment: AugmentParams, seed: int) -> list[layers.Layer]:
    """Augmentation layers for `augment.*` (each 0 = off); empty when augmentation is off.

    They run inside the training model, on whole batches, for two measured reasons:
    - a seeded random layer mapped over a tf.data pipeline draws the *same* transformation
      for every batch of an epoch (its RNG state cannot advance inside the traced map
      function); in the model the state is a variable that advances every step;
    - on 2 CPU cores the convolutions already keep both cores busy, so moving augmentation
      off the training step buys little (benchmarks/train_throughput.py measures it), and
      on an accelerator in-model augmentation runs on the device, which is the fast place.
    """
    if not augment.enabled:
        return []
    augmentation: list[layers.Layer] = []
    if augment.horizontal_flip or augment.rotation or augment.zoom or augment.translation:
        augmentation.append(RandomAffine(augment.horizontal_flip, augment.rotation, augment.zoom,
                                         augment.translation, seed=seed))
    if augment.contrast > 0:
        augmentation.append(layers.RandomContrast(augment.contrast, value_range=(0, 255), seed=seed + 4))
    if augment.brightness > 0:
        augmentation.append(layers.RandomBrightness(augment.brightness, value_range=(0, 255), seed=seed + 5))
    return augmentation


def make_model(input_shape: tuple[int, int, int], num_classes: int, params: ModelParams) -> keras.Model:
    """One sigmoid unit for two classes, a softmax over `num_classes` otherwise."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 255)(inputs)
    for filters in params.filters:
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(params.dropout)(x)
    x = layers.Dense(params.dense_units, activation="relu")(x)
    # The output stays float32 under mixed precision: a float16 sigmoid/softmax loses accuracy.
    if num_classes == 2:
        outputs = layers.Dense(1, activation="sigmoid", name="probability", dtype="float32")(x)
    else:
        outputs = layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="cnn")


def with_augmentation(model: keras.Model, augmentation: list[layers.Layer]) -> keras.Model:
    """The model to fit: `augmentation` (active in training only) in front of `model`.

    The two share weights, so fitting this one trains `model`, which is what gets saved.
    """
    if not augmentation:
        return model
    inputs = keras.Input(shape=model.input_shape[1:], name="image")
    x = inputs
    for layer in augmentation:
        x = layer(x)
    return keras.Model(inputs, model(x), name=f"{model.name}_augmented")


def with_float32_compute(model: keras.Model) -> keras.Model:
    """A copy of `model` (same weights) whose every layer computes in float32.

    A model built under a mixed precision policy keeps that policy when saved, and would
    then run bfloat16 or float16 kernels wherever it is loaded, including CPUs without
    native support, where they are slow. Weights are float32 under mixed precision anyway,
    so the copy that is saved, evaluated and served loses nothing.
    """
    def float32_layer(layer: layers.Layer) -> layers.Layer:
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=float32_layer)
    copy.set_weights(model.get_weights())
    return copy


def loss_for(num_classes: int) -> str:
    return "binary_crossentropy" if num_classes == 2 else "sparse_categorical_crossentropy"
