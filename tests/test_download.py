"""stages/download.py against a real HTTP server on 127.0.0.1: cache, checksum, retries, resume."""

import pytest

from stages.download import Retry, cached_archive
from stages.errors import PipelineError
from tests.fetch_kit import ArchiveServer, closed_port, sha256

RETRY = Retry(retries=3, backoff_s=0.5, timeout_s=5.0)


@pytest.fixture
def server():
    server = ArchiveServer()
    yield server
    server.close()


@pytest.fixture
def archive(tmp_path):
    """300 kB of incompressible bytes: several chunks on the wire, so a drop lands midway."""
    path = tmp_path / "data.zip"
    path.write_bytes(bytes(range(256)) * 1200)
    return path


@pytest.fixture
def sleeps():
    return []


def fetch(url, digest, cache, sleeps, retry=RETRY):
    return cached_archive(url, digest, cache, retry, sleep=sleeps.append)


def test_downloads_verifies_and_keeps_the_archive_for_next_time(server, archive, tmp_path, sleeps):
    url, digest, cache = server.serve(archive), sha256(archive), tmp_path / "cache"
    first = fetch(url, digest, cache, sleeps)
    assert first.downloaded and first.path == cache / digest
    assert first.path.read_bytes() == archive.read_bytes()
    second = fetch(url, digest, cache, sleeps)
    assert not second.downloaded and second.path == first.path
    assert server.gets("data.zip") == 1
    assert [p.name for p in cache.iterdir()] == [digest]  # no .part left behind


def test_wrong_sha256_fails_with_both_hashes_and_keeps_nothing(server, archive, tmp_path, sleeps):
    url, cache, wrong = server.serve(archive), tmp_path / "cache", "0" * 64
    with pytest.raises(PipelineError) as error:
        fetch(url, wrong, cache, sleeps)
    message = str(error.value)
    assert f"expected {wrong}" in message and f"actual   {sha256(archive)}" in message
    assert "Nothing was extracted" in message
    assert list(cache.iterdir()) == []


def test_missing_sha256_prints_the_actual_hash_then_pinning_it_uses_the_download(server, archive, tmp_path,
                                                                               sleeps):
    url, cache, digest = server.serve(archive), tmp_path / "cache", sha256(archive)
    with pytest.raises(PipelineError) as error:
        fetch(url, None, cache, sleeps)
    assert f"sha256: {digest}" in str(error.value) and "data.sha256 is not set" in str(error.value)
    assert fetch(url, digest, cache, sleeps).downloaded is False
    assert server.gets("data.zip") == 1


def test_dropped_connection_is_retried_and_resumed_with_range(server, archive, tmp_path, sleeps):
    size, cut = archive.stat().st_size, 100_000
    url = server.serve(archive)
    server.faults = [("drop", cut)]
    result = fetch(url, sha256(archive), tmp_path / "cache", sleeps)
    assert result.path.read_bytes() == archive.read_bytes()
    [(_, first), (_, second)] = server.requests
    resumed_at = int(second.removeprefix("bytes=").removesuffix("-"))
    assert first is None and 0 < resumed_at <= cut  # at most the chunk being read is lost to the drop
    assert server.sent == cut + size - resumed_at  # the second request sent only what was missing
    assert sleeps == [0.5]


def test_server_without_range_support_starts_over(archive, tmp_path, sleeps):
    server = ArchiveServer(ranges=False)
    try:
        url = server.serve(archive)
        server.faults = [("drop", 100_000)]
        result = fetch(url, sha256(archive), tmp_path / "cache", sleeps)
        assert result.path.read_bytes() == archive.read_bytes()
        assert server.sent == 100_000 + archive.stat().st_size
    finally:
        server.close()


def test_transient_http_errors_are_retried_with_backoff(server, archive, tmp_path, sleeps):
    url = server.serve(archive)
    server.faults = [("status", 503), ("status", 429)]
    assert fetch(url, sha256(archive), tmp_path / "cache", sleeps).downloaded
    assert server.gets("data.zip") == 3 and sleeps == [0.5, 1.0]


def test_not_found_fails_at_once(server, tmp_path, sleeps):
    with pytest.raises(PipelineError, match=r"HTTP 404 Not Found; check data.url"):
        fetch(server.url("missing.zip"), "0" * 64, tmp_path / "cache", sleeps)
    assert server.gets("missing.zip") == 1 and sleeps == []


def test_unreachable_host_fails_clearly_after_the_retries(tmp_path, sleeps):
    url = f"http://127.0.0.1:{closed_port()}/data.zip"
    with pytest.raises(PipelineError) as error:
        fetch(url, "0" * 64, tmp_path / "cache", sleeps, Retry(retries=2, backoff_s=0.25, timeout_s=2.0))
    assert str(error.value).startswith(f"could not download {url} after 3 attempt(s): Connection refused")
    assert sleeps == [0.25, 0.5]


def test_gives_up_after_the_retries_and_keeps_the_partial_download(server, archive, tmp_path, sleeps):
    url, cache = server.serve(archive), tmp_path / "cache"
    server.faults = [("drop", 100_000), ("status", 500)]
    gave_up = r"(?s)after 2 attempt\(s\): HTTP 500 .* the [\d,]+ bytes received are kept"
    with pytest.raises(PipelineError, match=gave_up):
        fetch(url, sha256(archive), cache, sleeps, Retry(retries=1, backoff_s=0.0, timeout_s=5.0))
    [kept] = [part.stat().st_size for part in cache.glob("*.part")]
    assert kept > 0
    assert fetch(url, sha256(archive), cache, sleeps).downloaded  # the next run resumes
    assert server.requests[-1] == ("data.zip", f"bytes={kept}-")


def test_a_damaged_cache_entry_is_downloaded_again(server, archive, tmp_path, sleeps):
    url, digest, cache = server.serve(archive), sha256(archive), tmp_path / "cache"
    fetch(url, digest, cache, sleeps)
    (cache / digest).write_bytes(b"truncated")
    assert fetch(url, digest, cache, sleeps).downloaded
    assert server.gets("data.zip") == 2 and sha256(cache / digest) == digest


def test_file_url_is_copied_into_the_cache(archive, tmp_path, sleeps):
    result = fetch(archive.as_uri(), sha256(archive), tmp_path / "cache", sleeps)
    assert result.downloaded and result.path.read_bytes() == archive.read_bytes()
    with pytest.raises(PipelineError, match="no such file"):
        fetch((tmp_path / "nope.zip").as_uri(), "0" * 64, tmp_path / "cache", sleeps)
