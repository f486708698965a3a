"""stages/archives.py: both formats extract; unsafe entries, bombs and damage are refused clearly."""

import tarfile
import zipfile

import pytest

from stages.archives import Limits, extract, extracted
from stages.errors import PipelineError
from tests.fetch_kit import tar_link, tar_special, write_tar, write_zip

ROOMY = Limits(max_files=1000, max_bytes=10 * 2**20)
GOOD = {"set/cats/a.jpg": b"cat", "set/dogs/b.jpg": b"dog!", "set/notes.txt": b"hi"}


def tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("suffix, mode", [(".zip", None), (".tar", "w"), (".tar.gz", "w:gz"), (".tgz", "w:gz"),
                                          (".tar.xz", "w:xz")])
def test_zip_and_tar_archives_extract_every_file(tmp_path, suffix, mode):
    archive = tmp_path / f"data{suffix}"
    write_zip(archive, GOOD) if mode is None else write_tar(archive, GOOD, mode)
    (tmp_path / "out").mkdir()
    result = extract(archive, tmp_path / "out", ROOMY)
    assert tree(tmp_path / "out") == GOOD
    assert (result.files, result.bytes) == (3, 9)


def test_the_format_comes_from_the_content_not_the_name(tmp_path):
    archive = write_zip(tmp_path / "download.bin", GOOD)
    (tmp_path / "out").mkdir()
    extract(archive, tmp_path / "out", ROOMY)
    assert tree(tmp_path / "out") == GOOD
    text = tmp_path / "data.zip"
    text.write_text("not an archive")
    with pytest.raises(PipelineError, match=r"data.zip is not a zip or tar archive"):
        extract(text, tmp_path / "out", ROOMY)


def _unsafe(kind, tmp_path):
    """Archives whose bad entry aims at `tmp_path/evil.jpg` (outside the extraction folder)."""
    outside = tmp_path / "evil.jpg"
    good = {"data/cats/a.jpg": b"cat"}
    return {
        "zip-slip": lambda p: write_zip(p, good | {"data/../../evil.jpg": b"x"}),
        "zip-slip-backslash": lambda p: write_zip(p, good | {"data\\..\\..\\evil.jpg": b"x"}),
        "zip-absolute": lambda p: write_zip(p, good | {str(outside): b"x"}),
        "zip-symlink": lambda p: write_zip(p, good, symlinks={"data/cats/link.jpg": str(outside)}),
        "tar-slip": lambda p: write_tar(p, good | {"../evil.jpg": b"x"}),
        "tar-absolute": lambda p: write_tar(p, good | {str(outside): b"x"}),
        "tar-symlink": lambda p: write_tar(p, good, extra=[tar_link("data/link", str(tmp_path))]),
        "tar-hardlink": lambda p: write_tar(p, good, extra=[tar_link("data/hard.jpg", str(outside), hard=True)]),
        "tar-fifo": lambda p: write_tar(p, good, extra=[tar_special("data/pipe")]),
        "tar-device": lambda p: write_tar(p, good, extra=[tar_special("data/sda", tarfile.BLKTYPE)]),
    }[kind]


@pytest.mark.parametrize(
    "kind, entry, problem",
    [
        ("zip-slip", "data/../../evil.jpg", "leads outside the archive's folder ('..')"),
        ("zip-slip-backslash", "data\\..\\..\\evil.jpg", "leads outside the archive's folder ('..')"),
        ("zip-absolute", "{tmp}/evil.jpg", "absolute path"),
        ("zip-symlink", "data/cats/link.jpg", "symbolic link (links are not allowed)"),
        ("tar-slip", "../evil.jpg", "OutsideDestinationError"),
        ("tar-absolute", "{tmp}/evil.jpg", "absolute path"),
        ("tar-symlink", "data/link", "symbolic link (links are not allowed)"),
        ("tar-hardlink", "data/hard.jpg", "hard link (links are not allowed)"),
        ("tar-fifo", "data/pipe", "SpecialFileError"),
        ("tar-device", "data/sda", "SpecialFileError"),
    ],
)
def test_unsafe_entries_are_refused_and_nothing_is_written_anywhere(tmp_path, kind, entry, problem):
    archive = _unsafe(kind, tmp_path)(tmp_path / "bad.archive")
    parent = tmp_path / "data"
    parent.mkdir()
    with pytest.raises(PipelineError) as error:
        with extracted(archive, parent, ROOMY, shown_as="the download"):
            pytest.fail("a refused archive must not be handed on")
    message = str(error.value)
    assert message.startswith(f"refused to extract the download: entry {entry.format(tmp=tmp_path)!r}: "), message
    assert problem in message
    assert not (tmp_path / "evil.jpg").exists() and not (tmp_path.parent / "evil.jpg").exists()
    assert list(parent.iterdir()) == []  # the temporary extraction folder is gone too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.archive", "data"]


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_entry_count_and_unpacked_size_are_capped(tmp_path, kind):
    entries = {f"data/{i}.jpg": b"x" * 1000 for i in range(5)}
    archive = tmp_path / f"many.{kind}"
    write_zip(archive, entries) if kind == "zip" else write_tar(archive, entries)
    (tmp_path / "out").mkdir()
    with pytest.raises(PipelineError, match=r"holds more than 4 entries \(data.limits.max_files\)"):
        extract(archive, tmp_path / "out", Limits(max_files=4, max_bytes=2**20))
    with pytest.raises(PipelineError, match=r"unpacks to more than 4,000 bytes .*data.limits.max_unpacked_mb"):
        extract(archive, tmp_path / "out", Limits(max_files=100, max_bytes=4000))


def test_a_zip_bomb_is_refused_before_anything_is_written(tmp_path):
    bomb = write_zip(tmp_path / "bomb.zip", {"zeros.jpg": b"\0" * (8 * 2**20)})
    assert bomb.stat().st_size < 100_000
    (tmp_path / "out").mkdir()
    with pytest.raises(PipelineError, match="unpacks to more than"):
        extract(bomb, tmp_path / "out", Limits(max_files=10, max_bytes=2**20))
    assert list((tmp_path / "out").iterdir()) == []


def test_a_truncated_archive_is_reported_as_damaged(tmp_path):
    archive = write_tar(tmp_path / "data.tar.gz", {f"d/{i}.jpg": bytes(range(256)) * 400 for i in range(4)})
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    (tmp_path / "out").mkdir()
    with pytest.raises(PipelineError, match=r"data.tar.gz is damaged or truncated .*; fetch it again"):
        extract(archive, tmp_path / "out", ROOMY)


def test_a_zip_with_a_bad_crc_is_reported_as_damaged(tmp_path):
    archive = write_zip(tmp_path / "data.zip", {"d/a.jpg": b"abcdefgh" * 100}, compression=zipfile.ZIP_STORED)
    raw = archive.read_bytes()
    archive.write_bytes(raw.replace(b"abcdefgh", b"abcdefgX", 1))
    (tmp_path / "out").mkdir()
    with pytest.raises(PipelineError, match=r"damaged or truncated \(BadZipFile"):
        extract(archive, tmp_path / "out", ROOMY)
