"""stages/images.py: what a file really is, the RGB image train should see, perceptual hashes."""

import io

import numpy as np
import pytest
from PIL import Image

from stages import images
from stages.synthetic import draw_animal, image_rng
from tests.helpers import DIRTY, dirty_tree, png_header_only

MAX_PIXELS = 40_000_000


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    return dirty_tree(tmp_path_factory.mktemp("dirty"), clean_per_class=2)


@pytest.mark.parametrize(
    "name, problem, format",
    [
        ("cats/empty.jpg", "empty", None),
        ("cats/truncated.jpg", "undecodable", "JPEG"),  # the header parses; the pixels do not
        ("dogs/cut_in_header.jpg", "undecodable", "JPEG"),  # open() fails; the signature says JPEG
        ("dogs/text.jpg", "not_an_image", None),
        ("cats/bomb.png", "too_many_pixels", "PNG"),  # Pillow's own guard, inside Image.open
        ("cats/png_named.jpg", "", "PNG"),  # the format comes from the bytes, not the name
        ("dogs/tiny.jpg", "", "JPEG"),  # too small is the contract's call, not a decoding problem
    ],
)
def test_inspect_reads_the_problem_and_the_real_format(dirty, name, problem, format):
    facts, _ = images.inspect_file(dirty / name, MAX_PIXELS)
    assert facts["problem"] == problem
    assert facts["format"] == format
    assert facts["decodable"] is {"": True, "undecodable": False}.get(problem)
    assert bool(facts["error"]) == bool(problem)


def test_decompression_bomb_reports_the_claimed_pixels(dirty):
    facts, image = images.inspect_file(dirty / "cats/bomb.png", MAX_PIXELS)
    assert facts["pixels"] == 100_000 * 100_000 and image is None and "DecompressionBombError" in facts["error"]


def test_missing_file():
    facts, image = images.inspect_file(images.Path("/no/such/file.jpg"), MAX_PIXELS)
    assert (facts["exists"], facts["problem"], image) == (False, "missing", None)


def test_too_many_pixels_is_rejected_from_the_header_without_decoding(tmp_path):
    # 3000 x 3000 is below Pillow's guard; the junk pixel data would fail to decode, so
    # `too_many_pixels` (and not `undecodable`) shows decoding was never tried.
    path = tmp_path / "big.png"
    path.write_bytes(png_header_only(3000, 3000))
    facts, image = images.inspect_file(path, max_pixels=1_000_000)
    assert facts["problem"] == "too_many_pixels" and image is None
    assert (facts["width"], facts["height"], facts["decodable"]) == (3000, 3000, None)
    assert "validate.max_pixels" in facts["error"] and "not decoded" in facts["error"]
    assert images.inspect_file(path, max_pixels=10_000_000)[0]["problem"] == "undecodable"


@pytest.mark.parametrize("name, change", [(n, c) for n, (kind, c) in DIRTY.items() if kind == "normalized"])
def test_images_train_cannot_read_as_they_are_are_normalised(dirty, name, change):
    facts, image = images.inspect_file(dirty / name, MAX_PIXELS)
    assert facts["problem"] == "" and facts["normalized"] == change
    assert image.mode == "RGB"


def test_plain_rgb_jpeg_and_png_are_used_as_they_are(dirty):
    for name in ("cats/cat_000.jpg", "cats/png_named.jpg"):
        facts, image = images.inspect_file(dirty / name, MAX_PIXELS)
        assert facts["normalized"] == "" and image is None
        assert (facts["mode"], facts["channels"]) == ("RGB", 3)


def test_normalised_pixels_are_right(dirty):
    rotated = images.inspect_file(dirty / "cats/rotated.jpg", MAX_PIXELS)[1]
    assert rotated.size == (32, 48)  # stored 48 wide x 32 high, orientation 6: upright it is 32 x 48

    rgba = np.asarray(images.inspect_file(dirty / "dogs/rgba.png", MAX_PIXELS)[1])
    assert (rgba[:, :16] == 255).all()  # transparent half -> white background
    assert rgba[:, 16:].mean() < 250  # the opaque half keeps its pixels

    sixteen = np.asarray(images.inspect_file(dirty / "cats/sixteen_bit.png", MAX_PIXELS)[1])
    assert sixteen.min() == 0 and sixteen.max() == 255  # scaled, not clipped to white at 255/65535
    assert 120 < sixteen.mean() < 135  # a 0..65535 ramp -> 0..255, mean ~127

    original = np.asarray(draw_animal("cats", image_rng(7, 0, 903), 32), dtype=float)
    cmyk = np.asarray(images.inspect_file(dirty / "cats/cmyk.jpg", MAX_PIXELS)[1], dtype=float)
    assert np.abs(cmyk - original).mean() < 12  # the colours survive CMYK (not inverted, not lost)


def test_train_reader_sees_the_normalised_images_as_pillow_does(dirty, tmp_path):
    """stages/dataset.py decodes with TensorFlow: the PNG copies must read back as the RGB
    image, with the rotation applied; the raw files would not (that is why copies exist)."""
    import tensorflow as tf

    for name, (kind, _) in DIRTY.items():
        if kind != "normalized":
            continue
        target = tmp_path / f"{name}.png"
        facts = images.scan_file(dirty / name, target, MAX_PIXELS)
        expected = np.asarray(images.inspect_file(dirty / name, MAX_PIXELS)[1])
        seen = tf.io.decode_image(tf.io.read_file(str(target)), channels=3, expand_animations=False).numpy()
        assert facts["normalized"] and np.array_equal(seen, expected), name
    raw = tf.io.decode_image(tf.io.read_file(str(dirty / "cats/rotated.jpg")), channels=3).numpy()
    assert raw.shape[:2] == (32, 48)  # TensorFlow ignores EXIF orientation


def _jpeg(image: Image.Image, **options) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return Image.open(buffer)


def test_phash_is_stable_under_reencoding_and_resizing_but_tells_images_apart():
    image = draw_animal("dogs", image_rng(1, 1, 1), 150)
    same = images.phash(image)
    assert bin(same ^ images.phash(_jpeg(image.resize((120, 120)), quality=60))).count("1") <= 4
    others = [images.phash(draw_animal(label, image_rng(1, c, i), 150))
              for c, label in enumerate(("cats", "dogs")) for i in range(2, 40)]
    assert min(bin(same ^ other).count("1") for other in others) > 6  # similarity < 0.9 to every other


def test_hamming_counts_differing_bits():
    a = np.array([0, 0xFFFFFFFFFFFFFFFF, 0b1011], dtype=np.uint64)
    b = np.array([0, 0b1], dtype=np.uint64)
    assert images.hamming(a, b).tolist() == [[0, 1], [64, 63], [3, 2]]


@pytest.mark.parametrize("path, format, matches", [("a/x.jpg", "JPEG", True), ("a/x.JPEG", "JPEG", True),
                                                   ("a/x.jpg", "PNG", False), ("a/x.jpg", None, True)])
def test_extension_matches(path, format, matches):
    assert images.extension_matches(path, format) is matches


def test_max_pixels_cap_is_pillows_guard():
    from stages.params import PILLOW_MAX_PIXELS

    assert PILLOW_MAX_PIXELS == Image.MAX_IMAGE_PIXELS  # validate.max_pixels may only lower Pillow's limit
