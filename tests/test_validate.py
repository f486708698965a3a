import json
from pathlib import Path

import pandas as pd
import pytest

from stages import fetch, paths, validate
from stages.errors import PipelineError
from stages.params import parse_params
from tests.helpers import DIRTY, KEEP_LABELS, LEAKS, dirty_tree

SMALL = {"data": {"synthetic": {"images_per_class": 12, "image_size": 24}}}


def params_with(base: dict = SMALL, **validate_params):
    return parse_params({**base, "validate": validate_params})


@pytest.fixture
def fetched(tmp_path, monkeypatch):
    """A fetched synthetic dataset (12 per class) in a temporary repo root."""
    monkeypatch.chdir(tmp_path)
    params = params_with()
    fetch.run(params)
    return params


def set_split(path: str, split: str) -> None:
    manifest = pd.read_csv(paths.MANIFEST)
    manifest.loc[manifest["path"] == path, "split"] = split
    manifest.to_csv(paths.MANIFEST, index=False)


def test_clean_data_passes_and_writes_validated_manifest(fetched):
    validated = validate.run(fetched)
    assert len(validated) == 24
    assert list(validated.columns) == validate.VALIDATED_COLUMNS
    assert (validated["file"] == "data/raw/" + validated["path"]).all()  # nothing needed normalising
    assert (validated[["width", "height"]] == 24).all().all() and set(validated["format"]) == {"JPEG"}
    report = json.loads(paths.VALIDATION_REPORT.read_text())
    assert report["success"] and report["classes"] == ["cats", "dogs"]
    assert report["clean"] == 24 and report["quarantined"] == 0 and not any(report["reasons"].values())
    assert report["per_class_split"]["cats"] == {"train": 8, "val": 2, "test": 2}
    assert all(e["success"] for e in report["expectations"])
    assert len(pd.read_csv(paths.QUARANTINE)) == 0
    assert "Every pixel decodes" in (paths.DATA_DOCS / "expectations" / "images.html").read_text()  # the intent
    pages = {p.parts[-4] for p in (paths.DATA_DOCS / "validations").rglob("*.html")}
    assert pages == {"images", "classes", "splits", "class_splits"} and (paths.DATA_DOCS / "index.html").is_file()


def test_second_run_writes_identical_outputs(fetched):
    """DVC reruns what depends on validate only when its outputs change."""
    validate.run(fetched)
    first = [p.read_bytes() for p in (paths.VALIDATED, paths.VALIDATION_REPORT, paths.QUARANTINE)]
    validate.run(fetched)
    assert [p.read_bytes() for p in (paths.VALIDATED, paths.VALIDATION_REPORT, paths.QUARANTINE)] == first


@pytest.fixture
def dirty(tmp_path, monkeypatch):
    """The dirty folder fetched with data.source=path; each leak's copy moved to the split after its original."""
    monkeypatch.chdir(tmp_path)
    source = dirty_tree(tmp_path / "source", clean_per_class=12)
    # class_map keeps the folder names as labels (fetch would fold `cats` into `cat`).
    base = {"data": {"source": "path", "path": str(source), "class_map": KEEP_LABELS}}
    fetch.run(parse_params(base))
    for copy, original in LEAKS.items():
        set_split(original, "train")
        set_split(copy, "test")
    return base


def test_dirty_folder_every_file_lands_in_the_report_with_its_reason(dirty):
    """Acceptance: each dirty file is quarantined (or reported) with the right reason, or
    normalised to an RGB PNG that train reads; the validated manifest holds the clean rows."""
    validated = validate.run(params_with(dirty))
    flagged = pd.read_csv(paths.QUARANTINE).set_index("path")
    by_path = validated.set_index("path")
    for name, (kind, what) in DIRTY.items():
        if kind in ("quarantined", "reported"):
            assert (flagged.loc[name, "action"], flagged.loc[name, "reason"]) == (kind, what), name
            assert flagged.loc[name, "reasons"] == what, name  # one problem, one reason: not counted twice
            assert isinstance(flagged.loc[name, "detail"], str) and flagged.loc[name, "detail"], name
            assert (name in by_path.index) == (kind == "reported"), name
        else:
            assert name not in flagged.index, name
            row = by_path.loc[name]
            assert row["normalized"] == (what if kind == "normalized" else "") or pd.isna(row["normalized"]), name
            expected_file = f"data/normalized/{name}.png" if kind == "normalized" else f"data/raw/{name}"
            assert row["file"] == expected_file and Path(expected_file).is_file(), name
    assert set(flagged.index) == {n for n, (kind, _) in DIRTY.items() if kind in ("quarantined", "reported")}
    assert by_path.loc["cats/png_named.jpg", "format"] == "PNG"
    assert by_path.loc["dogs/near_copy_of_dog_000.jpg", "file"] == "data/raw/dogs/near_copy_of_dog_000.jpg"
    # Only the copies of clean rows exist; nothing was moved out of data/raw.
    assert sorted(p.relative_to(paths.NORMALIZED_DIR).as_posix() for p in paths.NORMALIZED_DIR.rglob("*.png")) \
        == sorted(f"{n}.png" for n, (kind, _) in DIRTY.items() if kind == "normalized")
    assert all((paths.RAW_DIR / name).exists() for name in DIRTY)

    report = json.loads(paths.VALIDATION_REPORT.read_text())
    quarantined = [n for n, (kind, _) in DIRTY.items() if kind == "quarantined"]
    assert report["success"] and report["quarantined"] == len(quarantined) == report["images"] - report["clean"]
    assert report["reasons"] == {**dict.fromkeys(report["reasons"], 0), "empty": 1, "undecodable": 2,
                                 "not_an_image": 1, "too_small": 1, "too_many_pixels": 1,
                                 "duplicate_across_splits": 1}
    assert report["undecodable"] == 2 and report["near_duplicates"] == 1 and report["format_not_extension"] == 1
    assert report["normalized"] == 6
    per_class = report["per_class_split"]
    assert sum(sum(s.values()) for s in per_class.values()) == report["clean"] == len(validated)
    near = next(e for e in report["expectations"] if e["reason"] == "near_duplicate_across_splits")
    assert not near["success"] and near["action"] == "report"
    assert near["examples"] == ["dogs/near_copy_of_dog_000.jpg"]


def test_dirty_folder_on_corrupt_fail_names_the_files_and_writes_nothing_to_train_on(dirty):
    with pytest.raises(PipelineError) as error:
        validate.run(params_with(dirty, on_corrupt="fail"))
    message = str(error.value)
    for name, (kind, reason) in DIRTY.items():
        if kind == "quarantined":
            assert f"data/raw/{name}: {reason}: " in message, name
            assert f"[{reason}]" in message
    assert "near_copy" not in message  # near duplicates are only reported (validate.on_near_duplicate)
    assert "change: validate.on_corrupt: quarantine" in message
    assert "change: validate.min_width, or validate.on_corrupt: quarantine" in message
    assert f"expect_column_values_to_be_in_set(decodable) [undecodable]: 2 of {24 + len(DIRTY)} files" in message
    assert not paths.VALIDATED.exists() and not paths.NORMALIZED_DIR.exists()
    report = json.loads(paths.VALIDATION_REPORT.read_text())
    assert not report["success"] and "expect_column_values_to_be_in_set(identified) [not_an_image]" in report["failed"]
    assert set(pd.read_csv(paths.QUARANTINE)["action"]) == {"failed", "reported"}


@pytest.mark.parametrize("action", ["quarantine", "fail"])
def test_near_duplicates_can_be_quarantined_or_fail(dirty, action):
    params = params_with(dirty, on_near_duplicate=action)
    if action == "fail":
        with pytest.raises(PipelineError, match=r"(?s)\[near_duplicate_across_splits\].*near_copy_of_dog_000.jpg: "
                                                r"near_duplicate_across_splits: perceptual-hash similarity 0\.9.*"
                                                r"change: validate.near_duplicate_similarity"):
            validate.run(params)
    else:
        validated = validate.run(params)
        assert "dogs/near_copy_of_dog_000.jpg" not in set(validated["path"])
        assert json.loads(paths.VALIDATION_REPORT.read_text())["reasons"]["near_duplicate_across_splits"] == 1


@pytest.mark.parametrize("on_corrupt", ["quarantine", "fail"])
def test_corrupt_image(fetched, on_corrupt):
    victim = paths.RAW_DIR / "dogs" / "dog_00003.jpg"
    victim.write_bytes(victim.read_bytes()[:200])  # truncated JPEG: opens, fails to decode
    params = params_with(on_corrupt=on_corrupt)
    if on_corrupt == "fail":
        with pytest.raises(PipelineError) as error:
            validate.run(params)
        assert "expect_column_values_to_be_in_set(decodable) [undecodable]: 1 of 24 files" in str(error.value)
        assert "data/raw/dogs/dog_00003.jpg: undecodable: OSError" in str(error.value)
        assert not paths.VALIDATED.exists()
    else:
        assert "dogs/dog_00003.jpg" not in set(validate.run(params)["path"])
    assert json.loads(paths.VALIDATION_REPORT.read_text())["undecodable"] == 1


def test_failed_run_keeps_the_previous_outputs(fetched):
    validate.run(fetched)
    before = paths.VALIDATED.read_bytes()
    (paths.RAW_DIR / "cats" / "cat_00000.jpg").write_bytes(b"")
    with pytest.raises(PipelineError, match=r"cat_00000.jpg: empty: 0 bytes"):
        validate.run(params_with(on_corrupt="fail"))
    assert paths.VALIDATED.read_bytes() == before
    assert not any(p.name.startswith(".") for p in paths.VALIDATED.parent.iterdir())  # no temp files left


def test_missing_file_is_quarantined(fetched):
    (paths.RAW_DIR / "cats" / "cat_00000.jpg").unlink()
    validated = validate.run(fetched)
    assert len(validated) == 23 and pd.read_csv(paths.VALIDATED)["bytes"].dtype == "int64"
    flagged = pd.read_csv(paths.QUARANTINE)
    assert flagged[["path", "reason", "reasons"]].values.tolist() == [["cats/cat_00000.jpg", "missing", "missing"]]


def test_failure_lists_at_most_ten_files(fetched):
    for path in sorted((paths.RAW_DIR / "dogs").iterdir()):
        path.write_text("not an image")
    with pytest.raises(PipelineError) as error:
        validate.run(params_with(on_corrupt="fail"))
    message = str(error.value)
    assert message.count(": not_an_image: ") == 10 and "... and 2 more" in message


def test_too_few_images_per_class_fails_naming_the_param(fetched):
    with pytest.raises(PipelineError) as error:
        validate.run(params_with(min_images_per_class=13))
    message = str(error.value)
    assert "expect_column_values_to_be_between(images) [too_few_images_per_class]: 2 of 2 classes" in message
    assert "threshold: min_value=13" in message and "label=cats, images=12" in message
    assert "change: validate.min_images_per_class" in message


def test_quarantine_that_empties_a_class_fails_the_counts(fetched):
    for path in (paths.RAW_DIR / "cats").iterdir():
        path.write_bytes(b"")
    with pytest.raises(PipelineError) as error:
        validate.run(fetched)
    message = str(error.value)
    assert "[too_few_images_per_class]" in message and "label=cats, images=0" in message
    assert "[too_few_images_per_split]" in message and "split=test, label=cats, images=0" in message


def test_class_imbalance_fails_naming_observed_ratio_and_param(fetched):
    for path in sorted((paths.RAW_DIR / "cats").iterdir())[:9]:
        path.write_bytes(b"")  # cats: 12 -> 3 clean, dogs 12: ratio 4
    with pytest.raises(PipelineError) as error:
        validate.run(params_with(min_images_per_class=1, max_imbalance_ratio=3))
    message = str(error.value)
    assert "[class_imbalance]: 1 of 2 classes break it (threshold: max_value=3)" in message
    assert "label=cats, images=3, imbalance_ratio=4" in message and "change: validate.max_imbalance_ratio" in message


def test_empty_split_fails(fetched):
    manifest = pd.read_csv(paths.MANIFEST)
    manifest.loc[manifest["split"] == "val", "split"] = "train"
    manifest.to_csv(paths.MANIFEST, index=False)
    with pytest.raises(PipelineError) as error:
        validate.run(fetched)
    assert "[empty_split]: 1 of 3 splits break it" in str(error.value) and "split=val, images=0" in str(error.value)
    assert "change: data.split" in str(error.value)


def test_label_outside_class_set_is_quarantined_and_duplicate_path_fails(fetched):
    manifest = paths.MANIFEST.read_text().splitlines()
    manifest[1] = manifest[1].replace(",cats,", ",lions,")
    manifest.append(manifest[2].replace(",train,", ",test,").replace(",val,", ",test,"))
    paths.MANIFEST.write_text("\n".join(manifest) + "\n")
    with pytest.raises(PipelineError) as error:
        validate.run(fetched)
    assert "expect_column_values_to_be_unique(path) [duplicate_path]" in str(error.value)
    assert "change: rerun fetch" in str(error.value)
    flagged = pd.read_csv(paths.QUARANTINE).set_index("reason")
    assert flagged.loc["unknown_label", "detail"] == "label 'lions' is not a class (data.classes)"


def test_find_leaks_marks_only_the_later_copy():
    frame = pd.DataFrame({
        "path": ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg"],
        "split": ["test", "train", "train", "val", "val", "test"],
        "sha256": ["s1", "s1", "s2", "s2", "s3", "s4"],
        "phash": ["0" * 16, "0" * 16, "f" * 16, "f" * 16, "00000000000000ff", "000000000000000f"],
    })
    leaks = validate.find_leaks(frame, similarity=0.9).set_index("path")
    assert _strings(leaks["exact_duplicate_of"]) == {"a.jpg": "b.jpg", "b.jpg": None, "c.jpg": None,
                                                      "d.jpg": "c.jpg", "e.jpg": None, "f.jpg": None}
    # e (val) is 8 bits from b (train): similarity 0.875 < 0.9. f (test) is 4 bits from b and from e.
    assert _strings(leaks["near_duplicate_of"]) == {"a.jpg": None, "b.jpg": None, "c.jpg": None, "d.jpg": None,
                                                     "e.jpg": None, "f.jpg": "b.jpg"}
    assert leaks.loc["f.jpg", "near_duplicate_similarity"] == pytest.approx(1 - 4 / 64)


def _strings(column: pd.Series) -> dict:
    return {k: v if isinstance(v, str) else None for k, v in column.items()}


def test_count_frames_are_zero_filled():
    clean = pd.DataFrame({"label": ["a", "a", "a", "b"], "split": ["train", "train", "val", "train"]})
    frames = validate.count_frames(clean, ["a", "b", "c"])
    classes = frames["classes"]
    assert classes["label"].tolist() == ["a", "b", "c"] and classes["images"].tolist() == [3, 1, 0]
    assert classes["imbalance_ratio"].tolist()[:2] == [1.0, 3.0] and pd.isna(classes["imbalance_ratio"].iloc[2])
    assert frames["splits"].to_dict("list") == {"split": ["train", "val", "test"], "images": [3, 1, 0]}
    assert len(frames["class_splits"]) == 9 and frames["class_splits"]["images"].sum() == 4


def test_an_expectation_gx_cannot_evaluate_is_an_error_not_a_pass():
    import great_expectations.expectations as gxe

    rule = validate.expect(gxe.ExpectColumnValuesToBeBetween, "intent", "reason", "param", "fail",
                           column="no_such_column", min_value=1)
    rule.meta["order"] = 0
    with validate.gx_context() as context, pytest.raises(RuntimeError, match="no_such_column"):
        validate.check(context, "frame", pd.DataFrame({"a": [1, 2]}), [rule])
