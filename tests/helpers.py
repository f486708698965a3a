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
