"""validate: the data contract for the image folders (Great Expectations 1.x), with quarantine.

read -> scan -> contract -> report -> write:

1. read data/manifest.csv (fetch's rows: path, label, split, bytes, sha256);
2. scan every image in worker threads (stages/images.py): real format (from the bytes),
   width, height, mode, a full decode, a perceptual hash. An image train cannot read as it
   is (EXIF-rotated, CMYK, alpha, palette, 16-bit, grayscale, WEBP...) gets an RGB PNG copy
   under data/normalized/; data/raw is never modified;
3. check the contract (`contract()`, a GX expectation suite built in code): per-image rules
   over every row, then counts and balance over the rows that pass them;
4. report: reports/validation.json (DVC metrics: counts per reason, class and split),
   reports/quarantine.csv (every file set aside or flagged, and why), GX Data Docs in
   reports/data_docs/;
5. write data/validated.csv: the clean rows, with `file`, the path train reads.

A row that breaks a per-image rule is quarantined (`validate.on_corrupt: quarantine`: left
where it is, listed, left out of data/validated.csv) or stops the stage (`fail`). Near
duplicates follow `validate.on_near_duplicate`. Count and balance rules always stop the
stage: they describe the dataset, not one file. Nothing is half-written: every output is
replaced atomically, and data/normalized and data/validated.csv only when the contract holds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from stages import paths
from stages.errors import PipelineError, run_main
from stages.files import atomic_dir, atomic_path, write_json
from stages.images import HASH_BITS, SCAN_PROBLEMS, UNDECODABLE, extension_matches, hamming, scan_file
from stages.manifest import SPLITS, read_manifest
from stages.params import Params, ValidateParams, load_params

MAX_LISTED = 10  # offending files (or groups) named per failed expectation
SCAN_CHUNK = 32  # images per scan task: few futures for a large folder, a smooth progress bar
QUARANTINE, REPORT, FAIL = "quarantine", "report", "fail"
SPLIT_ORDER = {name: i for i, name in enumerate(SPLITS)}  # leakage: the copy in the later split is the leak
REFETCH = "rerun fetch (dvc repro -f fetch): the manifest itself is broken"
ON_CORRUPT = "validate.on_corrupt"
# Columns of data/validated.csv: the manifest's, then `file` (what train reads), then the scan's.
VALIDATED_COLUMNS = ["path", "label", "split", "bytes", "sha256", "file", "format", "width", "height", "mode",
                     "channels", "orientation", "normalized", "phash"]


# ---------------------------------------------------------------------------------------
# scan


def scan_images(manifest: pd.DataFrame, raw_dir: Path, copies: Path, max_pixels: int, workers: int) -> pd.DataFrame:
    """The manifest with what each file really is; normalised copies are written under `copies`.

    Threads, not processes: Pillow decodes, resizes and encodes with the GIL released, and
    the Python around it is a small part of each image. On the 2-core machine
    (benchmarks/validate_throughput.py --scan-only, 500x375 JPEGs) 2 threads scanned 1.8x
    as fast as one, and 2 processes within a few percent of 2 threads: not worth a process
    pool's start-up, its re-import of the main module and the pickling of every result.
    """
    jobs = [(raw_dir / p, copies / f"{p}.png") for p in manifest["path"]]
    chunks = [jobs[i:i + SCAN_CHUNK] for i in range(0, len(jobs), SCAN_CHUNK)]
    found: list[dict] = []
    with warnings.catch_warnings():
        # Pillow's DecompressionBombWarning: max_pixels (<= Pillow's limit) rejects those images.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with ThreadPoolExecutor(max(1, workers)) as pool, \
                tqdm(total=len(jobs), desc="validate: scan", unit="img", disable=None) as bar:
            for results in pool.map(partial(_scan_chunk, max_pixels=max_pixels), chunks):
                found += results
                bar.update(len(results))
    scanned = pd.DataFrame(found, index=manifest.index)
    images = manifest.drop(columns=[c for c in scanned.columns if c in manifest.columns]).join(scanned)
    normalised = images["normalized"] != ""
    images["file"] = [(paths.NORMALIZED_DIR / f"{p}.png" if n else raw_dir / p).as_posix()
                      for p, n in zip(images["path"], normalised, strict=True)]
    return images


def _scan_chunk(jobs: list[tuple[Path, Path]], max_pixels: int) -> list[dict]:
    return [scan_file(source, target, max_pixels) for source, target in jobs]


def worker_count(requested: int) -> int:
    """validate.workers, 0 = every core this process may run on."""
    if requested:
        return requested
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def find_leaks(images: pd.DataFrame, similarity: float) -> pd.DataFrame:
    """Mark rows that copy a file of an earlier split (train < val < test).

    exact_duplicate_of: the earliest file with the same sha256, when it is in an earlier
    split (copies within one split are not leakage). near_duplicate_of (+ _similarity): the
    most similar earlier-split image by perceptual hash, when the share of equal hash bits
    is >= `similarity` and the bytes differ. The earliest copy is never marked: it stays.
    """
    images = images.copy()
    order = images["split"].map(SPLIT_ORDER)
    ranked = images.assign(_order=order).sort_values(["_order", "path"])
    first_path = ranked.groupby("sha256")["path"].transform("first")
    first_order = ranked.groupby("sha256")["_order"].transform("first")
    leaks = set(ranked.index[ranked["_order"] > first_order])
    images["exact_duplicate_of"] = [first_path[i] if i in leaks else None for i in images.index]

    images["near_duplicate_of"] = pd.Series(None, index=images.index, dtype=object)
    images["near_duplicate_similarity"] = np.nan
    hashed = images["phash"].notna() & order.notna() & images["exact_duplicate_of"].isna()
    bits = HASH_BITS * HASH_BITS
    for split in SPLITS[1:]:
        later = images.index[hashed & (images["split"] == split)]
        earlier = images.index[hashed & (order < SPLIT_ORDER[split])]
        if len(later) == 0 or len(earlier) == 0:
            continue
        pool = _hashes(images.loc[earlier, "phash"])
        step = max(1, 2**22 // len(pool))  # ~4M distances (a few 32 MB arrays) at a time, whatever the size
        for start in range(0, len(later), step):
            rows = later[start:start + step]
            distances = hamming(_hashes(images.loc[rows, "phash"]), pool)
            best = distances.argmin(axis=1)
            score = 1.0 - distances[np.arange(len(rows)), best] / bits
            near = score >= similarity
            images.loc[rows[near], "near_duplicate_of"] = images.loc[earlier[best[near]], "path"].to_numpy()
            images.loc[rows[near], "near_duplicate_similarity"] = score[near]
    return images


def _hashes(column: pd.Series) -> np.ndarray:
    return np.array([int(h, 16) for h in column], dtype=np.uint64)


# ---------------------------------------------------------------------------------------
# contract


def expect(expectation_type, intent: str, reason: str, param: str, action: str, frame: str = "images", **kwargs):
    """A GX expectation that carries its intent (shown in Data Docs as notes) and, in meta,
    what a failure means: the reason it is reported under, the param that changes the
    outcome, the action (quarantine the rows | report them | fail) and the frame it checks."""
    return expectation_type(**kwargs, notes=f"{intent} On failure: {action}. To change: `{param}`.",
                            meta={"reason": reason, "param": param, "action": action, "frame": frame})


def contract(classes: list[str], v: ValidateParams) -> list:
    """The data contract, in the order reasons are assigned (a row's first failure is its reason).

    Frames: `images` (one row per file, every row), then over the rows that pass the
    per-image rules: `classes` (label, images, imbalance_ratio), `splits` (split, images),
    `class_splits` (split, label, images). Nulls are skipped by GX's column-value
    expectations: a value the scan could not measure (the width of a 0-byte file) is
    judged by the rule that explains why (`empty`), not counted again.
    """
    import great_expectations.expectations as gxe

    row, near = v.on_corrupt, v.on_near_duplicate
    rules = [
        # The manifest itself: a row without these, or a path listed twice, means fetch must rerun.
        *(expect(gxe.ExpectColumnValuesToNotBeNull, f"Every manifest row has a {column}.", "incomplete_row",
                 REFETCH, FAIL, column=column) for column in ("path", "label", "split", "sha256")),
        expect(gxe.ExpectColumnValuesToBeUnique, "One row per file: a path listed twice would be trained on "
               "twice, or sit in two splits.", "duplicate_path", REFETCH, FAIL, column="path"),
        expect(gxe.ExpectColumnValuesToBeInSet, "Every row is in train, val or test.", "unknown_split", REFETCH, FAIL,
               column="split", value_set=list(SPLITS)),

        # Per image (validate.on_corrupt: quarantine the row | fail the stage).
        expect(gxe.ExpectColumnValuesToBeInSet, f"Labels are the expected classes {classes} (data.classes, or "
               "every class folder).", "unknown_label", "data.classes", row, column="label", value_set=classes),
        expect(gxe.ExpectColumnValuesToBeInSet, "The listed file exists.", "missing", ON_CORRUPT, row,
               column="exists", value_set=[True]),
        expect(gxe.ExpectColumnValuesToBeBetween, "The file has bytes (scraped sets hold 0-byte files).", "empty",
               ON_CORRUPT, row, column="bytes", min_value=1),
        expect(gxe.ExpectColumnValuesToBeInSet, "The bytes are an image format Pillow knows (a text file named "
               ".jpg is not one).", "not_an_image", ON_CORRUPT, row, column="identified", value_set=[True]),
        expect(gxe.ExpectColumnValuesToBeBetween, f"Width x height from the header is at most "
               f"validate.max_pixels = {v.max_pixels:,}: larger images are never decoded, so a decompression bomb "
               "cannot exhaust memory.", "too_many_pixels", "validate.max_pixels", row,
               column="pixels", max_value=v.max_pixels),
        expect(gxe.ExpectColumnValuesToBeInSet, "Every pixel decodes (Image.open reads only the header; a "
               "truncated JPEG fails here).", UNDECODABLE, ON_CORRUPT, row, column="decodable", value_set=[True]),
        expect(gxe.ExpectColumnValuesToBeInSet, f"The real format, read from the bytes, is one of "
               f"validate.allowed_formats = {v.allowed_formats}.", "format_not_allowed", "validate.allowed_formats",
               row, column="format", value_set=list(v.allowed_formats)),
        expect(gxe.ExpectColumnValuesToBeBetween, f"At least validate.min_width = {v.min_width} pixels wide: "
               "smaller images hold too little to learn from once upscaled.", "too_small", "validate.min_width", row,
               column="width", min_value=v.min_width),
        expect(gxe.ExpectColumnValuesToBeBetween, f"At least validate.min_height = {v.min_height} pixels high.",
               "too_small", "validate.min_height", row, column="height", min_value=v.min_height),
        expect(gxe.ExpectColumnValuesToBeNull, "Exact leakage: no file's bytes (sha256) are in two splits; the copy "
               "in the later split breaks the rule, the earliest stays.", "duplicate_across_splits", ON_CORRUPT, row,
               column="exact_duplicate_of"),
        # Near leakage (validate.on_near_duplicate: report | quarantine | fail).
        expect(gxe.ExpectColumnValuesToBeNull, "Near leakage: no image's perceptual hash shares at least "
               f"validate.near_duplicate_similarity = {v.near_duplicate_similarity} of its bits with an image of an "
               "earlier split (re-encoded, resized or lightly edited copies).", "near_duplicate_across_splits",
               "validate.near_duplicate_similarity (or validate.on_near_duplicate)", near,
               column="near_duplicate_of"),

        # Counts over the rows that pass the per-image rules: always fail the stage.
        expect(gxe.ExpectColumnValuesToBeBetween, f"Every class keeps at least validate.min_images_per_class = "
               f"{v.min_images_per_class} images (all splits together) to train and test on.",
               "too_few_images_per_class", "validate.min_images_per_class", FAIL, frame="classes",
               column="images", min_value=v.min_images_per_class),
        expect(gxe.ExpectColumnValuesToBeBetween, f"No class is more than validate.max_imbalance_ratio = "
               f"{v.max_imbalance_ratio} times smaller than the largest: the model would learn the majority class.",
               "class_imbalance", "validate.max_imbalance_ratio", FAIL, frame="classes",
               column="imbalance_ratio", max_value=v.max_imbalance_ratio),
        expect(gxe.ExpectColumnValuesToBeBetween, "Every split (train, val, test) has images.", "empty_split",
               "data.split", FAIL, frame="splits", column="images", min_value=1),
        expect(gxe.ExpectColumnValuesToBeBetween, f"Every class has at least validate.min_images_per_split = "
               f"{v.min_images_per_split} images in each split, so each is trained, tuned and tested on.",
               "too_few_images_per_split", "validate.min_images_per_split", FAIL, frame="class_splits",
               column="images", min_value=v.min_images_per_split),
    ]
    for order, rule in enumerate(rules):
        rule.meta["order"] = order  # GX reorders a suite's results; reasons follow this order
    return rules


def count_frames(clean: pd.DataFrame, classes: list[str]) -> dict[str, pd.DataFrame]:
    """The small aggregate frames the count rules check, zero-filled so an emptied class or split shows."""
    per_class = clean["label"].value_counts().reindex(classes, fill_value=0)
    largest = per_class.max()
    classes_frame = pd.DataFrame({"label": classes, "images": per_class.to_numpy()})
    # No ratio (null, skipped by GX) for an empty class: the min-count rule reports it; infinity would say less.
    classes_frame["imbalance_ratio"] = [largest / n if n else None for n in classes_frame["images"]]
    per_split = clean["split"].value_counts().reindex(list(SPLITS), fill_value=0)
    cells = clean.groupby(["split", "label"]).size()
    grid = pd.MultiIndex.from_product([list(SPLITS), classes], names=["split", "label"])
    return {
        "classes": classes_frame,
        "splits": pd.DataFrame({"split": list(SPLITS), "images": per_split.to_numpy()}),
        "class_splits": cells.reindex(grid, fill_value=0).rename("images").reset_index(),
    }


# ---------------------------------------------------------------------------------------
# running the contract with Great Expectations


@dataclass
class Outcome:
    """One expectation's result, with what its failure means."""

    expectation: str  # e.g. expect_column_values_to_be_between(width)
    frame: str
    reason: str
    param: str
    action: str
    success: bool
    threshold: dict
    checked: int  # rows of the frame
    rows: list = field(default_factory=list)  # index labels of the offending rows of the frame
    observed: object = None  # GX's observed value, for aggregate expectations
    order: int = 0  # position in the contract


@contextmanager
def gx_context() -> Iterator:
    """A file-backed GX context in a temporary folder: it stores results so Data Docs can render them."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    with tempfile.TemporaryDirectory(prefix="validate-gx-") as root:
        context = gx.get_context(mode="file", project_root_dir=root)
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        context.data_sources.add_pandas(name="manifest")
        yield context


def check(context, name: str, frame: pd.DataFrame, expectations: list) -> list[Outcome]:
    """Validate `frame` against `expectations` as suite `name`; the results are stored for Data Docs."""
    import great_expectations as gx

    batch = context.data_sources.get("manifest").add_dataframe_asset(name=name)
    definition = context.validation_definitions.add(gx.ValidationDefinition(
        name=name, data=batch.add_batch_definition_whole_dataframe("all"),
        suite=context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))))
    # COMPLETE: the index of every offending row, which is how a row learns its reason.
    result = definition.run(batch_parameters={"dataframe": frame}, result_format="COMPLETE")
    outcomes = []
    for item in result.results:
        config, details = item.expectation_config, item.result or {}
        error = _gx_exception(item.exception_info)
        if error:  # a broken contract (a column the frame lacks...): a bug here, not bad data
            raise RuntimeError(f"GX could not evaluate {config.type}({config.kwargs.get('column')}): {error}")
        outcomes.append(Outcome(
            expectation=f"{config.type}({config.kwargs.get('column')})", frame=name,
            reason=config.meta["reason"], param=config.meta["param"], action=config.meta["action"],
            success=bool(item.success), checked=len(frame),
            threshold={k: _plain(v) for k, v in config.kwargs.items()
                       if k in ("min_value", "max_value", "value_set") and v is not None},
            rows=list(details.get("unexpected_index_list") or []), observed=_plain(details.get("observed_value")),
            order=config.meta["order"]))
    return sorted(outcomes, key=lambda o: o.order)


def _gx_exception(info) -> str | None:
    """GX reports an expectation that could not run as exception_info, flat or keyed by metric."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    return next((found for value in info.values() if (found := _gx_exception(value))), None)


def _plain(value):
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def copy_data_docs(context, target: Path) -> None:
    """Render the stored results to HTML and replace `target` with the site."""
    context.build_data_docs()
    site = Path(context.root_directory) / "uncommitted" / "data_docs" / "local_site"
    with atomic_dir(target) as staging:
        # GX ships two demo GIFs (3.3 of the site's 4.3 MB) that no rendered page shows.
        shutil.copytree(site, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.gif"))


# ---------------------------------------------------------------------------------------
# which rows are set aside, and why


def flag_rows(images: pd.DataFrame, outcomes: list[Outcome], v: ValidateParams) -> pd.DataFrame:
    """One row per file that breaks a per-image rule: action (quarantined | reported | failed),
    reason (its first failure, in contract order, among those with that action), detail, every reason."""
    broken: dict[object, list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.frame == "images" and not outcome.success:
            for index in outcome.rows:
                broken.setdefault(index, []).append(outcome)
    rows = []
    for index, failures in broken.items():
        actions = {f.action for f in failures}
        action = FAIL if FAIL in actions else QUARANTINE if QUARANTINE in actions else REPORT
        first = next(f for f in failures if f.action == action)
        record = images.loc[index]
        rows.append({"path": record["path"], "label": record["label"], "split": record["split"],
                     "action": {FAIL: "failed", QUARANTINE: "quarantined", REPORT: "reported"}[action],
                     "reason": first.reason, "detail": describe(record, first.reason, v),
                     "reasons": ";".join(dict.fromkeys(f.reason for f in failures))})
    columns = ["path", "label", "split", "action", "reason", "detail", "reasons"]
    flagged = pd.DataFrame(rows, index=list(broken), columns=columns)
    return flagged.sort_values(["action", "reason", "path"]) if len(flagged) else flagged


def describe(row: pd.Series, reason: str, v: ValidateParams) -> str:
    """What is wrong with one file, in words a user can act on."""
    if reason in SCAN_PROBLEMS:
        return str(row["error"])
    size = f"{row['width']:.0f}x{row['height']:.0f}" if pd.notna(row.get("width")) else "?"
    return {
        "unknown_label": f"label {row['label']!r} is not a class (data.classes)",
        "format_not_allowed": f"real format {row['format']} not in validate.allowed_formats",
        "too_small": f"{size} < validate.min_width x min_height = {v.min_width}x{v.min_height}",
        "duplicate_across_splits": f"same bytes as {row['exact_duplicate_of']} in an earlier split",
        "near_duplicate_across_splits": f"perceptual-hash similarity {row['near_duplicate_similarity']:.3f} "
                                        f"to {row['near_duplicate_of']} in an earlier split",
        "duplicate_path": "path listed more than once in the manifest",
        "unknown_split": f"split {row['split']!r} is not train, val or test",
    }.get(reason, reason)


# ---------------------------------------------------------------------------------------
# report


def summary(images: pd.DataFrame, clean: pd.DataFrame, flagged: pd.DataFrame, outcomes: list[Outcome],
            classes: list[str], v: ValidateParams) -> dict:
    """reports/validation.json: numbers (DVC shows them in `dvc exp show`) and, in lists, the details."""
    reasons = dict.fromkeys(sorted({o.reason for o in outcomes if o.frame == "images"}), 0)
    quarantined = flagged[flagged["action"] != "reported"]
    reasons.update(quarantined["reason"].value_counts().to_dict())
    failed = [o for o in outcomes if not o.success and o.action == FAIL]
    return {
        "success": not failed,
        "images": len(images),
        "clean": len(clean),
        "quarantined": int((flagged["action"] == "quarantined").sum()),
        "reasons": {k: int(n) for k, n in reasons.items()},  # per reason, the rows set aside (or failing)
        "undecodable": int((images["decodable"] == False).sum()),  # noqa: E712 (None = not attempted)
        "near_duplicates": int(images["near_duplicate_of"].notna().sum()),
        "normalized": int((clean["normalized"] != "").sum()),
        "format_not_extension": int(sum(not extension_matches(path, format)
                                        for path, format in zip(clean["path"], clean["format"], strict=True))),
        "per_class_split": {label: {s: int(n) for s, n in counts.items()}
                            for label, counts in _per_class_split(clean, classes).iterrows()},
        "formats": {k: int(n) for k, n in clean["format"].value_counts().sort_index().items()},
        "classes": classes,
        "on_corrupt": v.on_corrupt,
        "failed": [f"{o.expectation} [{o.reason}]" for o in failed],
        "expectations": [_outcome_json(o, images) for o in outcomes],
    }


def _per_class_split(clean: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    table = clean.groupby(["label", "split"]).size().unstack(fill_value=0)
    return table.reindex(index=classes, columns=list(SPLITS), fill_value=0)


def _outcome_json(o: Outcome, images: pd.DataFrame) -> dict:
    return {"expectation": o.expectation, "frame": o.frame, "reason": o.reason, "param": o.param,
            "action": o.action, "success": o.success, "threshold": o.threshold, "checked": o.checked,
            "unexpected_count": len(o.rows), "observed_value": o.observed,
            "examples": [images.loc[i, "path"] for i in o.rows[:MAX_LISTED]] if o.frame == "images" else []}


def failure_message(failed: list[Outcome], frames: dict[str, pd.DataFrame], flagged: pd.DataFrame) -> str:
    """Each failed expectation: its name, what was observed, the threshold, up to MAX_LISTED
    offending files (or classes/splits) and the param to change."""
    lines = [f"{len(failed)} expectation(s) of the data contract failed (all of it: {paths.VALIDATION_REPORT}, "
             f"{paths.QUARANTINE}, {paths.DATA_DOCS}/index.html):"]
    for o in failed:
        frame = frames[o.frame]
        threshold = ", ".join(f"{k}={_fmt(v)}" for k, v in o.threshold.items())
        unit = "files" if o.frame == "images" else o.frame.replace("_", "/")
        lines.append(f"  - {o.expectation} [{o.reason}]: {len(o.rows)} of {o.checked} {unit} break it "
                     f"(threshold: {threshold or 'n/a'})")
        for index in o.rows[:MAX_LISTED]:
            if o.frame == "images":
                detail = flagged.loc[index, "detail"] if index in flagged.index else ""
                lines.append(f"      {paths.RAW_DIR / str(frame.loc[index, 'path'])}: {o.reason}: {detail}")
            else:
                lines.append("      " + ", ".join(f"{k}={_fmt(v)}" for k, v in frame.loc[index].items()))
        if len(o.rows) > MAX_LISTED:
            lines.append(f"      ... and {len(o.rows) - MAX_LISTED} more")
        change = o.param
        if o.frame == "images" and o.action == FAIL and o.param != REFETCH:
            change += ("" if o.param == ON_CORRUPT else f", or {ON_CORRUPT}") + ": quarantine to set these files " \
                      "aside and train on the rest"
        lines.append(f"      change: {change}")
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.3g}"
    return str(value)


# ---------------------------------------------------------------------------------------
# the stage


def expected_classes(params: Params, raw_dir: Path) -> list[str]:
    """The class set: `data.classes` when given, else the class folders fetch created."""
    if params.data.classes is not None:
        return sorted(params.data.classes)
    return sorted(d.name for d in raw_dir.iterdir() if d.is_dir() and not d.name.startswith("."))


def run(params: Params) -> pd.DataFrame:
    v = params.validation
    manifest = read_manifest(paths.MANIFEST, produced_by="fetch")
    if "sha256" not in manifest.columns:
        raise PipelineError(f"{paths.MANIFEST} lacks the sha256 column: rerun `dvc repro -f fetch`")
    classes = expected_classes(params, paths.RAW_DIR)

    with atomic_dir(paths.NORMALIZED_DIR) as copies:
        started, workers = time.perf_counter(), worker_count(v.workers)
        images = scan_images(manifest.reset_index(drop=True), paths.RAW_DIR, copies, v.max_pixels, workers)
        scanned = f"scanned {len(images)} images in {time.perf_counter() - started:.2f} s ({workers} threads)"
        images = find_leaks(images, v.near_duplicate_similarity)
        rules = contract(classes, v)
        with gx_context() as context:
            outcomes = check(context, "images", images, [r for r in rules if r.meta["frame"] == "images"])
            flagged = flag_rows(images, outcomes, v)
            clean = images.drop(index=flagged.index[flagged["action"] != "reported"])
            frames = {"images": images, **count_frames(clean, classes)}
            for name in ("classes", "splits", "class_splits"):
                outcomes += check(context, name, frames[name], [r for r in rules if r.meta["frame"] == name])
            copy_data_docs(context, paths.DATA_DOCS)

        report = summary(images, clean, flagged, outcomes, classes, v)
        write_json(paths.VALIDATION_REPORT, report)
        with atomic_path(paths.QUARANTINE) as tmp:
            flagged.to_csv(tmp, index=False)
        failed = [o for o in outcomes if not o.success and o.action == FAIL]
        if failed:
            raise PipelineError(failure_message(failed, frames, flagged))
        for path in images.loc[images.index.difference(clean.index), "path"]:
            (copies / f"{path}.png").unlink(missing_ok=True)  # no copies of set-aside files

    # Integers again: a column with a null in a set-aside row was read as floats.
    integers = ("bytes", "width", "height", "channels", "orientation")
    validated = clean[VALIDATED_COLUMNS].astype(dict.fromkeys(integers, int))
    with atomic_path(paths.VALIDATED) as tmp:
        validated.to_csv(tmp, index=False)
    print(_story(report, outcomes, scanned))
    return validated


def _story(report: dict, outcomes: list[Outcome], scanned: str) -> str:
    reasons = ", ".join(f"{k} {n}" for k, n in report["reasons"].items() if n) or "none"
    warned = [o for o in outcomes if not o.success and o.action == REPORT]
    lines = [f"validate: {report['clean']} of {report['images']} images pass the contract "
             f"({len(outcomes)} expectations) -> {paths.VALIDATED}",
             f"  {scanned}",
             f"  quarantined {report['quarantined']} ({reasons}) -> {paths.QUARANTINE}",
             f"  normalised {report['normalized']} -> {paths.NORMALIZED_DIR}; report {paths.VALIDATION_REPORT}, "
             f"Data Docs {paths.DATA_DOCS}/index.html"]
    lines += [f"  warning: {o.expectation} [{o.reason}]: {len(o.rows)} file(s), listed in {paths.QUARANTINE} "
              f"(validate.on_near_duplicate: report)" for o in warned]
    return "\n".join(lines)


def main() -> None:
    run_main("validate", lambda: run(load_params()))


if __name__ == "__main__":
    main()
