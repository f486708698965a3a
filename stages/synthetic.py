"""The embedded default dataset: seeded, Pillow-drawn cat and dog faces.

Why drawn faces and not coloured blobs: the classes must differ only in *shape*
(pointed vs floppy ears, short muzzle with whiskers vs long snout with a big nose),
never in a global cue such as mean colour or brightness. Every colour, the head size,
position, rotation, background clutter and noise are drawn from the same distributions
for both classes, so a classifier on per-image mean RGB stays near chance (see
tests/test_synthetic.py) while a small CNN learns the shapes.

Each image has its own generator seeded by (seed, class index, image index), so a file's
bytes depend only on those and the image size: same seed -> byte-identical files,
whatever the count or the order of generation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ("cats", "dogs")
SUPERSAMPLE = 2  # draw at 2x then downscale: antialiased edges at a low cost
JPEG_QUALITY = 90


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(low, high, size=3))


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c * factor, 0, 255)) for c in colour)


def _background(rng: np.random.Generator, side: int) -> Image.Image:
    """A two-colour gradient with random clutter shapes (same distribution for all classes)."""
    top, bottom = np.array(_colour(rng), float), np.array(_colour(rng), float)
    t = np.linspace(0.0, 1.0, side)[:, None, None]
    gradient = (top * (1 - t) + bottom * t).repeat(side, axis=1)
    image = Image.fromarray(gradient.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = rng.integers(0, side, size=2)
        w, h = rng.integers(side // 12, side // 3, size=2)
        box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse(box, fill=_colour(rng))
        elif kind == 1:
            draw.rectangle(box, fill=_colour(rng))
        else:
            draw.line(box, fill=_colour(rng), width=int(rng.integers(1, side // 30 + 2)))
    return image


def _eyes(draw: ImageDraw.ImageDraw, rng, cx, cy, r, slit: bool) -> None:
    iris = _colour(rng)
    eye_r = r * rng.uniform(0.11, 0.16)
    for side in (-1, 1):
        ex, ey = cx + side * r * 0.38, cy - r * 0.12
        draw.ellipse([ex - eye_r, ey - eye_r, ex + eye_r, ey + eye_r], fill=iris)
        if slit:  # a cat's vertical pupil
            draw.ellipse([ex - eye_r * 0.25, ey - eye_r * 0.9, ex + eye_r * 0.25, ey + eye_r * 0.9],
                         fill=(10, 10, 10))
        else:  # a dog's round pupil
            draw.ellipse([ex - eye_r * 0.55, ey - eye_r * 0.55, ex + eye_r * 0.55, ey + eye_r * 0.55],
                         fill=(10, 10, 10))


def _cat_face(draw, rng, cx, cy, r, fur, muzzle, nose) -> None:
    # Pointed ears standing up from the top of the head.
    for side in (-1, 1):
        base_in = (cx + side * r * 0.15, cy - r * 0.80)
        base_out = (cx + side * r * 0.85, cy - r * 0.45)
        tip = (cx + side * r * rng.uniform(0.55, 0.8), cy - r * rng.uniform(1.45, 1.75))
        draw.polygon([base_in, tip, base_out], fill=fur)
        inner = [(base_in[0] * 0.7 + tip[0] * 0.3, base_in[1] * 0.7 + tip[1] * 0.3),
                 (tip[0] * 0.8 + cx * 0.2, tip[1] * 0.85 + cy * 0.15),
                 (base_out[0] * 0.7 + tip[0] * 0.3, base_out[1] * 0.7 + tip[1] * 0.3)]
        draw.polygon(inner, fill=muzzle)
    draw.ellipse([cx - r, cy - r * 0.9, cx + r, cy + r * 0.9], fill=fur)
    # Small muzzle, small triangular nose, whiskers.
    draw.ellipse([cx - r * 0.35, cy + r * 0.15, cx + r * 0.35, cy + r * 0.6], fill=muzzle)
    draw.polygon([(cx - r * 0.1, cy + r * 0.15), (cx + r * 0.1, cy + r * 0.15), (cx, cy + r * 0.28)],
                 fill=nose)
    whisker = _colour(rng)
    width = max(1, int(r * 0.03))
    for side in (-1, 1):
        for k in (-1, 0, 1):
            draw.line([(cx + side * r * 0.25, cy + r * 0.35),
                       (cx + side * r * 1.25, cy + r * (0.3 + 0.15 * k))], fill=whisker, width=width)
    _eyes(draw, rng, cx, cy, r, slit=True)


def _dog_face(draw, rng, cx, cy, r, fur, muzzle, nose) -> None:
    draw.ellipse([cx - r, cy - r * 0.9, cx + r, cy + r * 0.9], fill=fur)
    # Floppy ears hanging down the sides of the head, a shade off the fur.
    ear = _shade(fur, rng.uniform(0.6, 1.4))
    for side in (-1, 1):
        ex = cx + side * r * 0.95
        draw.ellipse([ex - r * 0.28, cy - r * 0.7, ex + r * 0.28, cy + r * rng.uniform(0.5, 0.8)], fill=ear)
    # Long snout reaching below the head, with a big round nose at its end.
    draw.ellipse([cx - r * 0.42, cy + r * 0.05, cx + r * 0.42, cy + r * 1.05], fill=muzzle)
    draw.ellipse([cx - r * 0.2, cy + r * 0.12, cx + r * 0.2, cy + r * 0.4], fill=nose)
    draw.line([(cx, cy + r * 0.4), (cx, cy + r * 0.75)], fill=nose, width=max(1, int(r * 0.04)))
    if rng.random() < 0.5:  # tongue
        draw.ellipse([cx - r * 0.12, cy + r * 0.8, cx + r * 0.12, cy + r * 1.15], fill=_colour(rng))
    _eyes(draw, rng, cx, cy, r, slit=False)


def draw_animal(label: str, rng: np.random.Generator, size: int) -> Image.Image:
    """One RGB image of a cat or dog face on a cluttered background."""
    if label not in CLASSES:
        raise ValueError(f"unknown synthetic class {label!r}; expected one of {CLASSES}")
    side = size * SUPERSAMPLE
    image = _background(rng, side)

    # The face goes on its own transparent layer so it can be rotated (pose) as a whole.
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    r = side * rng.uniform(0.18, 0.28)
    cx, cy = side / 2, side / 2 + r * 0.15
    fur = _colour(rng, 30, 240)
    muzzle = _shade(fur, rng.uniform(0.6, 1.5))
    nose = _colour(rng, 0, 200)
    face = _cat_face if label == "cats" else _dog_face
    face(draw, rng, cx, cy, r, fur, muzzle, nose)
    layer = layer.rotate(float(rng.uniform(-30, 30)), resample=Image.BICUBIC)

    # Random position, keeping most of the face inside the frame.
    margin = side / 2 - r * 1.3
    dx, dy = (int(v) for v in rng.uniform(-margin, margin, size=2))
    image.paste(layer, (dx, dy), layer)

    image = image.resize((size, size), Image.BILINEAR)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    noise = rng.normal(0.0, rng.uniform(2, 12), size=(size, size, 3))
    pixels = np.clip(np.asarray(image, float) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def image_rng(seed: int, class_index: int, image_index: int) -> np.random.Generator:
    return np.random.default_rng([seed, class_index, image_index])


def write_dataset(out_dir: Path, images_per_class: int, size: int, seed: int) -> list[Path]:
    """Write `<out_dir>/<class>/<class>_<i>.jpg` for both classes; returns the files written."""
    written = []
    for class_index, label in enumerate(CLASSES):
        class_dir = out_dir / label
        class_dir.mkdir(parents=True, exist_ok=True)
        for i in range(images_per_class):
            image = draw_animal(label, image_rng(seed, class_index, i), size)
            path = class_dir / f"{label[:-1]}_{i:05d}.jpg"
            image.save(path, "JPEG", quality=JPEG_QUALITY)
            written.append(path)
    return written


__all__ = ["CLASSES", "draw_animal", "image_rng", "write_dataset"]
