from collections import Counter

import pytest
from PIL import Image

from stages.manifest import build_manifest, digest, keep_source_split, split_counts, stratified_split

RATIOS = (0.7, 0.15, 0.15)


@pytest.mark.parametrize("n, expected", [(100, [70, 15, 15]), (10, [6, 2, 2]), (3, [1, 1, 1]), (2, [2, 0, 0])])
def test_split_counts(n, expected):
    assert split_counts(n, RATIOS) == expected
    assert sum(split_counts(n, RATIOS)) == n


def test_split_is_stratified_and_seeded():
    labels = ["cat"] * 100 + ["dog"] * 40
    splits = stratified_split(labels, RATIOS, seed=1)
    per_label = Counter(zip(labels, splits, strict=True))
    assert per_label[("cat", "test")] == 15 and per_label[("dog", "test")] == 6
    assert per_label[("cat", "train")] == 70 and per_label[("dog", "train")] == 28
    assert stratified_split(labels, RATIOS, seed=1) == splits
    assert stratified_split(labels, RATIOS, seed=2) != splits


def _image_tree(root, counts):
    for label, n in counts.items():
        (root / label).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (8, 8), (i, 0, 0)).save(root / label / f"{i}.png")


def test_build_manifest(tmp_path):
    _image_tree(tmp_path, {"cats": 10, "dogs": 10})
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    (tmp_path / "cats" / ".hidden.png").write_bytes(b"")
    manifest = build_manifest(tmp_path, RATIOS, seed=0)
    assert list(manifest.columns) == ["path", "label", "split", "bytes", "sha256"]
    assert len(manifest) == 20 and manifest["path"].is_unique
    assert set(manifest["label"]) == {"cats", "dogs"}
    assert manifest["path"].iloc[0] == "cats/0.png"
    assert (manifest["bytes"] > 0).all() and manifest["sha256"].str.len().eq(64).all()
    assert digest(manifest) == digest(manifest.sample(frac=1, random_state=0))
    moved = manifest.assign(split=manifest["split"].iloc[::-1].to_numpy())
    assert digest(moved) != digest(manifest)


def test_a_zero_ratio_gets_no_items():
    assert split_counts(10, (0.85, 0.0, 0.15)) == [8, 0, 2]


def test_keep_source_split_carves_only_the_missing_splits_out_of_train():
    labels = ["cat"] * 30 + ["dog"] * 20 + ["cat"] * 6 + ["dog"] * 4
    source = ["train"] * 50 + ["val"] * 10
    splits = keep_source_split(labels, source, RATIOS, seed=3)
    assert splits[50:] == ["val"] * 10  # the source's own split is kept
    per_label = Counter(zip(labels[:50], splits[:50], strict=True))
    assert per_label == {("cat", "train"): 26, ("cat", "test"): 4, ("dog", "train"): 17, ("dog", "test"): 3}
    assert keep_source_split(labels, source, RATIOS, seed=3) == splits
    assert keep_source_split(labels, source, RATIOS, seed=4) != splits
    complete = ["train"] * 40 + ["test"] * 10 + ["val"] * 10
    assert keep_source_split(labels, complete, RATIOS, seed=3) == complete


def test_build_manifest_keeps_the_source_split(tmp_path):
    _image_tree(tmp_path, {"cat": 6, "dog": 6})
    source = {f"{label}/{i}.png": "val" if i < 2 else "train" for label in ("cat", "dog") for i in range(6)}
    manifest = build_manifest(tmp_path, RATIOS, seed=0, source_splits=source)
    assert (manifest[manifest["path"].isin([p for p, s in source.items() if s == "val"])]["split"] == "val").all()
    assert manifest.groupby("label")["split"].value_counts().to_dict() == {
        ("cat", "train"): 3, ("cat", "val"): 2, ("cat", "test"): 1,
        ("dog", "train"): 3, ("dog", "val"): 2, ("dog", "test"): 1}
