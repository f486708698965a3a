"""fetch.run on archives: downloaded from a server on 127.0.0.1 (both public layouts) or local.

Each failure leaves the previous data/raw, manifest and report exactly as they were.
"""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from stages import archives, fetch, paths
from stages.errors import PipelineError
from stages.params import parse_params
from stages.presets import PRESETS
from tests.fetch_kit import (
    ArchiveServer,
    cats_and_dogs_filtered,
    closed_port,
    pet_images,
    sha256,
    tar_link,
    write_tar,
    write_zip,
)

FAST = {"retries": 2, "backoff_s": 0.01, "timeout_s": 5.0}


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "served").mkdir()
    return tmp_path


@pytest.fixture
def server():
    server = ArchiveServer()
    yield server
    server.close()


def url_params(url, digest, **data):
    return parse_params({"data": {"source": "url", "url": url, "sha256": digest, "download": FAST, **data}})


def snapshot():
    """Everything fetch owns on disk, to show a failed fetch changed none of it."""
    files = sorted(p for p in Path("data").rglob("*") if p.is_file())
    return {p.as_posix(): p.read_bytes() for p in files} | {"report": paths.FETCH_REPORT.read_bytes()}


@pytest.fixture
def previous(in_tmp):
    """A completed synthetic fetch: the data a failing fetch must leave alone."""
    fetch.run(parse_params({"data": {"synthetic": {"images_per_class": 10, "image_size": 16}}}))
    return snapshot()


def report():
    return json.loads(paths.FETCH_REPORT.read_text())


def test_cats_and_dogs_filtered_download_keeps_its_split_and_carves_a_test_split(in_tmp, server):
    archive = write_zip(in_tmp / "served/cats_and_dogs_filtered.zip", cats_and_dogs_filtered(train=10, val=5))
    manifest = fetch.run(url_params(server.serve(archive), sha256(archive)))

    assert Counter(zip(manifest["label"], manifest["split"], strict=True)) == {
        ("cat", "train"): 8, ("cat", "val"): 5, ("cat", "test"): 2,
        ("dog", "train"): 8, ("dog", "val"): 5, ("dog", "test"): 2}
    validation_files = {f"cat/cat.{1000 + i}.jpg" for i in range(5)}  # the source's validation folder
    assert set(manifest.loc[manifest["path"].isin(validation_files), "split"]) == {"val"}
    assert sorted(p.name for p in paths.RAW_DIR.iterdir()) == ["cat", "dog"]
    assert pd.read_csv(paths.MANIFEST).equals(manifest)
    assert (manifest["sha256"].str.len() == 64).all() and (manifest["bytes"] > 0).all()

    fetched = report()
    assert fetched["sha256"] == sha256(archive) and fetched["downloaded"] is True
    assert fetched["source_splits"] == ["train", "val"] and fetched["layout_root"] == "cats_and_dogs_filtered"
    assert fetched["skipped"] == {"hidden": 1, "not in a class folder": 1}  # .DS_Store, vectorize.py
    assert fetched["counts"]["cat"] == {"test": 2, "train": 8, "val": 5}
    assert not list(Path("data").glob(".extract.*"))  # the temporary extraction is gone


def test_pet_images_tarball_is_split_by_ratios_and_its_litter_counted(in_tmp, server):
    archive = write_tar(in_tmp / "served/pets.tar.gz", pet_images(n=20))
    manifest = fetch.run(url_params(server.serve(archive), sha256(archive)))
    assert Counter(zip(manifest["label"], manifest["split"], strict=True)) == {
        ("cat", "train"): 14, ("cat", "val"): 3, ("cat", "test"): 3,
        ("dog", "train"): 14, ("dog", "val"): 3, ("dog", "test"): 3}
    assert report()["skipped"] == {"hidden": 2, "not in a class folder": 2}  # Thumbs.db x2, pdf, txt


def test_fetching_the_same_source_twice_downloads_once(in_tmp, server):
    archive = write_zip(in_tmp / "served/data.zip", cats_and_dogs_filtered(train=4, val=2))
    params = url_params(server.serve(archive), sha256(archive))
    first = fetch.run(params)
    second = fetch.run(params)
    assert server.gets("data.zip") == 1
    assert report()["downloaded"] is False
    assert first.equals(second)
    assert (in_tmp / paths.DOWNLOAD_CACHE / sha256(archive)).is_file()


def test_wrong_sha256_fails_before_extraction_and_keeps_the_previous_data(previous, in_tmp, server, monkeypatch):
    archive = write_zip(in_tmp / "served/data.zip", cats_and_dogs_filtered(train=4, val=2))
    extractions = []
    monkeypatch.setattr(archives, "extract", lambda *args, **kwargs: extractions.append(args))
    with pytest.raises(PipelineError) as error:
        fetch.run(url_params(server.serve(archive), "ab" * 32))
    assert f"expected {'ab' * 32} (data.sha256)\n  actual   {sha256(archive)}" in str(error.value)
    assert extractions == []
    assert snapshot() == previous


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda d, out: write_zip(d / "bad.zip", {"x/cats/1.jpg": b"1", "x/../../../evil.jpg": b"!"}),
         "entry 'x/../../../evil.jpg': path leads outside"),
        (lambda d, out: write_tar(d / "bad.tgz", {"x/cats/1.jpg": b"1", str(out / "evil.jpg"): b"!"}),
         "': absolute path"),
        (lambda d, out: write_tar(d / "bad.tgz", {"x/cats/1.jpg": b"1", "x/link/evil.jpg": b"!"}, "w:gz",
                                  [tar_link("x/link", str(out))]),
         "entry 'x/link': symbolic link"),
    ],
    ids=["zip-slip", "absolute", "symlink"],
)
def test_unsafe_archives_are_refused_and_nothing_lands_outside(previous, in_tmp, server, build, message):
    archive = build(in_tmp / "served", in_tmp)
    with pytest.raises(PipelineError) as error:
        fetch.run(url_params(server.serve(archive), sha256(archive)))
    assert message in str(error.value) and "refused to extract http://127.0.0.1" in str(error.value)
    assert not list(in_tmp.parent.rglob("evil.jpg"))
    assert snapshot() == previous


def test_unreachable_host_fails_clearly_and_keeps_the_previous_data(previous):
    url = f"http://127.0.0.1:{closed_port()}/data.zip"
    with pytest.raises(PipelineError) as error:
        fetch.run(url_params(url, "0" * 64))
    assert str(error.value).startswith(f"could not download {url} after 3 attempt(s): Connection refused")
    assert snapshot() == previous


def test_unreachable_host_from_the_command_line_is_one_clear_line(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/data.zip"
    (tmp_path / "params.yaml").write_text(
        f"data:\n  source: url\n  url: {url}\n  sha256: {'ab' * 32}\n  download: {{retries: 1, backoff_s: 0}}\n")
    result = subprocess.run([sys.executable, "-m", "stages.fetch"], cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": str(Path(__file__).resolve().parents[1])}, timeout=60)
    assert result.returncode == 1
    assert f"fetch: error: could not download {url} after 2 attempt(s): Connection refused" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name, write", [("pets.zip", write_zip), ("pets.tgz", write_tar), ("pets.tar", None)])
def test_path_source_takes_a_local_archive(in_tmp, name, write):
    archive = in_tmp / name
    if write is None:
        write_tar(archive, pet_images(n=5), mode="w")
    else:
        write(archive, pet_images(n=5))
    manifest = fetch.run(parse_params({"data": {"source": "path", "path": str(archive)}}))
    assert Counter(manifest["label"]) == {"cat": 5, "dog": 5}
    assert archive.is_file() and not list(in_tmp.glob("PetImages"))


def test_path_archive_checked_against_sha256_when_given(previous, in_tmp):
    archive = write_zip(in_tmp / "pets.zip", pet_images(n=5))
    with pytest.raises(PipelineError, match=f"(?s)expected {'1' * 64}.*actual   {sha256(archive)}"):
        fetch.run(parse_params({"data": {"source": "path", "path": str(archive), "sha256": "1" * 64}}))
    assert snapshot() == previous
    fetch.run(parse_params({"data": {"source": "path", "path": str(archive), "sha256": sha256(archive)}}))


def test_a_preset_without_a_published_hash_stops_with_the_hash_to_pin(in_tmp, server, monkeypatch):
    archive = write_zip(in_tmp / "served/cats_and_dogs_filtered.zip", cats_and_dogs_filtered(train=4, val=2))
    preset = PRESETS["cats_and_dogs_filtered"]
    assert preset.sha256 is None  # none published: the user pins it (README)
    monkeypatch.setitem(PRESETS, "cats_and_dogs_filtered", preset._replace(url=server.serve(archive)))
    params = {"source": "url", "preset": "cats_and_dogs_filtered", "download": FAST}
    with pytest.raises(PipelineError) as error:
        fetch.run(parse_params({"data": params}))
    assert f"data:\n    sha256: {sha256(archive)}" in str(error.value)
    assert not paths.MANIFEST.exists()
    manifest = fetch.run(parse_params({"data": params | {"sha256": sha256(archive)}}))
    assert len(manifest) == 12 and server.gets("cats_and_dogs_filtered.zip") == 1


def test_presets_point_at_the_public_archives():
    params = parse_params({"data": {"source": "url", "preset": "pet_images"}})
    assert params.data.archive_url.endswith("/kagglecatsanddogs_5340.zip")
    assert params.data.archive_sha256 == "b7974bd00a84a99921f36ee4403f089853777b5ae8d151c76a86e64900334af9"
    mine = parse_params({"data": {"source": "url", "preset": "pet_images", "sha256": "AB" * 32}})
    assert mine.data.archive_sha256 == "ab" * 32  # a pinned data.sha256 wins over the preset's
    assert PRESETS["cats_and_dogs_filtered"].url == (
        "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip")
