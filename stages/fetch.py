"""fetch: bring the images in as data/raw/<class>/<file> and write data/manifest.csv.

Sources (`data.source`):
- `synthetic`: the embedded default, cat and dog faces drawn by stages/synthetic.py;
- `path`: a local folder with one sub-folder per class (`data.path`), copied in.

data/raw is built in a temporary folder and swapped in only when complete, so a failed
fetch leaves the previous data and manifest as they were.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from stages import paths, synthetic
from stages.errors import PipelineError, run_main
from stages.files import atomic_dir, atomic_path
from stages.manifest import build_manifest, is_image_name
from stages.params import Params, load_params


def find_class_folders(source: Path, classes: list[str] | None) -> dict[str, Path]:
    """The class sub-folders of `source`, restricted to `classes` when given."""
    if not source.is_dir():
        raise PipelineError(f"data.path = {str(source)!r} is not a folder: point it at a folder "
                            "with one sub-folder of images per class")
    found = {d.name: d for d in sorted(source.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    if classes is not None:
        missing = sorted(set(classes) - set(found))
        if missing:
            raise PipelineError(f"data.classes lists {missing} but {source} has no such sub-folder "
                                f"(found: {sorted(found) or 'none'})")
        found = {name: found[name] for name in classes}
    with_images = {name: d for name, d in found.items() if any(is_image_name(p) for p in d.iterdir())}
    if len(with_images) < 2:
        raise PipelineError(f"{source} needs at least 2 class sub-folders holding images "
                            f"(<class>/<image>.jpg); found {sorted(with_images) or 'none'}")
    return with_images


def copy_class_folders(folders: dict[str, Path], out_dir: Path) -> int:
    """Copy the image files of each class folder; returns how many other files were skipped."""
    skipped = 0
    for label, folder in folders.items():
        (out_dir / label).mkdir(parents=True)
        for path in sorted(folder.iterdir()):
            if path.is_file() and is_image_name(path):
                shutil.copyfile(path, out_dir / label / path.name)
            else:
                skipped += 1
    return skipped


def run(params: Params) -> pd.DataFrame:
    data = params.data
    ratios = (data.split.train, data.split.val, data.split.test)
    with atomic_dir(paths.RAW_DIR) as staging:
        if data.source == "synthetic":
            synthetic.write_dataset(staging, data.synthetic.images_per_class, data.synthetic.image_size, params.seed)
        else:
            skipped = copy_class_folders(find_class_folders(Path(data.path), data.classes), staging)
            if skipped:
                print(f"fetch: skipped {skipped} non-image files or sub-folders in {data.path}")
        manifest = build_manifest(staging, ratios, params.seed)
    with atomic_path(paths.MANIFEST) as tmp:
        manifest.to_csv(tmp, index=False)
    counts = manifest.groupby(["label", "split"]).size().unstack(fill_value=0)
    print(f"fetch: {len(manifest)} images from '{data.source}' -> {paths.RAW_DIR}\n{counts.to_string()}")
    return manifest


def main() -> None:
    run_main("fetch", lambda: run(load_params()))


if __name__ == "__main__":
    main()
