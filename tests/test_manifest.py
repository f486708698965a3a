from collections import Counter

import pytest
from PIL import Image

from stages.manifest import build_manifest, digest, split_counts, stratified_split

RATIOS = (0.7, 0.15, 0.15)


@pytest.mark.parametrize("n, expected", [(100, [70, 15, 15]), (10, [6, 2, 2]), (3, [1, 1, 1]), (2, [2, 0, 0])])
def test_split_counts(n, expected):
    assert split_counts(n, RATIOS) == expected
    assert sum(split_counts(n, RATIOS)) == n


def test_split_is_stratified_and_seeded():
    labels = ["cat"] * 100 + ["dog"] * 40
    splits = stratified_split(labels, RATIOS, seed=1)
    per_label = Counter(zip(labels, splits))
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
