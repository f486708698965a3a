"""The dataset manifest: one row per image (path, label, split, bytes, sha256).

`path` is relative to data/raw, so the manifest does not depend on where the repository
lives. The split is stratified by label and seeded, so the same files and seed always give
the same split whatever order the filesystem lists them in. When the source came with its
own split, that split is kept and only the splits it lacks are carved out of its train
images, the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stages.errors import PipelineError

COLUMNS = ["path", "label", "split", "bytes", "sha256"]
SPLITS = ("train", "val", "test")
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}


def is_image_name(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def split_counts(n: int, ratios: Sequence[float]) -> list[int]:
    """How many of `n` items go to each split: val and test rounded, at least one each
    when there are enough items (and their ratio is not 0), train takes the rest."""
    _, val_ratio, test_ratio = ratios
    n_val = max(1, round(n * val_ratio)) if n >= 3 and val_ratio > 0 else 0
    n_test = max(1, round(n * test_ratio)) if n >= 3 and test_ratio > 0 else 0
    return [n - n_val - n_test, n_val, n_test]


def stratified_split(labels: Sequence[str], ratios: Sequence[float], seed: int) -> list[str]:
    """Assign each item a split, per label in the given ratios, shuffled by `seed`."""
    splits = [""] * len(labels)
    for label_index, label in enumerate(sorted(set(labels))):
        members = [i for i, item in enumerate(labels) if item == label]
        order = np.random.default_rng([seed, label_index]).permutation(len(members))
        counts = split_counts(len(members), ratios)
        names = [name for name, count in zip(SPLITS, counts, strict=True) for _ in range(count)]
        for position, name in zip(order, names, strict=True):
            splits[members[position]] = name
    return splits


def keep_source_split(labels: Sequence[str], source: Sequence[str], ratios: Sequence[float],
                      seed: int) -> list[str]:
    """The source's own split (`train`/`val`/`test` per item), with each split it lacks
    carved out of its train items: `ratios`' share of them, stratified and seeded."""
    present = set(source)
    val = ratios[1] if "val" not in present else 0.0
    test = ratios[2] if "test" not in present else 0.0
    splits = list(source)
    if val or test:
        train = [i for i, split in enumerate(source) if split == "train"]
        carved = stratified_split([labels[i] for i in train], (1.0 - val - test, val, test), seed)
        for i, split in zip(train, carved, strict=True):
            splits[i] = split
    return splits


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_manifest(raw_dir: Path, ratios: Sequence[float], seed: int,
                   source_splits: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Scan `<raw_dir>/<label>/<file>` and return the manifest, sorted by path.

    `source_splits` (path -> split), when given, is the source's own split to keep.
    """
    files = sorted(
        p for p in raw_dir.glob("*/*") if p.is_file() and is_image_name(p) and not p.parent.name.startswith(".")
    )
    paths = [p.relative_to(raw_dir).as_posix() for p in files]
    labels = [p.parent.name for p in files]
    if source_splits is None:
        splits = stratified_split(labels, ratios, seed)
    else:
        splits = keep_source_split(labels, [source_splits[p] for p in paths], ratios, seed)
    return pd.DataFrame(
        {
            "path": paths,
            "label": labels,
            "split": splits,
            "bytes": [p.stat().st_size for p in files],
            "sha256": [file_sha256(p) for p in files],
        },
        columns=COLUMNS,
    )


def read_manifest(path: Path, produced_by: str) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype={"path": str, "label": str, "split": str})
    except FileNotFoundError:
        raise PipelineError(f"{path} not found: run the `{produced_by}` stage first (dvc repro)") from None
    missing = [c for c in ("path", "label", "split") if c not in frame.columns]
    if missing:
        raise PipelineError(f"{path} lacks columns {missing}: rerun `dvc repro -f {produced_by}`")
    return frame


def digest(frame: pd.DataFrame) -> str:
    """A short content digest of the manifest: same files, labels and split -> same digest."""
    rows = frame.sort_values("path")[[c for c in COLUMNS if c in frame.columns]].to_csv(index=False)
    return hashlib.sha256(rows.encode()).hexdigest()[:16]
