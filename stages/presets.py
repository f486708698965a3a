"""Named public datasets for `data.preset`: a URL and, where known, its pinned sha256.

A hash is listed only when it was published by a third party we can point to; it is never
computed here (the archives cannot be downloaded from where this code is written) and never
guessed. Where none is listed, the first fetch downloads the archive, keeps it in the
download cache and stops with its actual sha256, for the user to check and pin as
`data.sha256` (see README, "Data sources").
"""

from __future__ import annotations

from typing import NamedTuple


class Preset(NamedTuple):
    url: str
    sha256: str | None
    about: str


PRESETS: dict[str, Preset] = {
    # Google's 3,000-image subset used by the TensorFlow/Keras tutorials:
    # cats_and_dogs_filtered/{train,validation}/{cats,dogs}/ (1,000 + 500 per class).
    # No published sha256 found: pin yours on first download.
    "cats_and_dogs_filtered": Preset(
        url="https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip",
        sha256=None,
        about="3,000 JPEGs, train/validation split, ~68 MB",
    ),
    # Microsoft's Kaggle Cats and Dogs archive: PetImages/{Cat,Dog}/ (~12,500 each, some
    # corrupt or not JPEG at all). 824,887,076 bytes; the sha256 is the one recorded in
    # huggingface/datasets (datasets/cats_vs_dogs/dataset_infos.json, download_checksums)
    # and, independently, in gomlx (examples/dogsvscats, DownloadChecksum).
    "pet_images": Preset(
        url="https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/"
        "kagglecatsanddogs_5340.zip",
        sha256="b7974bd00a84a99921f36ee4403f089853777b5ae8d151c76a86e64900334af9",
        about="~25,000 JPEGs, no split, ~825 MB",
    ),
}
