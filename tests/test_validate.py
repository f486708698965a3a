import json

import pytest

from stages import fetch, paths, validate
from stages.errors import PipelineError
from stages.params import parse_params


@pytest.fixture
def fetched(tmp_path, monkeypatch):
    """A fetched synthetic dataset (12 per class) in a temporary repo root."""
    monkeypatch.chdir(tmp_path)
    params = parse_params({"data": {"synthetic": {"images_per_class": 12, "image_size": 24}}})
    fetch.run(params)
    return params


def test_clean_data_passes_and_writes_validated_manifest(fetched):
    validated = validate.run(fetched)
    assert len(validated) == 24
    assert {"width", "height", "format"} <= set(validated.columns)
    report = json.loads(paths.VALIDATION_REPORT.read_text())
    assert report["success"] and report["classes"] == ["cats", "dogs"]
    assert all(e["success"] for e in report["expectations"])


def test_corrupt_image_fails_naming_expectation_and_file(fetched):
    victim = paths.RAW_DIR / "dogs" / "dog_00003.jpg"
    victim.write_bytes(victim.read_bytes()[:200])  # truncated JPEG: opens, fails to decode
    with pytest.raises(PipelineError) as error:
        validate.run(fetched)
    message = str(error.value)
    assert "expect_column_values_to_be_in_set(decodable" in message
    assert "dog_00003.jpg" in message
    assert not paths.VALIDATED.exists()
    assert json.loads(paths.VALIDATION_REPORT.read_text())["undecodable"] == 1


def test_missing_file_fails(fetched):
    (paths.RAW_DIR / "cats" / "cat_00000.jpg").unlink()
    with pytest.raises(PipelineError, match=r"exists.*\n.*cat_00000.jpg: missing"):
        validate.run(fetched)


def test_too_few_images_per_class_fails_naming_the_param(fetched):
    params = parse_params({"data": {"synthetic": {"images_per_class": 12, "image_size": 24}},
                           "validate": {"min_images_per_class": 13}})
    with pytest.raises(PipelineError, match="min_images_per_class"):
        validate.run(params)


def test_label_outside_class_set_and_duplicate_path_fail(fetched):
    manifest = paths.MANIFEST.read_text().splitlines()
    manifest[1] = manifest[1].replace(",cats,", ",lions,")
    manifest.append(manifest[2].replace(",train,", ",test,").replace(",val,", ",test,"))
    paths.MANIFEST.write_text("\n".join(manifest) + "\n")
    with pytest.raises(PipelineError) as error:
        validate.run(fetched)
    assert "label" in str(error.value) and "lions" in str(error.value)
    assert "expect_column_values_to_be_unique(path" in str(error.value)
