import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from stages.synthetic import CLASSES, draw_animal, image_rng, write_dataset


def test_same_seed_gives_byte_identical_files(tmp_path):
    first = write_dataset(tmp_path / "a", images_per_class=3, size=48, seed=7)
    second = write_dataset(tmp_path / "b", images_per_class=3, size=48, seed=7)
    other = write_dataset(tmp_path / "c", images_per_class=3, size=48, seed=8)
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in second]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second, strict=True))
    assert all(a.read_bytes() != c.read_bytes() for a, c in zip(first, other, strict=True))


def test_files_are_rgb_jpegs_of_the_asked_size(tmp_path):
    files = write_dataset(tmp_path, images_per_class=2, size=40, seed=0)
    assert sorted({p.parent.name for p in files}) == list(CLASSES)
    for path in files:
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (40, 40))


def test_unknown_class_is_refused():
    with pytest.raises(ValueError, match="unknown synthetic class"):
        draw_animal("birds", image_rng(0, 0, 0), 32)


def test_mean_colour_does_not_separate_the_classes():
    # No global cue: a classifier on per-image mean RGB (and brightness) stays near chance.
    features, labels = [], []
    for class_index, label in enumerate(CLASSES):
        for i in range(150):
            pixels = np.asarray(draw_animal(label, image_rng(3, class_index, i), 48), dtype=float)
            features.append([*pixels.reshape(-1, 3).mean(axis=0), pixels.std()])
            labels.append(class_index)
    accuracy = cross_val_score(LogisticRegression(max_iter=2000), features, labels, cv=5).mean()
    assert accuracy < 0.62, f"mean colour separates the classes: accuracy {accuracy:.2f}"
