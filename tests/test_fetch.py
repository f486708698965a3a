import json

import pandas as pd
import pytest

from stages import fetch, paths
from stages.errors import PipelineError
from stages.params import parse_params
from tests.helpers import image_tree


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def path_params(folder, **data):
    return parse_params({"data": {"source": "path", "path": str(folder), **data}})


def test_synthetic_source_writes_class_folders_and_manifest(in_tmp):
    params = parse_params({"data": {"synthetic": {"images_per_class": 12, "image_size": 24}}})
    manifest = fetch.run(params)
    assert sorted(p.name for p in paths.RAW_DIR.iterdir()) == ["cats", "dogs"]
    assert len(manifest) == 24
    assert pd.read_csv(paths.MANIFEST).equals(manifest)
    assert (manifest.groupby("label")["split"].value_counts() > 0).all()


def test_path_source_copies_images_and_skips_other_files(in_tmp):
    source = image_tree(in_tmp / "source", {"Cat": 10, "Dog": 10, "empty": 0})
    (source / "Cat" / "Thumbs.db").write_bytes(b"junk")
    (source / "Dog" / ".DS_Store").write_bytes(b"junk")
    (source / "README.txt").write_text("hello")
    manifest = fetch.run(path_params(source))
    assert sorted(manifest["label"].unique()) == ["cat", "dog"]  # folder names normalised
    assert len(manifest) == 20
    assert (paths.RAW_DIR / manifest["path"].iloc[0]).is_file()
    assert (source / "Cat" / "000.jpg").is_file()  # a local folder is copied, not moved
    report = json.loads(paths.FETCH_REPORT.read_text())
    assert report["skipped"] == {"hidden": 2, "not in a class folder": 1}
    assert report["class_folders"] == {"Cat": "cat", "Dog": "dog", "empty": "empty"}


def test_path_source_honours_data_classes(in_tmp):
    source = image_tree(in_tmp / "source", {"a": 5, "b": 5, "c": 5})
    manifest = fetch.run(path_params(source, classes=["a", "c"]))
    assert sorted(manifest["label"].unique()) == ["a", "c"]


@pytest.mark.parametrize(
    "layout, classes, message",
    [
        (None, None, "is not a folder"),
        ({"only": 5}, None, "at least 2 class sub-folders"),
        ({"a": 5, "b": 5}, ["a", "zebra"], "data.classes lists ['zebra']"),
        ({"validation": 5, "test": 5}, None, "has split folders (test, validation) but no train folder"),
    ],
)
def test_bad_layouts_fail_clearly_and_keep_previous_data(in_tmp, layout, classes, message):
    fetch.run(parse_params({"data": {"synthetic": {"images_per_class": 10, "image_size": 16}}}))
    before = paths.MANIFEST.read_bytes(), sorted(p.name for p in paths.RAW_DIR.rglob("*"))

    source = in_tmp / "source"
    if layout is not None:
        image_tree(source, layout)
    with pytest.raises(PipelineError) as error:
        fetch.run(path_params(source, classes=classes))
    assert message in str(error.value)
    assert (paths.MANIFEST.read_bytes(), sorted(p.name for p in paths.RAW_DIR.rglob("*"))) == before
    assert not [p for p in paths.RAW_DIR.parent.iterdir() if p.name.endswith(".tmp")]
