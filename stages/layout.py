"""Find the labelled images in a source folder, whatever its top folder is called.

Below any chain of single wrapper folders (`cats_and_dogs_filtered/`, `PetImages/`, ...)
one of two layouts is expected:

- split folders, `<split>/<class>/<image>`, split being `train`|`training`,
  `validation`|`valid`|`val`, `test`|`testing` (any case): the source's split is kept;
- class folders, `<class>/<image>`: the split is drawn later from `data.split`.

Labels are the class folders' names, normalised by `normalise_label` so that `Cat`,
`cat` and `cats` give one label (`cat`), then renamed by `data.class_map` where it says so.
Hidden files (`.DS_Store`, `Thumbs.db`, `desktop.ini`, dot-files), non-images (`*.txt`,
`*.py`, ...) and folders nested deeper are skipped and counted, never fatal.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from stages.errors import PipelineError
from stages.manifest import is_image_name

SPLIT_FOLDERS = {"train": "train", "training": "train", "validation": "val", "valid": "val", "val": "val",
                 "test": "test", "testing": "test"}
HIDDEN_NAMES = {"thumbs.db", "desktop.ini", "__macosx"}  # OS litter; __MACOSX: resource forks in Mac zips
MAX_EXAMPLES = 20  # skipped paths listed in the report


@dataclass(frozen=True)
class SourceImage:
    path: Path  # where it is in the source
    label: str
    split: str | None  # from the source's split folders; None: to be drawn


@dataclass
class Layout:
    root: str  # where the class (or split) folders were found, relative to the source
    images: list[SourceImage]
    folders: dict[str, str]  # class folder (relative to the source) -> label
    skipped: Counter = field(default_factory=Counter)  # why -> how many
    skipped_examples: list[str] = field(default_factory=list)

    @property
    def source_splits(self) -> list[str]:
        return sorted({image.split for image in self.images if image.split})


def normalise_label(name: str) -> str:
    """`Cat`, `cats`, `CATS` -> `cat`; `Golden Retrievers` -> `golden_retriever`.

    Lower case; runs of spaces and hyphens become `_`; a trailing `s` is dropped from names
    longer than 3 characters unless they end in `ss`, `us` or `is` (`glass`, `virus`,
    `analysis` stay). Irregular plurals (`mice`, `boxes`) need `data.class_map`.
    """
    label = re.sub(r"[\s-]+", "_", name.strip().lower())
    if len(label) > 3 and label.endswith("s") and not label.endswith(("ss", "us", "is")):
        label = label[:-1]
    return label


def label_for(folder: str, class_map: dict[str, str]) -> str:
    """data.class_map keyed by the folder's own name wins, then by its normalised label."""
    if folder in class_map:
        return class_map[folder]
    label = normalise_label(folder)
    return class_map.get(label, label)


def is_hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name.lower() in HIDDEN_NAMES


class _Scan:
    """Walks the source, keeping count of what it skips and why."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.skipped: Counter = Counter()
        self.examples: list[str] = []

    def skip(self, path: Path, why: str) -> None:
        self.skipped[why] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{path.relative_to(self.source).as_posix()} ({why})")

    def folders(self, folder: Path) -> list[Path]:
        """The visible sub-folders of `folder`; its hidden entries and files are skipped."""
        found = []
        for entry in sorted(folder.iterdir()):
            if is_hidden(entry):
                self.skip(entry, "hidden")
            elif entry.is_dir():
                found.append(entry)
            else:
                self.skip(entry, "not in a class folder")
        return found

    def images(self, folder: Path, label: str, split: str | None) -> list[SourceImage]:
        found = []
        for entry in sorted(folder.iterdir()):
            if is_hidden(entry):
                self.skip(entry, "hidden")
            elif entry.is_dir():
                self.skip(entry, "nested folder")
            elif not entry.is_file() or not is_image_name(entry):
                self.skip(entry, "not an image")
            else:
                found.append(SourceImage(entry, label, split))
        return found


def discover(source: Path, classes: list[str] | None, class_map: dict[str, str], shown_as: str) -> Layout:
    """The labelled images under `source` (see module doc); `shown_as` names it in errors."""
    scan = _Scan(source)
    root, subfolders = source, scan.folders(source)
    # Wrapper folders: a single sub-folder that is neither a split nor holding images itself.
    while len(subfolders) == 1 and subfolders[0].name.lower() not in SPLIT_FOLDERS:
        root, subfolders = subfolders[0], scan.folders(subfolders[0])

    splits = {f: SPLIT_FOLDERS[f.name.lower()] for f in subfolders if f.name.lower() in SPLIT_FOLDERS}
    if splits:
        if "train" not in splits.values():
            raise PipelineError(f"{shown_as} has split folders ({', '.join(f.name for f in splits)}) but no "
                                "train folder: add one, or remove the split folders to split by data.split")
        for folder in subfolders:
            if folder not in splits:
                scan.skip(folder, "not a split folder")
        class_folders = [(c, split) for f, split in splits.items() for c in scan.folders(f)]
    else:
        class_folders = [(c, None) for c in subfolders]

    images, folders = [], {}
    for folder, split in class_folders:
        label = label_for(folder.name, class_map)
        folders[folder.relative_to(source).as_posix()] = label
        images += scan.images(folder, label, split)

    labels = sorted({image.label for image in images})
    if classes is not None:
        missing = sorted(set(classes) - set(labels))
        if missing:
            raise PipelineError(
                f"data.classes lists {missing} but {shown_as} has no such class (labels found: "
                f"{labels or 'none'}; a label is the folder name in lower case and singular, or data.class_map's)")
        for image in images:
            if image.label not in classes:
                scan.skip(image.path, "class not in data.classes")
        images = [image for image in images if image.label in classes]
        labels = sorted(classes)
    where = root.relative_to(source).as_posix()
    if len(labels) < 2:
        looked = f"in {where}" if where != "." else "at its top"
        raise PipelineError(
            f"{shown_as} needs at least 2 class sub-folders holding images (<class>/<image>.jpg, or "
            f"<split>/<class>/<image>.jpg); found {labels or 'none'} (looked {looked})")
    return Layout(where, images, folders, scan.skipped, scan.examples)
