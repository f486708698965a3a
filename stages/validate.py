"""validate: a Great Expectations data contract over the manifest and the image files.

Every image is opened and fully decoded (not just its header); the results become columns
of the manifest, then a GX 1.x expectation suite checks the contract. The stage fails,
naming each failed expectation with what it saw, when the data breaks the contract; on
success it writes data/validated.csv (the rows train uses) and reports/validation.json.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from PIL import Image

from stages import paths
from stages.errors import PipelineError, run_main
from stages.files import atomic_path, write_json
from stages.manifest import SPLITS, read_manifest
from stages.params import Params, load_params

MAX_LISTED = 10  # offending values shown per failed expectation


def inspect_image(path: Path) -> dict:
    """exists, decodable (full decode), format, width, height and the decode error if any."""
    if not path.is_file():
        return {"exists": False, "decodable": False, "format": "", "width": 0, "height": 0, "error": "missing"}
    try:
        with Image.open(path) as image:
            image.load()  # decodes every pixel: catches truncated files that open() accepts
            return {"exists": True, "decodable": True, "format": image.format or "",
                    "width": image.width, "height": image.height, "error": ""}
    except Exception as error:  # Pillow raises many types for bad files; all mean "not decodable"
        return {"exists": True, "decodable": False, "format": "", "width": 0, "height": 0,
                "error": f"{type(error).__name__}: {error}"}


def scan_images(manifest: pd.DataFrame, raw_dir: Path) -> pd.DataFrame:
    """The manifest with the inspection columns added (threads: Pillow decodes outside the GIL)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        found = list(pool.map(inspect_image, (raw_dir / p for p in manifest["path"])))
    return pd.concat([manifest.reset_index(drop=True), pd.DataFrame(found)], axis=1)


def expected_classes(params: Params, raw_dir: Path) -> list[str]:
    """The class set: `data.classes` when given, else the class folders fetch created."""
    if params.data.classes is not None:
        return sorted(params.data.classes)
    return sorted(d.name for d in raw_dir.iterdir() if d.is_dir() and not d.name.startswith("."))


def class_counts(images: pd.DataFrame) -> pd.DataFrame:
    return images.groupby("label").size().rename("images").reset_index()


def contract(classes: list[str], min_per_class: int) -> dict[str, list]:
    """The data contract: GX expectations over image rows and over per-class counts."""
    import great_expectations.expectations as gxe

    images = [gxe.ExpectColumnValuesToNotBeNull(column=column) for column in ("path", "label", "split")]
    images += [
        # Only the classes fetch found (or data.classes lists) may appear as labels.
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=classes),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
        # A listed file that is gone or does not decode would crash or poison training.
        gxe.ExpectColumnValuesToBeInSet(column="exists", value_set=[True]),
        gxe.ExpectColumnValuesToBeInSet(column="decodable", value_set=[True]),
        # One row per path: a file in two splits (or twice in one) would leak between them.
        gxe.ExpectColumnValuesToBeUnique(column="path"),
    ]
    class_counts = [
        # Every expected class has images, and enough of them to train and test on.
        gxe.ExpectColumnDistinctValuesToEqualSet(column="label", value_set=classes),
        gxe.ExpectColumnValuesToBeBetween(column="images", min_value=min_per_class),
    ]
    return {"images": images, "class_counts": class_counts}


def run_suites(frames: dict[str, pd.DataFrame], expectations: dict[str, list]) -> list[dict]:
    """Validate each frame against its suite in an ephemeral GX context; one dict per expectation."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas(name="manifest")
    results = []
    for name, frame in frames.items():
        batch = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe("all")
        suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations[name]))
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        outcome = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
        for result in outcome.results:
            config = result.expectation_config
            details = result.result or {}
            results.append({
                "suite": name,
                "expectation": config.type,
                "column": config.kwargs.get("column"),
                "success": bool(result.success),
                "unexpected_count": details.get("unexpected_count", 0),
                "unexpected_values": [str(v) for v in details.get("partial_unexpected_list", [])][:MAX_LISTED],
                "observed_value": _plain(details.get("observed_value")),
                "kwargs": {k: _plain(v) for k, v in config.kwargs.items() if k not in ("column", "batch_id")},
            })
    return results


def _plain(value):
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def failure_message(failed: list[dict], images: pd.DataFrame) -> str:
    lines = [f"{len(failed)} expectation(s) failed; see {paths.VALIDATION_REPORT}:"]
    for result in failed:
        what = f"{result['expectation']}({result['column']}, {result['kwargs']})"
        seen = result["unexpected_values"] or result["observed_value"]
        lines.append(f"  - {what}: {result['unexpected_count']} unexpected; saw {seen}")
        if result["column"] in ("exists", "decodable"):
            bad = images[~images[result["column"]].astype(bool)]
            for _, row in bad.head(MAX_LISTED).iterrows():
                lines.append(f"      {paths.RAW_DIR / row['path']}: {row['error']}")
        if result["column"] == "images":
            lines.append("      (change validate.min_images_per_class, or add images to the small classes)")
        if result["column"] == "label":
            lines.append("      (data.classes in params.yaml lists the allowed labels; null = every folder)")
    return "\n".join(lines)


def run(params: Params) -> pd.DataFrame:
    manifest = read_manifest(paths.MANIFEST, produced_by="fetch")
    classes = expected_classes(params, paths.RAW_DIR)
    images = scan_images(manifest, paths.RAW_DIR)
    frames = {"images": images, "class_counts": class_counts(images)}
    results = run_suites(frames, contract(classes, params.validation.min_images_per_class))
    failed = [r for r in results if not r["success"]]

    write_json(paths.VALIDATION_REPORT, {
        "success": not failed,
        "images": len(images),
        "classes": classes,
        "per_class_split": images.groupby(["label", "split"]).size().unstack(fill_value=0).to_dict("index"),
        "undecodable": int((~images["decodable"]).sum()),
        "expectations": results,
    })
    if failed:
        raise PipelineError(failure_message(failed, images))
    validated = images.drop(columns=["exists", "decodable", "error"])
    with atomic_path(paths.VALIDATED) as tmp:
        validated.to_csv(tmp, index=False)
    print(f"validate: {len(results)} expectations passed on {len(images)} images -> {paths.VALIDATED}")
    return validated


def main() -> None:
    run_main("validate", lambda: run(load_params()))


if __name__ == "__main__":
    main()
