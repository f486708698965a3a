"""Safe extraction of .zip and .tar (.tar.gz, .tgz, .tar.bz2, .tar.xz) archives.

The format comes from the file's content, not its name. The whole extraction is refused,
naming the entry, when the archive holds:

- a path that is absolute or climbs out with `..` (zip-slip);
- a symbolic or hard link, a device file or a FIFO: an image dataset has no use for them,
  and links are how an archive writes outside its folder on a later entry;
- more than `max_files` entries or more than `max_bytes` unpacked (archive bombs).

Tar members go through the standard library's `data` extraction filter (PEP 706), which
rejects `..` escapes, device files and links leading outside. Two checks of our own sit in
front of it where it is more lenient than we want: it strips a leading `/` and extracts the
file inside the target (we refuse: the archive is not what it claims), and it allows links
that stay inside (we refuse all links). zipfile has no such filter (its `extract` silently
rewrites bad names), so zip entries are checked here and written out by hand.

Callers extract into a fresh temporary folder (`extracted`) that is deleted afterwards,
so a refused archive leaves nothing behind, inside the target or out.
"""

from __future__ import annotations

import gzip
import lzma
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from stages.errors import PipelineError

CHUNK = 1 << 20
DAMAGED = (zipfile.BadZipFile, tarfile.ReadError, gzip.BadGzipFile, EOFError, zlib.error, lzma.LZMAError)


@dataclass(frozen=True)
class Limits:
    max_files: int
    max_bytes: int


@dataclass(frozen=True)
class Extracted:
    files: int
    bytes: int


def archive_format(path: Path) -> str | None:
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    return None


@contextmanager
def extracted(archive: Path, parent: Path, limits: Limits, shown_as: str | None = None) -> Iterator[Path]:
    """Extract `archive` into a temporary folder under `parent`; yield it, delete it after."""
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".extract.", suffix=".tmp", dir=parent) as tmp:
        extract(archive, Path(tmp), limits, shown_as)
        yield Path(tmp)


def extract(archive: Path, target: Path, limits: Limits, shown_as: str | None = None) -> Extracted:
    """Extract `archive` into the existing folder `target`, refusing anything unsafe."""
    name = shown_as or str(archive)
    kind = archive_format(archive)
    if kind is None:
        raise PipelineError(f"{name} is not a zip or tar archive (.zip, .tar, .tar.gz, .tgz)")
    try:
        if kind == "zip":
            return extract_zip(archive, target, limits, name)
        return extract_tar(archive, target, limits, name)
    except DAMAGED as error:
        raise PipelineError(f"{name} is damaged or truncated ({type(error).__name__}: {error}); "
                            "fetch it again") from None
    except OSError as error:  # disk full, permissions...
        raise PipelineError(f"could not extract {name} into {target}: {error}") from None


def zip_entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a zip entry is refused, or None. Backslashes count as separators (Windows tools)."""
    name = info.filename
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return "absolute path"
    if ".." in re.split(r"[\\/]", name):
        return "path leads outside the archive's folder ('..')"
    mode = info.external_attr >> 16  # Unix mode bits, when the zip was made on Unix
    if stat.S_ISLNK(mode):
        return "symbolic link (links are not allowed)"
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "special file (device, FIFO or socket)"
    return None


def tar_member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a tar member is refused before the `data` filter sees it, or None (see module doc)."""
    if member.name.startswith("/") or re.match(r"[A-Za-z]:", member.name):
        return "absolute path"
    if member.issym():
        return "symbolic link (links are not allowed)"
    if member.islnk():
        return "hard link (links are not allowed)"
    return None


def refused(name: str, entry: str, problem: str) -> PipelineError:
    return PipelineError(f"refused to extract {name}: entry {entry!r}: {problem}. "
                         "Nothing from it was kept; repack the archive without that entry")


def check_limits(name: str, files: int, size: int, limits: Limits) -> None:
    if files > limits.max_files:
        raise PipelineError(f"{name} holds more than {limits.max_files:,} entries (data.limits.max_files); "
                            "raise the limit if you trust the archive")
    if size > limits.max_bytes:
        raise PipelineError(f"{name} unpacks to more than {limits.max_bytes:,} bytes "
                            f"({limits.max_bytes / 2**20:g} MiB, data.limits.max_unpacked_mb); "
                            "raise the limit if you trust the archive")


def extract_zip(archive: Path, target: Path, limits: Limits, name: str) -> Extracted:
    with zipfile.ZipFile(archive) as zf:
        entries = zf.infolist()
        # The central directory lists every entry up front: check them all before writing any.
        for info in entries:
            problem = zip_entry_problem(info)
            if problem:
                raise refused(name, info.filename, problem)
        total = sum(info.file_size for info in entries)
        check_limits(name, len(entries), total, limits)
        for info in entries:
            parts = [p for p in re.split(r"[\\/]", info.filename) if p not in ("", ".")]
            if not parts:
                continue
            dest = target.joinpath(*parts)
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            # zipfile stops at the declared size and checks the CRC, so `total` bounds what is written.
            with zf.open(info) as src, dest.open("wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
    return Extracted(len(entries), total)


def extract_tar(archive: Path, target: Path, limits: Limits, name: str) -> Extracted:
    if not hasattr(tarfile, "data_filter"):
        raise PipelineError("safe tar extraction needs Python >= 3.11.4 (tarfile extraction filters, PEP 706)")
    files = total = 0
    # Streamed member by member (a .tar.gz cannot be listed without decompressing it all).
    with tarfile.open(archive, "r:*") as tar:
        while (member := tar.next()) is not None:
            problem = tar_member_problem(member)
            if problem:
                raise refused(name, member.name, problem)
            files, total = files + 1, total + member.size
            check_limits(name, files, total, limits)
            try:
                # set_attrs=False: modes and times do not matter here, and a read-only
                # directory set early would block the files that follow it.
                tar.extract(member, target, set_attrs=False, filter="data")
            except tarfile.FilterError as error:
                raise refused(name, member.name, f"{type(error).__name__}: {error}") from None
            tar.members = []  # tarfile keeps every member it read; memory stays flat without them
    return Extracted(files, total)
