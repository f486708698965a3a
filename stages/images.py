"""What one image file really is, and the RGB image the model should see.

`inspect_file` opens a file with Pillow, which identifies the format from the bytes (a PNG
named .jpg is a PNG; a text file named .jpg is not an image), checks the pixel count from
the header *before* decoding (a 50 kB PNG can claim 100,000 x 100,000 pixels and would
need 30 GB to decode), then decodes every pixel: `Image.open` only parses the header, so
a truncated JPEG opens fine and fails in `load()`.

Train reads images with `tf.io.decode_image(..., channels=3)`, which ignores EXIF
orientation and drops an alpha channel without compositing it. So an image is
*normalised* (EXIF rotation applied; CMYK, alpha, palette, 16-bit, grayscale converted to
8-bit RGB; formats other than JPEG/PNG/BMP re-encoded) into a PNG that train reads instead.
Only images that need it are rewritten; the rest are read as they are.

A 64-bit perceptual hash (pHash: the signs of the lowest 8x8 DCT frequencies of a 32x32
grayscale thumbnail against their median) finds near duplicates: re-encoded, resized or
slightly edited copies have hashes a few bits apart, while sha256 catches exact copies only.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# Formats train reads as they are. tf.io.decode_image reads GIF too, but GIFs are palette
# images (always normalised); WEBP, MPO and the rest are re-encoded so that train never
# depends on which formats a TensorFlow version decodes.
TF_FORMATS = {"JPEG", "PNG", "BMP"}
EXTENSIONS = {"JPEG": {".jpg", ".jpeg"}, "PNG": {".png"}, "GIF": {".gif"}, "BMP": {".bmp"}, "WEBP": {".webp"},
              "MPO": {".jpg", ".jpeg"}}
ORIENTATION = 0x0112  # the EXIF tag: 1 = upright, 2-8 = flipped and/or rotated
BACKGROUND = (255, 255, 255)  # transparent pixels become white: cut-out photos are shown on white
HASH_SIDE = 32  # pHash thumbnail side
HASH_BITS = 8  # lowest HASH_BITS x HASH_BITS frequencies -> a 64-bit hash

# The problems that stop an image being used; "" = none.
MISSING, EMPTY, NOT_AN_IMAGE, TOO_MANY_PIXELS, UNDECODABLE = (
    "missing", "empty", "not_an_image", "too_many_pixels", "undecodable")
SCAN_PROBLEMS = (MISSING, EMPTY, NOT_AN_IMAGE, TOO_MANY_PIXELS, UNDECODABLE)

_DCT = np.cos(np.pi * np.arange(HASH_SIDE)[:, None] * (2 * np.arange(HASH_SIDE)[None, :] + 1) / (2 * HASH_SIDE))
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def inspect_file(path: Path, max_pixels: int) -> tuple[dict, Image.Image | None]:
    """The facts about one file, and its normalised RGB image when it needs one.

    Columns (None where unknown or not tried, so each problem fails exactly one rule of
    the contract): exists, bytes, identified (the bytes are an image format), format,
    width, height, pixels, mode, channels, orientation, decodable, phash, normalized (what
    was changed, "" if nothing), problem, error.
    """
    facts = {"exists": path.is_file(), "bytes": None, "identified": None, "format": None, "width": None,
             "height": None, "pixels": None, "mode": None, "channels": None, "orientation": None,
             "decodable": None, "phash": None, "normalized": "", "problem": "", "error": ""}
    if not facts["exists"]:
        return {**facts, "problem": MISSING, "error": "file not found"}, None
    facts["bytes"] = path.stat().st_size
    if facts["bytes"] == 0:
        return {**facts, "problem": EMPTY, "error": "0 bytes"}, None
    try:
        # Pillow's own guard runs inside open(): a warning above Image.MAX_IMAGE_PIXELS (which
        # max_pixels may not exceed, so the check below rejects those images anyway), an
        # error above twice that.
        with Image.open(path) as image:
            facts.update(_header(image))
            if facts["pixels"] > max_pixels:
                return {**facts, "problem": TOO_MANY_PIXELS,
                        "error": f"{facts['width']}x{facts['height']} = {facts['pixels']:,} pixels "
                                 f"> validate.max_pixels = {max_pixels:,}; not decoded"}, None
            image.load()  # every pixel: a truncated or corrupt file fails here, not in open()
            rgb, changes = to_rgb(image, facts["orientation"], facts["format"])
            facts.update(decodable=True, phash=f"{phash(rgb):016x}", normalized="; ".join(changes))
            # A copy when to_rgb changed nothing but the format: `image` is closed on leaving `with`.
            normalised = (rgb.copy() if rgb is image else rgb) if changes else None
    except Image.DecompressionBombError as error:
        # Raised before the size is known: Pillow's message holds the pixel count (else the
        # limit it exceeded is a lower bound).
        found = re.search(r"\((\d+) pixels\)", str(error))
        pixels = int(found.group(1)) if found else 2 * (Image.MAX_IMAGE_PIXELS or 0) + 1
        return {**facts, "identified": True, "format": sniff_format(path), "pixels": pixels,
                "problem": TOO_MANY_PIXELS, "error": f"{type(error).__name__}: {error}"}, None
    except Exception as error:  # Pillow raises many types for bad data (OSError, SyntaxError, ValueError...)
        # A file cut inside its header fails in open(): its signature still says what it was meant to be.
        facts["format"] = facts["format"] or sniff_format(path)
        facts["identified"] = facts["format"] is not None
        if not facts["identified"]:
            return {**facts, "problem": NOT_AN_IMAGE, "error": "not an image format Pillow recognises"}, None
        return {**facts, "decodable": False, "problem": UNDECODABLE, "error": f"{type(error).__name__}: {error}"}, None
    return facts, normalised


SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"GIF87a": "GIF", b"GIF89a": "GIF",
              b"BM": "BMP", b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}


def sniff_format(path: Path) -> str | None:
    """The format a file's first bytes claim, for files Pillow cannot open."""
    with path.open("rb") as handle:
        head = handle.read(16)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((name for magic, name in SIGNATURES.items() if head.startswith(magic)), None)


def _header(image: Image.Image) -> dict:
    try:
        orientation = int(image.getexif().get(ORIENTATION, 1))
    except Exception:  # a malformed EXIF block is not a reason to reject the pixels
        orientation = 1
    return {"identified": True, "format": image.format or "", "width": image.width, "height": image.height,
            "pixels": image.width * image.height, "mode": image.mode, "channels": len(image.getbands()),
            "orientation": orientation if 1 <= orientation <= 8 else 1}


def to_rgb(image: Image.Image, orientation: int = 1, format: str = "JPEG") -> tuple[Image.Image, list[str]]:
    """8-bit RGB, upright: the image as the model should see it, and what had to change."""
    changes = []
    if orientation != 1:
        image = ImageOps.exif_transpose(image)
        changes.append(f"EXIF orientation {orientation} applied")
    mode = image.mode
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        # Pillow's convert() clips 16-bit values at 255 (a white image); scale instead.
        # 16-bit PNGs open as I;16 (or I); F is assumed to span 0-1 or 0-65535.
        values = np.asarray(image, dtype=np.float64)
        scale = 1 / 257 if mode != "F" or values.max(initial=0) > 1 else 255
        gray = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        image = Image.fromarray(gray, "L").convert("RGB")
        changes.append(f"{mode} 16-bit -> 8-bit RGB")
    elif mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.new("RGB", rgba.size, BACKGROUND)
        image.paste(rgba, mask=rgba.getchannel("A"))
        changes.append(f"{mode} -> RGB on white")
    elif mode != "RGB":
        image = image.convert("RGB")
        changes.append(f"{mode} -> RGB")
    if format not in TF_FORMATS and not changes:
        changes.append(f"{format} -> PNG")
    return image, changes


def phash(image: Image.Image) -> int:
    """64-bit perceptual hash (as imagehash.phash): bit set where a low DCT frequency > their median."""
    # reducing_gap: a cheap box reduction first, then Lanczos on the small image.
    small = image.resize((HASH_SIDE, HASH_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0).convert("L")
    pixels = np.asarray(small, dtype=np.float64)
    low = (_DCT @ pixels @ _DCT.T)[:HASH_BITS, :HASH_BITS]
    bits = (low > np.median(low)).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits that differ between every hash in `a` (n,) and every hash in `b` (m,): (n, m), uint64 inputs."""
    xor = a[:, None] ^ b[None, :]
    return _POPCOUNT[xor.view(np.uint8)].reshape(*xor.shape, 8).sum(axis=-1, dtype=np.int64)


def extension_matches(path: str, format: str | None) -> bool:
    """False for a file whose extension lies about its format (a PNG named .jpg)."""
    return not format or Path(path).suffix.lower() in EXTENSIONS.get(format, {Path(path).suffix.lower()})


def save_png(image: Image.Image, target: Path) -> None:
    """Lossless, so normalising never costs quality; compress_level 3 is ~3x faster than 6 for ~5% more bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, format="PNG", compress_level=3)


def scan_file(source: Path, target: Path | None, max_pixels: int) -> dict:
    """`inspect_file`, writing the normalised copy (if any) to `target`: the job of one scan worker."""
    facts, normalised = inspect_file(source, max_pixels)
    if normalised is not None and target is not None:
        save_png(normalised, target)
    return facts
