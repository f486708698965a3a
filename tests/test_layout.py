"""stages/layout.py: class folders found whatever the top folder, labels normalised, litter counted."""

from collections import Counter

import pytest

from stages.errors import PipelineError
from stages.layout import discover, label_for, normalise_label
from tests.fetch_kit import cats_and_dogs_filtered, pet_images


def unpack(root, entries):
    for name, data in entries.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.mark.parametrize(
    "folder, label",
    [("Cat", "cat"), ("cats", "cat"), ("CATS", "cat"), ("Dog", "dog"), ("dogs", "dog"),
     ("Golden Retrievers", "golden_retriever"), ("sea-lions", "sea_lion"), ("glass", "glass"), ("virus", "virus"),
     ("analysis", "analysis"), ("bus", "bus"), ("yes", "yes"), ("0", "0"), ("a", "a"), ("boxes", "boxe")],
)
def test_normalise_label(folder, label):
    assert normalise_label(folder) == label


def test_class_map_overrides_the_rule_by_folder_name_or_by_label():
    assert label_for("boxes", {"boxes": "box"}) == "box"
    assert label_for("Kitties", {"kittie": "cat"}) == "cat"
    assert label_for("Dogs", {"kittie": "cat"}) == "dog"


def test_cats_and_dogs_filtered_layout_keeps_its_split_folders(tmp_path):
    layout = discover(unpack(tmp_path, cats_and_dogs_filtered(train=4, val=2)), None, {}, "src")
    assert layout.root == "cats_and_dogs_filtered"
    assert layout.source_splits == ["train", "val"]
    assert Counter((i.label, i.split) for i in layout.images) == {
        ("cat", "train"): 4, ("dog", "train"): 4, ("cat", "val"): 2, ("dog", "val"): 2}
    assert layout.folders["cats_and_dogs_filtered/validation/dogs"] == "dog"
    assert layout.skipped == {"hidden": 1, "not in a class folder": 1}
    assert "cats_and_dogs_filtered/vectorize.py (not in a class folder)" in layout.skipped_examples


def test_pet_images_layout_is_class_folders_and_its_litter_is_counted(tmp_path):
    entries = pet_images(n=3) | {"PetImages/Cat/notes.txt": b"", "PetImages/Dog/extra/1.jpg": b"", "__MACOSX/x": b""}
    layout = discover(unpack(tmp_path, entries), None, {}, "src")
    assert layout.root == "PetImages" and layout.source_splits == []
    assert Counter(i.label for i in layout.images) == {"cat": 3, "dog": 3}
    assert layout.skipped == {"hidden": 3, "not in a class folder": 2, "not an image": 1, "nested folder": 1}


def test_class_map_merges_folders_and_classes_keeps_some(tmp_path):
    source = unpack(tmp_path, {f"{c}/{i}.jpg": b"" for c in ("Cat", "Kitty", "Dog", "Bird") for i in range(2)})
    layout = discover(source, ["cat", "dog"], {"Kitty": "cat"}, "src")
    assert Counter(i.label for i in layout.images) == {"cat": 4, "dog": 2}
    assert layout.skipped == {"class not in data.classes": 2}


@pytest.mark.parametrize(
    "entries, classes, message",
    [
        ({"only/a.jpg": b""}, None, "src needs at least 2 class sub-folders holding images"),
        ({"top/a/x.txt": b"", "top/b/y.txt": b""}, None, "found none (looked in top)"),
        ({"validation/cats/a.jpg": b"", "test/dogs/b.jpg": b""}, None, "has split folders (test, validation) but no "
                                                                      "train folder"),
        ({"Cat/a.jpg": b"", "Dog/b.jpg": b""}, ["Cat", "dog"], "data.classes lists ['Cat'] but src has no such class "
                                                              "(labels found: ['cat', 'dog']"),
    ],
)
def test_layouts_without_two_classes_fail_clearly(tmp_path, entries, classes, message):
    with pytest.raises(PipelineError) as error:
        discover(unpack(tmp_path, entries), classes, {}, "src")
    assert message in str(error.value)
