"""fetch: bring the images in as data/raw/<class>/<file>, write data/manifest.csv and
reports/fetch.json.

Sources (`data.source`):
- `synthetic`: the embedded default, cat and dog faces drawn by stages/synthetic.py;
- `url`: an archive downloaded once and checked against its pinned sha256
  (`data.url` + `data.sha256`, or `data.preset`): stages/download.py;
- `path`: a local folder, or a local .zip/.tar/.tar.gz/.tgz archive (`data.path`).

Archives are extracted safely (stages/archives.py) into a temporary folder; the images are
found whatever the top folder is called, labelled and split as the source has them
(stages/layout.py), then copied in under their labels. data/raw is built in a temporary
folder and swapped in only when complete, so a failed fetch leaves the previous data and
manifest as they were. reports/fetch.json says where the images came from and what was
skipped (hidden files, non-images) and why.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from stages import archives, download, paths, synthetic
from stages.errors import PipelineError, run_main
from stages.files import atomic_dir, atomic_path, write_json
from stages.layout import Layout, discover
from stages.manifest import build_manifest, file_sha256
from stages.params import DataParams, Params, load_params


@contextmanager
def source_folder(data: DataParams, report: dict) -> Iterator[tuple[Path, str, bool]]:
    """(folder to find the images in, how to name the source to the user, whether the folder
    is a temporary extraction whose files may be moved rather than copied)."""
    limits = archives.Limits(data.limits.max_files, data.limits.max_unpacked_mb * 2**20)
    if data.source == "url":
        url = data.archive_url
        retry = download.Retry(data.download.retries, data.download.backoff_s, data.download.timeout_s)
        archive = download.cached_archive(url, data.archive_sha256, paths.project_root() / paths.DOWNLOAD_CACHE,
                                          retry)
        report.update(url=url, preset=data.preset, sha256=archive.sha256, archive_bytes=archive.bytes,
                      downloaded=archive.downloaded)
        with archives.extracted(archive.path, paths.RAW_DIR.parent, limits, shown_as=url) as folder:
            yield folder, url, True
        return

    path, shown = Path(data.path), f"data.path = {data.path!r}"
    report.update(path=data.path)
    if path.is_dir():
        if data.sha256:
            raise PipelineError(f"data.sha256 is set but {shown} is a folder: the checksum is for archives; "
                                "set data.sha256: null")
        yield path, shown, False
        return
    if not path.is_file():
        raise PipelineError(f"{shown} is not a folder or an archive file: point it at a folder with one "
                            "sub-folder of images per class, or a .zip/.tar/.tar.gz/.tgz of one")
    if data.sha256:
        actual = file_sha256(path)
        if actual != data.sha256:
            raise PipelineError(f"sha256 mismatch for {path}:\n  expected {data.sha256} (data.sha256)\n"
                                f"  actual   {actual}\nNothing was extracted.")
    report.update(sha256=data.sha256)
    with archives.extracted(path, paths.RAW_DIR.parent, limits, shown_as=shown) as folder:
        yield folder, shown, True


def place_images(layout: Layout, out_dir: Path, move: bool) -> dict[str, str | None]:
    """Put each image at <out_dir>/<label>/<name>; returns path (as in the manifest) -> source split.

    Names that clash (two folders folded into one label, or the same name in two splits)
    get a `-2`, `-3`... suffix, in the sorted order the layout lists them, so it is stable.
    """
    placed: dict[str, str | None] = {}
    taken: set[str] = set()
    for image in layout.images:
        stem, suffix = image.path.stem, image.path.suffix
        name, n = image.path.name, 1
        while f"{image.label}/{name}".lower() in taken:  # lower: case-insensitive filesystems clash too
            n += 1
            name = f"{stem}-{n}{suffix}"
        relative = f"{image.label}/{name}"
        taken.add(relative.lower())
        (out_dir / image.label).mkdir(exist_ok=True)
        (shutil.move if move else shutil.copyfile)(image.path, out_dir / relative)
        placed[relative] = image.split
    return placed


def run(params: Params) -> pd.DataFrame:
    data = params.data
    ratios = (data.split.train, data.split.val, data.split.test)
    report: dict = {"source": data.source}
    with atomic_dir(paths.RAW_DIR) as staging:
        if data.source == "synthetic":
            synthetic.write_dataset(staging, data.synthetic.images_per_class, data.synthetic.image_size, params.seed)
            source_splits = None
        else:
            with source_folder(data, report) as (folder, shown, extracted):
                layout = discover(folder, data.classes, data.class_map, shown)
                placed = place_images(layout, staging, move=extracted)
            source_splits = placed if layout.source_splits else None
            report.update(layout_root=layout.root, source_splits=layout.source_splits, class_folders=layout.folders,
                          skipped=dict(layout.skipped), skipped_examples=layout.skipped_examples)
        manifest = build_manifest(staging, ratios, params.seed, source_splits)
    with atomic_path(paths.MANIFEST) as tmp:
        manifest.to_csv(tmp, index=False)
    counts = manifest.groupby(["label", "split"]).size().unstack(fill_value=0)
    write_json(paths.FETCH_REPORT, report | {"images": len(manifest), "counts": counts.to_dict("index")})

    skipped = sum(report.get("skipped", {}).values())
    print(f"fetch: {len(manifest)} images from '{data.source}' -> {paths.RAW_DIR}"
          + (f" ({skipped} other files skipped, see {paths.FETCH_REPORT})" if skipped else "")
          + f"\n{counts.to_string()}")
    return manifest


def main() -> None:
    run_main("fetch", lambda: run(load_params()))


if __name__ == "__main__":
    main()
