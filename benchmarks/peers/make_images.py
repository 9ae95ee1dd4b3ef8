"""Write a folder of generated PNGs, one subfolder per class: the data of the image
benchmark (benchmarks/images.py, issue 17).

    python benchmarks/peers/make_images.py DIR [--count 20000] [--size 64]

Ten classes, `count / 10` RGB images each, `size` x `size`: each class a colour and a
stripe direction, with noise on top, so a small CNN learns them in a few epochs. The
same files every time (seeded); a folder that already holds as many is left as it is.
Needs only NumPy (the PNG writer of examples/make_digit_images.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "make_digit_images.py"
CLASSES = 10


def _write_png():
    spec = importlib.util.spec_from_file_location("make_digit_images", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_png


def image(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One image of class `kind`: stripes at the class's angle in its colour, noise."""
    angle = np.pi * (kind % 5) / 5
    ys, xs = np.mgrid[0:size, 0:size]
    phase = rng.uniform(0, 2 * np.pi)
    stripes = 0.5 + 0.5 * np.sin((xs * np.cos(angle) + ys * np.sin(angle)) * 0.5 + phase)
    colour = np.array([(kind * 53) % 256, (kind * 97 + 80) % 256, (kind * 29 + 160) % 256])
    if kind >= 5:
        colour = 255 - colour
    pixels = stripes[..., None] * colour + rng.normal(0, 24, size=(size, size, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def write_images(folder: Path, count: int, size: int) -> int:
    """count images as folder/class_<k>/<index>.png; the number written (0 when there)."""
    per_class = count // CLASSES
    there = sum(1 for _ in folder.rglob("*.png")) if folder.is_dir() else 0
    if there == per_class * CLASSES:
        return 0
    if there:
        raise SystemExit(f"{folder} holds {there} PNGs, not {per_class * CLASSES}: give "
                         "another folder (or remove it)")
    write_png = _write_png()
    rng = np.random.default_rng(0)
    for kind in range(CLASSES):
        place = folder / f"class_{kind}"
        place.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            write_png(place / f"{index:05d}.png", image(kind, size, rng))
    return per_class * CLASSES


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    written = write_images(args.folder, args.count, args.size)
    sys.stdout.write(f"{written} PNGs written under {args.folder}\n" if written else
                     f"{args.folder} already holds the images\n")
