"""Download an archive once, verified: streamed to disk, retried, resumed, checksummed.

`cached_archive(url, sha256, cache_dir, retry)` returns a verified copy in the download
cache, `<cache_dir>/<sha256>`, and only downloads when it is not there yet:

- the body is streamed in 64 KiB chunks to `<cache_dir>/<key>.part` and hashed as it
  arrives, so memory stays flat whatever the archive's size; a progress bar shows on a
  terminal (tqdm, off when stderr is not a TTY);
- transient failures (connection refused, reset or dropped midway, timeouts, HTTP 408,
  429 and 5xx) are retried with exponential backoff; every retry resumes the partial file
  with an HTTP Range request, or starts over when the server ignores Range (200);
- the sha256 is checked before the file is renamed into the cache, so nothing unverified
  is ever handed on to be extracted. A mismatch deletes the download. With no pinned hash
  the archive is kept under its actual hash and the error prints that hash, for the user
  to check against the publisher's and pin as `data.sha256`.

`file://` URLs are copied the same way (hashed, cached), without retries.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import requests
from tqdm import tqdm

from stages.errors import PipelineError
from stages.manifest import file_sha256

CHUNK = 1 << 20  # file reads and writes
# Network reads: a dropped connection loses the chunk being read (urllib3 raises before
# handing over a short read), so smaller chunks lose less before the resume.
NET_CHUNK = 1 << 16
MAX_WAIT_S = 60.0
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


class Transient(Exception):
    """A failure worth another try (the network, or a server having a bad moment)."""


@dataclass(frozen=True)
class Retry:
    retries: int  # tries after the first
    backoff_s: float  # wait before the first retry; doubles each time (capped at MAX_WAIT_S)
    timeout_s: float  # connect and read timeout of each try


@dataclass(frozen=True)
class Archive:
    path: Path
    sha256: str
    bytes: int
    downloaded: bool  # False when it came from the cache


def cached_archive(url: str, sha256: str | None, cache_dir: Path, retry: Retry,
                   sleep: Callable[[float], None] = time.sleep) -> Archive:
    """The archive at `url`, verified against `sha256`, from the cache or downloaded into it."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    if sha256:
        cached = cache_dir / sha256
        # Re-hashed on every use: a cache file truncated or edited since is fetched again.
        if cached.is_file() and file_sha256(cached) == sha256:
            print(f"fetch: {url} is in the download cache ({cached})")
            return Archive(cached, sha256, cached.stat().st_size, downloaded=False)
        cached.unlink(missing_ok=True)

    part = cache_dir / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}.part"
    actual = download(url, part, retry, sleep)
    if sha256 is None:
        kept = cache_dir / actual
        os.replace(part, kept)
        raise PipelineError(
            f"data.sha256 is not set, so {url} was downloaded but not extracted.\n"
            f"Its sha256 is {actual}\n"
            "Check it against the publisher's checksum, then pin it in params.yaml:\n"
            f"  data:\n    sha256: {actual}\n"
            f"and rerun: the archive is kept in {kept} and will not be downloaded again."
        )
    if actual != sha256:
        part.unlink(missing_ok=True)
        raise PipelineError(
            f"sha256 mismatch for {url}:\n  expected {sha256} (data.sha256)\n  actual   {actual}\n"
            "Nothing was extracted and the download was deleted. If the publisher changed the "
            "archive, check the new one and pin its hash as data.sha256."
        )
    final = cache_dir / sha256
    os.replace(part, final)
    return Archive(final, sha256, final.stat().st_size, downloaded=True)


def download(url: str, part: Path, retry: Retry, sleep: Callable[[float], None] = time.sleep) -> str:
    """Fetch `url` into `part` (resuming what is there) and return the file's sha256."""
    if urlsplit(url).scheme == "file":
        return copy_file(url, part)
    attempts = retry.retries + 1
    for attempt in range(1, attempts + 1):
        try:
            return transfer(url, part, retry.timeout_s)
        except Transient as error:
            last = error
        if attempt < attempts:
            wait = min(retry.backoff_s * 2 ** (attempt - 1), MAX_WAIT_S)
            print(f"fetch: {url}: {last}; retry {attempt}/{retry.retries} in {wait:g} s", file=sys.stderr)
            sleep(wait)
    kept = part.stat().st_size if part.exists() else 0
    resume = f"; the {kept:,} bytes received are kept and the next run resumes from there" if kept else ""
    raise PipelineError(
        f"could not download {url} after {attempts} attempt(s): {last}\n"
        f"Check data.url and the network (proxy, firewall), or raise data.download.retries, then rerun{resume}."
    )


def transfer(url: str, part: Path, timeout_s: float) -> str:
    """One HTTP(S) try: resume or restart `part`, stream the body into it, return its sha256.

    Raises Transient for what a retry may fix, PipelineError for what it will not.
    """
    have = part.stat().st_size if part.exists() else 0
    # identity: the bytes on the wire are the file's bytes, so Range offsets and the hash agree.
    headers = {"Accept-Encoding": "identity"} | ({"Range": f"bytes={have}-"} if have else {})
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout_s) as response:
            if response.status_code == 416 and have:  # our partial file is longer than theirs: stale
                part.unlink()
                raise Transient("the partial download does not match the server's file; starting over")
            check_status(response, url)
            resumed = have > 0 and response.status_code == 206 and range_start(response) == have
            if response.status_code == 206 and not resumed:
                part.unlink(missing_ok=True)
                raise Transient("the server answered a different byte range; starting over")
            start = have if resumed else 0
            length = response.headers.get("Content-Length", "")
            total = start + int(length) if length.isdigit() else None
            digest = hash_file(part) if resumed else hashlib.sha256()
            with part.open("ab" if resumed else "wb") as out, progress(url, total, start) as bar:
                for chunk in response.iter_content(NET_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except requests.exceptions.SSLError as error:  # a ConnectionError, but retrying will not fix it
        raise PipelineError(f"cannot download {url}: {reason(error)}") from None
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError) as error:
        raise Transient(reason(error)) from None
    except requests.RequestException as error:  # a malformed URL, too many redirects...
        raise PipelineError(f"cannot download {url}: {reason(error)}; check data.url") from None
    size = part.stat().st_size
    if total is not None and size != total:  # urllib3 usually catches this first; belt and braces
        raise Transient(f"connection closed after {size:,} of {total:,} bytes")
    return digest.hexdigest()


def check_status(response: requests.Response, url: str) -> None:
    code = response.status_code
    if code in TRANSIENT_STATUS:
        raise Transient(f"HTTP {code} {response.reason}")
    if code >= 400:
        raise PipelineError(f"cannot download {url}: HTTP {code} {response.reason}; check data.url")


def range_start(response: requests.Response) -> int | None:
    """The first byte of a 206 answer, from `Content-Range: bytes START-END/TOTAL`."""
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def copy_file(url: str, part: Path) -> str:
    source = Path(url2pathname(urlsplit(url).path))
    if not source.is_file():
        raise PipelineError(f"data.url = {url!r}: no such file {source}")
    digest = hashlib.sha256()
    with source.open("rb") as src, part.open("wb") as out, progress(url, source.stat().st_size, 0) as bar:
        for block in iter(lambda: src.read(CHUNK), b""):
            out.write(block)
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def hash_file(path: Path) -> hashlib._Hash:
    """A sha256 object fed with `path`'s bytes, ready to take what follows them."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256")


def progress(url: str, total: int | None, initial: int) -> tqdm:
    name = urlsplit(url).path.rsplit("/", 1)[-1] or url
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                file=sys.stderr, disable=None, leave=False)


def reason(error: Exception) -> str:
    """The useful part of a requests error ('Connection refused'), not its 300-character repr."""
    text = str(error)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno:
        return errno.group(1).strip()
    return f"{type(error).__name__}: {text[:200]}"
