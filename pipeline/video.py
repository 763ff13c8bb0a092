"""Writing videos and image grids atomically (shared by reference and policy renders)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
from PIL import Image, ImageDraw

from robots.io import atomic_path


def write_mp4(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> int:
    """Encode RGB frames ([H, W, 3] uint8, all the same size) as H.264 mp4; returns the count.

    Raises:
        ValueError: no frames were given.
    """
    count = 0
    with atomic_path(path) as tmp:
        writer = None
        for frame in frames:
            if writer is None:
                height, width = frame.shape[:2]
                writer = imageio_ffmpeg.write_frames(
                    str(tmp), (width, height), fps=fps, codec="libx264", quality=7,
                    macro_block_size=8, output_params=["-f", "mp4"])
                writer.send(None)
            writer.send(np.ascontiguousarray(frame))
            count += 1
        if writer is None:
            raise ValueError(f"{path}: no frames to write")
        writer.close()
    return count


def label(frame: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """The frame with text lines drawn in its top-left corner (white on a dark box)."""
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    text = "\n".join(lines)
    left, top, right, bottom = draw.multiline_textbbox((8, 6), text)
    draw.rectangle((left - 4, top - 3, right + 4, bottom + 3), fill=(0, 0, 0))
    draw.multiline_text((8, 6), text, fill=(255, 255, 255))
    return np.asarray(image)


def write_contact_sheet(path: str | Path, tiles: Sequence[np.ndarray], columns: int = 4) -> None:
    """Arrange equally sized RGB tiles in a grid and write it as PNG."""
    if not tiles:
        raise ValueError(f"{path}: no tiles for the contact sheet")
    height, width = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    sheet = np.full((rows * height, columns * width, 3), 255, np.uint8)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        sheet[row * height:(row + 1) * height, column * width:(column + 1) * width] = tile
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, sheet, extension=".png")
