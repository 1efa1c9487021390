"""TIFF codecs, palettes and colour: what :mod:`plateseg.imaging` and
:mod:`plateseg.imaging.stack` need to explain a file tifffile cannot decode without a
codec, to turn palette (colormap) pages into grey intensities, and to read a grey image
saved as RGB(A) as its one plane.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

import numpy as np

from plateseg.errors import ImageReadError, ImageShapeError

if TYPE_CHECKING:
    import tifffile

__all__ = [
    "grey_from_colour",
    "is_colour_shape",
    "is_missing_codec",
    "missing_codec_error",
    "palette_to_grey",
]

#: Names, as a microscopist knows them, of the TIFF compressions that need a codec
#: (tifffile's own ``COMPRESSION`` names the rest).
_COMPRESSION_NAMES = {
    5: "LZW",
    6: "JPEG",
    7: "JPEG",
    8: "Deflate",
    32946: "Deflate",
    22610: "JPEG-XR",
    34934: "JPEG-XR",
    33003: "JPEG 2000",
    33004: "JPEG 2000",
    33005: "JPEG 2000",
    34712: "JPEG 2000",
    34887: "LERC",
    34925: "LZMA",
    34933: "PNG",
    34927: "WebP",
    50001: "WebP",
    50000: "Zstd",
    50002: "JPEG XL",
    52546: "JPEG XL",
}


def is_missing_codec(exc: Exception) -> bool:
    """Whether tifffile failed for want of a codec rather than on bad bytes.

    Without ``imagecodecs`` tifffile falls back to pure-Python codecs; a codec it has
    no fallback for fails with "... requires the 'imagecodecs' package" (ValueError or
    NotImplementedError), and a fallback that needs a missing module (Zstd before
    Python 3.14) raises ImportError when called.
    """
    return isinstance(exc, ImportError) or "'imagecodecs'" in str(exc)


def _encoding(page: tifffile.TiffPage) -> str:
    """How a TIFF page is encoded, in words: ``"12-bit packed LZW-compressed TIFF"``."""
    import tifffile

    def name(enum: type[tifffile.COMPRESSION] | type[tifffile.PREDICTOR], value: int) -> str:
        try:
            return enum(value).name
        except ValueError:
            return str(value)

    words = []
    bits = int(page.bitspersample)
    if bits not in (1, 8, 16, 32, 64):
        words.append(f"{bits}-bit packed")
    compression = int(page.compression)
    if compression != 1:
        label = _COMPRESSION_NAMES.get(compression) or name(tifffile.COMPRESSION, compression)
        words.append(f"{label}-compressed")
    text = " ".join([*words, "TIFF"])
    predictor = int(page.predictor)
    if predictor not in (1, 2):  # horizontal differencing has a pure-Python fallback
        text += f" with the {name(tifffile.PREDICTOR, predictor).lower()} predictor"
    return text


def missing_codec_error(key: str, page: tifffile.TiffPage, reason: str) -> ImageReadError:
    """The :class:`ImageReadError` for a page tifffile could not decode for want of a
    codec, naming the encoding and whether imagecodecs is missing or lacks it."""
    what = _encoding(page)
    if importlib.util.find_spec("imagecodecs") is None:
        problem = (
            f"{what} needs the imagecodecs package, which is not installed "
            f"(pip install imagecodecs; {reason})"
        )
    else:
        problem = f"{what} needs a codec that the installed imagecodecs package lacks ({reason})"
    return ImageReadError(key, problem)


#: ITU-R BT.601 luma weights of red, green and blue.
_BT601 = np.array([0.299, 0.587, 0.114])


def palette_to_grey(indices: np.ndarray, colormap: np.ndarray | None, key: str) -> np.ndarray:
    """Map a palette TIFF's indices through its colormap to one grey plane.

    The identity grey ramp (``i``, ``256 i`` or ``257 i``) returns the indices; other
    grey maps their ``uint16`` values; colour maps BT.601 luminance as ``uint16``.
    """
    if colormap is None:
        raise ImageReadError(key, "palette TIFF without a colormap (ColorMap tag)")
    cmap = np.asarray(colormap).astype(np.int64)
    if cmap.ndim != 2 or cmap.shape[0] != 3 or cmap.shape[1] == 0:
        raise ImageReadError(key, f"palette TIFF with a malformed colormap of shape {cmap.shape}")
    index = indices.view(np.uint8) if indices.dtype.kind == "b" else indices  # 1-bit
    if index.dtype.kind not in "ui":
        raise ImageReadError(key, f"palette TIFF with {indices.dtype} indices")
    if index.size and (int(index.min()) < 0 or int(index.max()) >= cmap.shape[1]):
        raise ImageReadError(
            key,
            f"palette TIFF has indices up to {int(index.max())} but its colormap has only "
            f"{cmap.shape[1]} entries",
        )
    red, green, blue = cmap
    if np.array_equal(red, green) and np.array_equal(red, blue):
        ramp = np.arange(red.size, dtype=np.int64)
        if any(np.array_equal(red, ramp * step) for step in (1, 256, 257)):
            return indices
        table = red
    else:
        table = np.rint(_BT601 @ cmap)
    lookup = np.clip(table, 0, np.iinfo(np.uint16).max).astype(np.uint16)
    return lookup[index]


def is_colour_shape(shape: tuple[int, ...]) -> bool:
    """``(Y, X, 3)`` or ``(Y, X, 4)``: an RGB or RGBA image."""
    return len(shape) == 3 and shape[-1] in (3, 4)


def grey_from_colour(array: np.ndarray, key: str) -> np.ndarray:
    """The one grey plane of an RGB(A) ``(Y, X, 3|4)`` array that holds one: its colour
    channels are equal (grey saved as colour), or all but the equal ones are constant
    (one stain in one colour, e.g. DAPI as the blue of an otherwise black RGB, or cyan
    as G = B), or the varying ones are proportional to each other (one stain through a
    linear colour look-up table, e.g. orange: G = 0.65 R to within rounding; the
    channel with the widest range is returned, the one with the most grey levels), and
    its alpha (if any) is constant.

    >>> grey = np.arange(6, dtype=np.uint8).reshape(2, 3)
    >>> rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    >>> grey_from_colour(rgba, "a.png").tolist()
    [[0, 1, 2], [3, 4, 5]]
    >>> grey_from_colour(np.dstack([0 * grey, 0 * grey, grey]), "blue.png").tolist()
    [[0, 1, 2], [3, 4, 5]]

    Raises
    ------
    ImageShapeError
        Two varying colour channels are not proportional (a real colour image, or a
        non-linear look-up table: which holds the nuclei cannot be told), or alpha varies.
    """
    shape = tuple(int(n) for n in array.shape)
    planes = [array[..., c] for c in range(3)]
    varying = [plane for plane in planes if plane.min() != plane.max()] or planes[:1]
    varying.sort(key=lambda plane: float(plane.max()) - float(plane.min()), reverse=True)
    grey = all(np.array_equal(varying[0], plane) for plane in varying[1:]) or all(
        _proportional(plane, varying[0]) for plane in varying[1:]
    )
    alpha = array[..., 3] if shape[-1] == 4 else None
    if not grey or (alpha is not None and alpha.min() != alpha.max()):
        what = "its colour channels differ" if not grey else "its alpha channel varies"
        raise ImageShapeError(
            key,
            f"an RGB{'A' if shape[-1] == 4 else ''} colour image of shape {shape} ({what}); "
            "expected one grey-scale plane per channel file (an RGB image whose varying "
            "channels are equal or proportional — grey, one stain in blue or in one "
            "colour of a linear look-up table — is read as that plane)",
        )
    return np.ascontiguousarray(varying[0])


def _proportional(plane: np.ndarray, reference: np.ndarray) -> bool:
    """Whether ``plane`` is ``k * reference`` (0 < k <= 1, the reference having the wider
    range) to within the rounding of an integer image (one level) or 1e-6 of a float
    one's range: what a linear colour look-up table makes of one grey plane."""
    values = plane.astype(np.float64).ravel()
    base = reference.astype(np.float64).ravel()
    norm = float(base @ base)
    if norm == 0:
        return False
    k = float(values @ base) / norm
    tolerance = 1.0 if plane.dtype.kind in "uib" else 1e-6 * float(np.ptp(base))
    return 0 < k <= 1 and float(np.abs(values - k * base).max()) <= tolerance
