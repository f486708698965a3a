"""The seed's CNN, built from params: Conv2D -> MaxPooling2D blocks, Flatten, Dropout, Dense.

`make_model` is a pure builder (Keras examples' habit): it takes the input shape, the
number of classes and the params, and returns an uncompiled model that accepts raw
0-255 RGB images, so whoever loads the saved model needs no preprocessing of their own.
"""

from __future__ import annotations

import keras
from keras import layers

from stages.params import AugmentParams, ModelParams


def make_augmentation(augment: AugmentParams, seed: int) -> list[layers.Layer]:
    """Keras preprocessing layers for `augment.*` (each 0 = off); empty when augmentation is off.

    They sit inside the model, active only in training, for two measured reasons:
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
    if augment.horizontal_flip:
        augmentation.append(layers.RandomFlip("horizontal", seed=seed))
    if augment.rotation > 0:
        augmentation.append(layers.RandomRotation(augment.rotation, fill_mode="reflect", seed=seed + 1))
    if augment.zoom > 0:
        augmentation.append(layers.RandomZoom(augment.zoom, fill_mode="reflect", seed=seed + 2))
    if augment.translation > 0:
        augmentation.append(layers.RandomTranslation(augment.translation, augment.translation,
                                                     fill_mode="reflect", seed=seed + 3))
    if augment.contrast > 0:
        augmentation.append(layers.RandomContrast(augment.contrast, value_range=(0, 255), seed=seed + 4))
    if augment.brightness > 0:
        augmentation.append(layers.RandomBrightness(augment.brightness, value_range=(0, 255), seed=seed + 5))
    return augmentation


def make_model(
    input_shape: tuple[int, int, int],
    num_classes: int,
    params: ModelParams,
    augmentation: list[layers.Layer] = (),
) -> keras.Model:
    """One sigmoid unit for two classes, a softmax over `num_classes` otherwise."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for layer in augmentation:
        x = layer(x)
    x = layers.Rescaling(1.0 / 255)(x)
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


def loss_for(num_classes: int) -> str:
    return "binary_crossentropy" if num_classes == 2 else "sparse_categorical_crossentropy"
