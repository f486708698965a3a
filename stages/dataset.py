"""tf.data input pipelines from the manifest: parallel decode + resize, cache, shuffle, batch.

Decoded images are cached as uint8 (a quarter of float32's memory) after the first epoch,
so later epochs skip file reads and JPEG decoding entirely.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def load_image(path: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
    """Read, decode (JPEG, PNG, GIF, BMP; always 3 channels) and resize to `size`, as uint8."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image = tf.image.resize(image, size, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def make_dataset(
    files: Sequence[Path | str],
    labels: Sequence[int],
    size: Sequence[int],
    batch_size: int,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """Batches of (float32 images 0-255, int labels); shuffled each epoch when a seed is given."""
    ds = tf.data.Dataset.from_tensor_slices(([str(f) for f in files], list(labels)))
    ds = ds.map(lambda f, y: (load_image(f, size), y), num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.cache()
    if shuffle_seed is not None:
        ds = ds.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)
