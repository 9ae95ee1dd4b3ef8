"""Write scikit-learn's digits (1,797 8x8 images) as grayscale PNGs, one folder per class:
the layout `data.source: {type: image_folder}` reads (configs/digits_images.yaml).

    python examples/make_digit_images.py data/digits_png

Needs only NumPy and scikit-learn (the PNGs are written by hand, no imaging library).
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np


def write_png(path: Path, pixels: np.ndarray) -> None:
    """A grayscale (h, w) or RGB (h, w, 3) uint8 array as a PNG file."""
    pixels = np.asarray(pixels, dtype=np.uint8)
    height, width = pixels.shape[:2]
    colour = 0 if pixels.ndim == 2 else 2
    rows = pixels.reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_digits(folder: Path) -> int:
    """Every digit as folder/<class>/<index>.png (pixels 0-16 scaled to 0-255)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    for index, (image, label) in enumerate(zip(images, digits.target, strict=True)):
        place = folder / str(label)
        place.mkdir(parents=True, exist_ok=True)
        write_png(place / f"{index:04d}.png", image)
    return len(images)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "data/digits_png")
    count = write_digits(target)
    sys.stdout.write(f"{count} PNGs written under {target}\n")
