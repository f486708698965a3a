"""Small builders shared by tests: image trees on disk."""

from pathlib import Path

from PIL import Image


def image_tree(root: Path, counts: dict[str, int], size: int = 16) -> Path:
    """<root>/<label>/<i>.jpg with `counts[label]` small RGB images each."""
    for label, n in counts.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", (size, size), (i * 7 % 256, len(label) * 30, 90)).save(root / label / f"{i:03d}.jpg")
    return root


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height and whose pixel data is a few junk bytes:
    a decompression bomb stand-in that costs nothing unless someone tries to decode it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    junk = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", junk) + chunk(b"IEND", b"")


# What validate must make of each file of `dirty_tree`: (action, reason) for a file that is
# set aside or flagged, ("normalized", what changed) for one rewritten to RGB, ("ok", "")
# for one used as it is.
DIRTY = {
    "cats/empty.jpg": ("quarantined", "empty"),
    "cats/truncated.jpg": ("quarantined", "undecodable"),
    "dogs/cut_in_header.jpg": ("quarantined", "undecodable"),
    "dogs/text.jpg": ("quarantined", "not_an_image"),
    "dogs/tiny.jpg": ("quarantined", "too_small"),
    "cats/bomb.png": ("quarantined", "too_many_pixels"),
    "cats/copy_of_cat_000.jpg": ("quarantined", "duplicate_across_splits"),
    "dogs/near_copy_of_dog_000.jpg": ("reported", "near_duplicate_across_splits"),
    "cats/png_named.jpg": ("ok", ""),
    "cats/cmyk.jpg": ("normalized", "CMYK -> RGB"),
    "dogs/rgba.png": ("normalized", "RGBA -> RGB on white"),
    "dogs/palette.gif": ("normalized", "P -> RGB"),
    "cats/sixteen_bit.png": ("normalized", "I;16 16-bit -> 8-bit RGB"),
    "dogs/gray.jpg": ("normalized", "L -> RGB"),
    "cats/rotated.jpg": ("normalized", "EXIF orientation 6 applied"),
}
# Pairs (original, copy) that must sit in different splits for the copy to be a leak.
LEAKS = {"cats/copy_of_cat_000.jpg": "cats/cat_000.jpg", "dogs/near_copy_of_dog_000.jpg": "dogs/dog_000.jpg"}


KEEP_LABELS = {"cats": "cats", "dogs": "dogs"}  # data.class_map keeping dirty_tree's folder names as labels


def dirty_tree(root: Path, clean_per_class: int, size: int = 32) -> Path:
    """<root>/{cats,dogs}/: `clean_per_class` drawn faces each, plus every file of DIRTY."""
    import io

    import numpy as np
    from PIL import Image

    from stages.synthetic import draw_animal, image_rng

    def face(label: str, index: int, side: int = size) -> Image.Image:
        return draw_animal(label, image_rng(7, 0 if label == "cats" else 1, index), side)

    for label in ("cats", "dogs"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(clean_per_class):
            face(label, i).save(root / label / f"{label[:-1]}_{i:03d}.jpg", quality=90)

    def jpeg_bytes(image: Image.Image, **options) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", **options)
        return buffer.getvalue()

    (root / "cats/empty.jpg").write_bytes(b"")
    whole = jpeg_bytes(face("cats", 900, 64), quality=95)
    (root / "cats/truncated.jpg").write_bytes(whole[: len(whole) * 2 // 3])  # cut in the pixel data
    (root / "dogs/cut_in_header.jpg").write_bytes(whole[:300])  # cut before the first pixel
    (root / "dogs/text.jpg").write_text("this is a text file, not a JPEG\n")
    face("dogs", 901, 8).save(root / "dogs/tiny.jpg")
    (root / "cats/bomb.png").write_bytes(png_header_only(100_000, 100_000))
    (root / "cats/copy_of_cat_000.jpg").write_bytes((root / "cats/cat_000.jpg").read_bytes())
    near = Image.open(root / "dogs/dog_000.jpg").resize((size - 2, size - 2))
    (root / "dogs/near_copy_of_dog_000.jpg").write_bytes(jpeg_bytes(near, quality=70))
    buffer = io.BytesIO()
    face("cats", 902).save(buffer, "PNG")
    (root / "cats/png_named.jpg").write_bytes(buffer.getvalue())
    face("cats", 903).convert("CMYK").save(root / "cats/cmyk.jpg", quality=95)
    rgba = face("dogs", 904).convert("RGBA")
    alpha = np.full((size, size), 255, np.uint8)
    alpha[:, : size // 2] = 0  # left half transparent: must come out white, not black
    rgba.putalpha(Image.fromarray(alpha, "L"))
    rgba.save(root / "dogs/rgba.png")
    face("dogs", 905).convert("P").save(root / "dogs/palette.gif")
    ramp = np.linspace(0, 65535, size * size).reshape(size, size).astype(np.uint16)
    Image.fromarray(ramp).save(root / "cats/sixteen_bit.png")  # opens as I;16
    face("dogs", 906).convert("L").save(root / "dogs/gray.jpg")
    landscape = face("cats", 907).resize((size + size // 2, size))  # wider than high
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": upright it is higher than wide
    landscape.save(root / "cats/rotated.jpg", exif=exif, quality=95)
    return root
