"""Image reading and writing for restorecli.

One function reads any supported file (or in-memory bytes, which is how stdin
arrives) into an :class:`Image`: upright pixels as a numpy array plus the
metadata needed to write the result back "in kind".  ``encode_image`` /
``write_image`` do the reverse.

Formats and back ends
---------------------
* PNG  8-bit: Pillow.  16-bit: decoded with ``cv2.imdecode(IMREAD_UNCHANGED)``
  (Pillow reduces 16-bit RGB(A) PNGs to 8 bits); encoded with ``cv2.imencode``
  (gray, RGB, RGBA, in BGR order) or, for 16-bit gray+alpha which neither
  Pillow nor OpenCV writes, by a small numpy + zlib encoder in this module.
  All metadata chunks (iCCP, eXIf, pHYs, tEXt/zTXt/iTXt, XMP) are parsed and
  written by this module, so 8- and 16-bit files carry the same metadata.
* JPEG, WebP, BMP: Pillow (8-bit only).  RGBA BMPs are written by this module
  (BITMAPV4HEADER with an alpha mask) because Pillow writes a 32-bit BMP whose
  alpha it does not read back.
* TIFF: tifffile (8/16-bit unsigned and float32; gray, gray+alpha, RGB, RGBA,
  palette, contiguous or planar).  Compressions tifffile cannot decode without
  the optional ``imagecodecs`` package (LZW, JPEG, ...) are read by OpenCV when
  the samples are 16-bit or float and contiguous (Pillow would cut them to 8 bits),
  otherwise by Pillow, as are photometric interpretations tifffile does not map
  (CMYK, YCbCr, ...).  Only an extra sample
  tagged as alpha is alpha (premultiplied alpha is divided out); an unspecified
  one (a saved selection) is dropped.
  tifffile cannot write EXIF sub-IFDs, so this module appends them (see
  ``_tiff_add_exif``).

Conventions
-----------
* ``pixels`` are HxW (gray) or HxWx3 (RGB order); alpha is kept separately and
  is never altered (only rescaled when the bit depth changes).  Palette images
  become RGB, or RGBA when they have transparency; a PNG/TIFF tRNS colour key
  becomes an alpha channel; CMYK/YCbCr become RGB (the ICC profile, which
  described the old colour space, is then dropped).
* EXIF is kept as the raw TIFF-structured blob *without* the ``Exif\\0\\0``
  prefix.  On read the EXIF Orientation (or, for TIFF, the file's own
  Orientation tag) is applied to the pixels and the Orientation tag in the
  blob is set to 1; on write it is set to 1 again, PixelX/YDimension are
  updated to the written size and the embedded thumbnail (IFD1) is unlinked: it
  shows the input as stored (before rotation, before restoration), and viewers
  that preview it would show it sideways or degraded.  EXIF and ICC are written
  to PNG, JPEG, TIFF and WebP; BMP carries neither.
* Output bit depth follows ``Image.bit_depth`` unless ``bit_depth`` is given.
  An explicitly requested depth the format cannot hold raises
  :class:`ImageFormatError`; an inherited one is lowered to what the format
  holds (float32 -> 16-bit PNG, anything -> 8-bit JPEG/WebP/BMP).
* JPEG quality: the ``quality`` argument if given; otherwise, for an image read
  from a JPEG, its estimated quality (matching its luminance quantisation table
  against the IJG tables) but never below 90, so that a restored image is not
  degraded again; otherwise 95.  Chroma subsampling is kept from a JPEG input
  and is off (4:4:4) for everything else; progressive is kept; Huffman tables
  are optimised (except for very detailed images whose optimised output would
  not fit Pillow's encoder buffer: those are written as plain baseline).
* WebP is written lossless (``exact``: colours under transparent pixels are
  kept) unless the image came from a lossy source (JPEG or lossy WebP) or a
  ``quality`` is given, in which case it is lossy at that quality (default 95)
  with lossless alpha.  WebP has no gray mode: gray is written as RGB.
* ``max_pixels`` is checked against the header before any pixel data is
  decoded.  Pillow's own decompression-bomb guard is kept out of the way (it
  would otherwise fire first, with its own message, on large images).
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import struct
import sys
import tempfile
import threading
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import RestoreError

__all__ = [
    "Image",
    "ImageError",
    "ImageFormatError",
    "ImageTooLargeError",
    "ImageTruncatedError",
    "OutputExistsError",
    "IMAGE_SUFFIXES",
    "FORMATS",
    "read_image",
    "encode_image",
    "write_image",
    "format_from_path",
    "suffix_from_content",
    "write_file_atomic",
    "alpha_is_opaque",
    "check_output_alpha",
    "check_output_size",
    "to_float",
    "from_float",
]

FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "BMP")
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}
)
_SUFFIX_FORMAT = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF",
    ".tiff": "TIFF", ".webp": "WEBP", ".bmp": "BMP",
}
_FORMAT_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp"}
_FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF"}
_FORMAT_DEPTHS = {"PNG": (8, 16), "TIFF": (8, 16, 32), "JPEG": (8,), "WEBP": (8,), "BMP": (8,)}
_DEPTH_DTYPE = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16), 32: np.dtype(np.float32)}

DEFAULT_JPEG_QUALITY = 95
JPEG_QUALITY_FLOOR = 90
DEFAULT_WEBP_QUALITY = 95
_PNG_COMPRESSION = 6
_WEBP_MAX_SIDE = 16383
_JPEG_MAX_SIDE = 65535
_MAX_META_BYTES = 64 << 20  # cap on decompressed iCCP / zTXt / iTXt payloads


# --------------------------------------------------------------------------- errors


class ImageError(RestoreError):
    """An image could not be read or written (one-line, user-facing message)."""


class ImageFormatError(ImageError):
    """Unsupported format, or a format that cannot hold what was asked of it."""


class ImageTruncatedError(ImageError):
    """The file ends before the image data does."""


class ImageTooLargeError(ImageError):
    """The image has more pixels than the allowed limit."""

    def __init__(self, width: int, height: int, limit: int):
        self.width, self.height, self.limit = width, height, limit
        self.pixels = width * height
        super().__init__(
            f"image is too large: {width}x{height} = {self.pixels:,} pixels, "
            f"above the limit of {limit:,} pixels"
        )


class OutputExistsError(ImageError, FileExistsError):
    """The output file exists and overwriting was not allowed."""

    def __init__(self, path: os.PathLike | str):
        self.path = Path(path)
        ImageError.__init__(self, f"output file already exists: {self.path} (use --overwrite to replace it)")

    def __str__(self) -> str:  # FileExistsError would format errno/strerror otherwise
        return self.args[0]


# --------------------------------------------------------------------------- Image


@dataclass
class Image:
    """Decoded image plus the metadata to write it back.

    ``pixels``: HxW or HxWx3 (RGB), uint8/uint16/float32, upright.
    ``alpha``: HxW or None, same dtype as ``pixels``.
    ``format``: one of :data:`FORMATS` (the format read, or to write by default).
    ``bit_depth``: 8, 16 or 32 (float32); the default output depth.
    ``exif``: raw EXIF (TIFF structure, no ``Exif\\0\\0`` prefix), Orientation=1.
    ``icc_profile``: raw ICC profile bytes.
    ``extra``: other carried metadata.  Keys that may appear:
    ``dpi`` (x, y) floats; ``xmp`` bytes; ``png_text`` dict; ``png_colour`` (PNG gAMA,
    cHRM, sRGB, cICP chunk payloads by name, written back to PNG); ``jpeg_quality``
    (estimate), ``jpeg_subsampling`` (0=4:4:4, 1=4:2:2, 2=4:2:0),
    ``progressive``, ``comment`` (JPEG); ``webp_lossless``; ``tiff_compression``;
    ``n_frames`` (only the first frame/page is read); ``source_mode`` (colour
    model before conversion, e.g. ``"P"`` or ``"CMYK"``).
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    format: str = "PNG"
    bit_depth: int = 0  # 0: derive from pixels.dtype
    exif: bytes | None = None
    icc_profile: bytes | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.bit_depth:
            self.bit_depth = _dtype_depth(np.asarray(self.pixels).dtype)
        if isinstance(self.format, str):
            self.format = _FORMAT_ALIASES.get(self.format.upper(), self.format.upper())

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def _dtype_depth(dtype: np.dtype) -> int:
    dtype = np.dtype(dtype)
    if dtype == np.uint8 or dtype == np.bool_:
        return 8
    if dtype == np.uint16:
        return 16
    if dtype.kind == "f":
        return 32
    raise ValueError(f"unsupported pixel dtype {dtype} (use uint8, uint16 or float32)")


# --------------------------------------------------------------------------- helpers


def format_from_path(path: str | os.PathLike) -> str:
    """Output format from the file suffix (case-insensitive)."""
    suffix = Path(path).suffix.lower()
    try:
        return _SUFFIX_FORMAT[suffix]
    except KeyError:
        what = f"'{suffix}'" if suffix else "(none)"
        raise ImageFormatError(
            f"unsupported image file extension {what}: use .png, .jpg, .jpeg, .tif, .tiff, .webp or .bmp"
        ) from None


def suffix_from_content(path: str | os.PathLike) -> str:
    """The suffix (``.png``, ``.jpg``, ...) of the image format the file's first bytes show:
    what an output named after a file without an extension gets. :class:`ImageError` if the
    file cannot be read or is not an image of a supported format."""
    try:
        with open(os.fspath(path), "rb") as f:
            head = f.read(64)
    except OSError as e:
        raise _read_error(e) from None
    if not head:
        raise ImageError("empty file (0 bytes)")
    return _FORMAT_SUFFIX[_sniff(head)]


def check_output_depth(fmt: str, bit_depth: int) -> None:
    """Raise :class:`ImageFormatError` when ``fmt`` cannot hold ``bit_depth`` (8, 16, 32 = float)."""
    fmt = _normalize_format(fmt)
    _target_depth(fmt, Image(np.zeros((1, 1), np.uint8)), np.zeros((1, 1), np.uint8), bit_depth)


def alpha_is_opaque(alpha: np.ndarray) -> bool:
    """True when an alpha channel is fully opaque everywhere (the maximum of its type), as many
    exported PNGs' are: writing it as JPEG then loses nothing."""
    top = 1.0 if alpha.dtype.kind == "f" else np.iinfo(alpha.dtype).max
    return bool(alpha.size) and float(alpha.min()) >= top


def check_output_alpha(fmt: str) -> None:
    """Raise :class:`ImageFormatError` when ``fmt`` cannot store an alpha channel."""
    if _normalize_format(fmt) == "JPEG":
        raise ImageFormatError("JPEG cannot store an alpha channel; write PNG, TIFF or WebP to keep it")


def check_output_size(fmt: str, width: int, height: int) -> None:
    """Raise :class:`ImageFormatError` when ``fmt`` cannot hold a ``width`` x ``height`` image
    (WebP: at most 16383 pixels a side, JPEG: 65535)."""
    fmt = _normalize_format(fmt)
    limit = {"WEBP": _WEBP_MAX_SIDE, "JPEG": _JPEG_MAX_SIDE}.get(fmt)
    if limit is not None and max(width, height) > limit:
        name = "WebP" if fmt == "WEBP" else fmt
        raise ImageFormatError(f"{name} images are limited to {limit} pixels a side and this one is "
                               f"{width}x{height}: write PNG or TIFF")


def _normalize_format(fmt: str) -> str:
    f = str(fmt).strip().upper().lstrip(".")
    f = _FORMAT_ALIASES.get(f, f)
    if f not in FORMATS:
        raise ImageFormatError(f"unsupported image format '{fmt}': use PNG, JPEG, TIFF, WEBP or BMP")
    return f


def to_float(pixels: np.ndarray) -> np.ndarray:
    """float32 in [0, 1] from uint8/uint16; float32 passes through (not clipped, not copied)."""
    a = np.asarray(pixels)
    if a.dtype == np.float32:
        return a
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255)
    if a.dtype == np.uint16:
        return a.astype(np.float32) / np.float32(65535)
    if a.dtype.kind == "f":
        return a.astype(np.float32)
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    raise TypeError(f"to_float: unsupported dtype {a.dtype}")


def from_float(x: np.ndarray, dtype) -> np.ndarray:
    """Back to uint8/uint16 (scale, round half to even, clip; NaN -> 0) or float32."""
    dtype = np.dtype(dtype)
    a = np.asarray(x)
    if dtype == np.float32:
        return a.astype(np.float32, copy=False)
    if dtype == np.uint8:
        scale = 255.0
    elif dtype == np.uint16:
        scale = 65535.0
    else:
        raise TypeError(f"from_float: unsupported dtype {dtype}")
    y = np.multiply(a, np.float32(scale), dtype=np.float32)  # one fresh array, no extra copy
    np.nan_to_num(y, copy=False, nan=0.0)
    np.rint(y, out=y)
    np.clip(y, 0, scale, out=y)
    return y.astype(dtype)


def _convert_depth(a: np.ndarray, depth: int) -> np.ndarray:
    target = _DEPTH_DTYPE[depth]
    if a.dtype == target:
        return a
    if a.dtype == np.uint8 and target == np.uint16:
        return a.astype(np.uint16) * np.uint16(257)
    if a.dtype == np.uint16 and target == np.uint8:
        # round(x / 257); 257 is odd so there are no ties
        return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * np.uint8(255)
        return _convert_depth(a, depth)
    return from_float(to_float(a), target)


def _one_line(text: str, limit: int = 200) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _tidy_dpi(x: float, y: float) -> tuple[float, float] | None:
    """DPI from pixels-per-metre storage (PNG, BMP) is off by up to 0.013; snap to whole numbers."""
    out = []
    for v in (float(x), float(y)):
        if v <= 0:
            return None
        r = round(v)
        out.append(float(r) if abs(v - r) < 0.02 else v)
    return out[0], out[1]


def _check_size(width: int, height: int, max_pixels: int | None) -> None:
    if width <= 0 or height <= 0:
        raise ImageError(f"image has no pixels (header says {width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(width, height, int(max_pixels))


_PIL_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _pillow_allows(n_pixels: int):
    """Let Pillow open an image of ``n_pixels`` without its decompression-bomb guard firing.

    Our own ``max_pixels`` check has already run.  ``PIL.Image.MAX_IMAGE_PIXELS`` is a
    module global, so it is raised only when needed, only as far as needed, and
    restored afterwards (under a lock).
    """
    from PIL import Image as PILImage

    limit = PILImage.MAX_IMAGE_PIXELS
    if limit is None or n_pixels <= limit:  # Pillow neither warns nor raises at or below its limit
        yield
        return
    with _PIL_LIMIT_LOCK:
        saved = PILImage.MAX_IMAGE_PIXELS
        PILImage.MAX_IMAGE_PIXELS = max(n_pixels, saved or 0)
        try:
            yield
        finally:
            PILImage.MAX_IMAGE_PIXELS = saved


class _CapturedStderr:
    text = ""


@contextlib.contextmanager
def _stderr_captured():
    """File descriptor 2 redirected to a temporary file for the block; what C libraries printed
    there (libjpeg's warnings, libtiff's errors) is then ``.text``, for us to report in one line
    or drop, instead of stray lines around our own message."""
    captured = _CapturedStderr()
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2 (embedded, closed): nothing to catch
        yield captured
        return
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 2)
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read(4096).decode("utf-8", "replace").strip()


def _decode_error(fmt: str, exc: BaseException) -> ImageError:
    if isinstance(exc, ImageError):
        return exc
    fmt = "WebP" if fmt == "WEBP" else fmt
    msg = _one_line(str(exc)) or type(exc).__name__
    low = msg.lower()
    if isinstance(exc, EOFError) or "truncated" in low or "premature end" in low or "not enough image data" in low:
        return ImageTruncatedError(f"truncated {fmt} file: the image data ends early")
    return ImageError(f"corrupt {fmt} data: {msg}")


# --------------------------------------------------------------------------- reading


def read_image(source: str | os.PathLike | bytes, max_pixels: int | None = None) -> Image:
    """Read an image from a path, from bytes (e.g. stdin) or from a binary file object.

    The format is detected from the content, not the name.  Raises
    :class:`ImageError` (or a subclass) for anything wrong with the data, and
    :class:`ImageTooLargeError` if the header announces more than ``max_pixels``
    pixels (checked before decoding).  The input is only ever opened for reading.
    """
    data = _read_source(source)
    if not data:
        raise ImageError("empty file (0 bytes)")
    fmt = _sniff(data)
    reader = {"PNG": _read_png, "JPEG": _read_jpeg, "TIFF": _read_tiff,
              "WEBP": _read_webp, "BMP": _read_bmp}[fmt]
    try:
        return reader(data, max_pixels)
    except ImageError:
        raise
    except MemoryError:
        raise ImageError("not enough memory to decode the image") from None
    except Exception as exc:  # decoder libraries raise all sorts of things
        raise _decode_error(fmt, exc) from exc


def _read_source(source) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, (bytearray, memoryview)):
        return bytes(source)
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("read_image needs a binary file object")
        return bytes(data)
    try:
        with open(os.fspath(source), "rb") as f:
            return f.read()
    except OSError as e:
        raise _read_error(e) from None


def _read_error(e: OSError) -> ImageError:
    if isinstance(e, FileNotFoundError):
        return ImageError("file not found")
    if isinstance(e, IsADirectoryError):
        return ImageError("is a directory, not an image file")
    if isinstance(e, PermissionError):
        return ImageError("permission denied")
    return ImageError(f"cannot read file: {e.strerror or e}")


_OTHER_MAGIC = [
    (b"GIF87a", "GIF"), (b"GIF89a", "GIF"), (b"%PDF", "PDF"), (b"8BPS", "PSD"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"qoif", "QOI"), (b"DDS ", "DDS"), (b"\x00\x00\x01\x00", "ICO"),
]


def _sniff(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:2] == b"BM" and len(data) >= 18:
        return "BMP"
    for magic, name in _OTHER_MAGIC:
        if data.startswith(magic):
            raise ImageFormatError(f"{name} images are not supported (supported: PNG, JPEG, TIFF, WebP, BMP)")
    if data[4:8] == b"ftyp":
        raise ImageFormatError("HEIF/AVIF images are not supported (supported: PNG, JPEG, TIFF, WebP, BMP)")
    if len(data) < 16 and (b"\x89PNG\r\n\x1a\n".startswith(data) or data.startswith(b"\xff\xd8")):
        raise ImageTruncatedError("truncated file: it ends inside the image header")
    raise ImageFormatError("not a recognised image file (not PNG, JPEG, TIFF, WebP or BMP data)")


def _icc_fits(icc: bytes, pixels: np.ndarray) -> bool:
    """Whether an ICC profile's data colour space (header bytes 16-19) is the pixels' own: an RGB
    profile in a gray file is invalid, and a writer (libpng) would complain about the output."""
    space = icc[16:20] if len(icc) >= 20 else b""
    return space == (b"GRAY" if pixels.ndim == 2 else b"RGB ")


def _finish(pixels, alpha, fmt, depth, exif, icc, extra, orientation) -> Image:
    if icc and not _icc_fits(icc, pixels):
        icc = None
    if orientation != 1:
        pixels = _orient(pixels, orientation)
        alpha = _orient(alpha, orientation) if alpha is not None else None
    if exif is not None:
        exif = _exif_patch(exif)  # Orientation -> 1
    return Image(pixels=pixels, alpha=alpha, format=fmt, bit_depth=depth,
                 exif=exif or None, icc_profile=icc or None, extra=extra)


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation (1-8) so that the array is displayed upright."""
    if orientation == 2:
        a = a[:, ::-1]
    elif orientation == 3:
        a = a[::-1, ::-1]
    elif orientation == 4:
        a = a[::-1]
    elif orientation == 5:
        a = a.swapaxes(0, 1)
    elif orientation == 6:
        a = np.rot90(a, -1)
    elif orientation == 7:
        a = a[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        a = np.rot90(a, 1)
    return np.ascontiguousarray(a)


def _split_alpha(arr: np.ndarray):
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        c = arr.shape[2] - 1
        return np.ascontiguousarray(arr[..., :c] if c == 3 else arr[..., 0]), np.ascontiguousarray(arr[..., c])
    if arr.ndim == 3 and arr.shape[2] == 1:
        return np.ascontiguousarray(arr[..., 0]), None
    return arr, None


def _pil_to_arrays(im) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """Pillow image -> (pixels, alpha, source mode if the colour model was converted)."""
    mode = im.mode
    converted = None
    if mode == "1":
        im = im.convert("L")
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
        converted = mode
    elif mode in ("L", "RGB") and "transparency" in im.info:
        im = im.convert("LA" if mode == "L" else "RGBA")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        im = im.convert("RGB")
        converted = mode if mode != "RGBX" else None
    elif mode in ("RGBa", "La"):
        im = im.convert("RGBA" if mode == "RGBa" else "LA")
    if im.mode.startswith("I;16"):
        arr = np.array(im).astype(np.uint16, copy=False)
    elif im.mode == "I":
        arr = np.array(im)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ImageFormatError("32-bit integer images are not supported")
        arr = arr.astype(np.uint16)
    elif im.mode == "F":
        arr = np.array(im).astype(np.float32, copy=False)
    elif im.mode in ("L", "LA", "RGB", "RGBA"):
        arr = np.array(im)
    else:
        raise ImageFormatError(f"unsupported colour mode {im.mode}")
    pixels, alpha = _split_alpha(arr)
    return pixels, alpha, converted


# ---- PNG


_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_XMP_KEY = "XML:com.adobe.xmp"


def _png_chunks(data: bytes) -> list[tuple[bytes, int, int, bool]]:
    """(type, payload start, payload length, crc ok) for every chunk up to IEND."""
    chunks = []
    pos, n = 8, len(data)
    while True:
        if pos + 8 > n:
            where = "before the IEND chunk" if chunks else "inside the header"
            raise ImageTruncatedError(f"truncated PNG file: the data ends {where}")
        length, ctype = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if length > 0x7FFFFFFF or not ctype.isalpha():
            raise ImageError("corrupt PNG data: invalid chunk structure")
        if end > n:
            raise ImageTruncatedError(
                f"truncated PNG file: the data ends in the middle of a chunk ({ctype.decode('latin-1')})"
            )
        crc = struct.unpack_from(">I", data, pos + 8 + length)[0]
        ok = (zlib.crc32(data[pos + 4 : pos + 8 + length]) & 0xFFFFFFFF) == crc
        chunks.append((ctype, pos + 8, length, ok))
        pos = end
        if ctype == b"IEND":
            return chunks


def _inflate(payload: bytes) -> bytes:
    d = zlib.decompressobj()
    out = d.decompress(payload, _MAX_META_BYTES)
    if d.unconsumed_tail:
        raise ValueError("metadata chunk too large")
    return out


# colour-space chunks besides iCCP: gamma, primaries, the sRGB intent, coding-independent code points
_PNG_COLOUR_CHUNKS = (b"gAMA", b"cHRM", b"sRGB", b"cICP")


def _png_metadata(data: bytes, chunks) -> tuple[bytes | None, bytes | None, dict, dict]:
    exif = icc = None
    extra: dict[str, Any] = {}
    text: dict[str, str] = {}
    trns = None
    for ctype, start, length, ok in chunks:
        if not ok or ctype not in (b"iCCP", b"eXIf", b"pHYs", b"tEXt", b"zTXt", b"iTXt", b"tRNS", b"acTL",
                                   *_PNG_COLOUR_CHUNKS):
            continue
        p = data[start : start + length]
        try:
            if ctype in _PNG_COLOUR_CHUNKS:  # how viewers map the values to colours: kept as they are
                extra.setdefault("png_colour", {}).setdefault(ctype.decode("ascii"), p)
            elif ctype == b"iCCP" and icc is None:
                icc = _inflate(p.split(b"\0", 1)[1][1:])
            elif ctype == b"eXIf" and exif is None:
                exif = p[6:] if p.startswith(b"Exif\0\0") else p
            elif ctype == b"pHYs" and length == 9:
                x, y, unit = struct.unpack(">IIB", p)
                if unit == 1 and x and y:
                    extra["dpi"] = _tidy_dpi(x * 0.0254, y * 0.0254)
            elif ctype == b"tEXt":
                k, v = p.split(b"\0", 1)
                text[k.decode("latin-1")] = v.decode("latin-1")
            elif ctype == b"zTXt":
                k, v = p.split(b"\0", 1)
                text[k.decode("latin-1")] = _inflate(v[1:]).decode("latin-1")
            elif ctype == b"iTXt":
                k, rest = p.split(b"\0", 1)
                compressed = rest[0]
                _lang, _tkey, v = rest[2:].split(b"\0", 2)
                v = _inflate(v) if compressed else v
                key = k.decode("latin-1")
                if key == _XMP_KEY:
                    extra["xmp"] = v
                else:
                    text[key] = v.decode("utf-8", "replace")
            elif ctype == b"tRNS":
                trns = p
            elif ctype == b"acTL" and length == 8:
                n_frames = struct.unpack(">I", p[:4])[0]
                if n_frames > 1:
                    extra["n_frames"] = n_frames
        except (ValueError, IndexError, zlib.error, struct.error):
            continue  # a broken ancillary chunk is skipped, as libpng does
    if text:
        extra["png_text"] = text
    return exif, icc, extra, {"trns": trns}


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_idat_problem(data: bytes, chunks) -> str | None:
    """What is wrong with the image data's zlib stream (None if it inflates to exactly the
    filtered rows IHDR announces), found by inflating it in 1-MB pieces and counting."""
    width, height, bitdepth, colortype, _, _, interlace = struct.unpack_from(">IIBBBBB", data, chunks[0][1])
    bits = _PNG_CHANNELS.get(colortype, 4) * bitdepth
    passes = _ADAM7 if interlace == 1 else ((0, 0, 1, 1),)
    expected = 0
    for x0, y0, dx, dy in passes:
        w, h = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if w > 0 and h > 0:
            expected += h * (1 + -(-(w * bits) // 8))   # a filter byte, then the row's bytes
    d, total = zlib.decompressobj(), 0
    try:
        for ctype, start, length, _ in chunks:
            if ctype != b"IDAT":
                continue
            pending = data[start:start + length]
            while pending and not d.eof:
                total += len(d.decompress(pending, 1 << 20))
                pending = d.unconsumed_tail
        while not d.eof and d.unconsumed_tail:
            total += len(d.decompress(d.unconsumed_tail, 1 << 20))
    except zlib.error as e:
        return f"the image data does not decompress ({e})"
    if total < expected or not d.eof:
        return f"the image data ends early ({total:,} of {expected:,} bytes)"
    return None


def _read_png(data: bytes, max_pixels: int | None) -> Image:
    chunks = _png_chunks(data)
    if chunks[0][0] != b"IHDR" or chunks[0][2] != 13:
        raise ImageError("corrupt PNG data: the file does not start with an IHDR header")
    width, height, bitdepth, colortype = struct.unpack_from(">IIBB", data, chunks[0][1])
    _check_size(width, height, max_pixels)
    if not any(c[0] == b"IDAT" for c in chunks):
        raise ImageError("corrupt PNG data: no image data (IDAT) chunk")
    exif, icc, extra, aux = _png_metadata(data, chunks)

    if bitdepth == 16:
        # checked here, before libpng (inside OpenCV) prints its own line on stderr
        if not all(ok for ctype, _, _, ok in chunks if ctype == b"IDAT"):
            raise ImageError("corrupt PNG data: an image data (IDAT) chunk fails its checksum")
        problem = _png_idat_problem(data, chunks)
        if problem:
            raise ImageError(f"corrupt PNG data: {problem}")
        # libpng gets the image chunks only: it would print its own stderr lines about metadata
        # it dislikes (an RGB profile in a gray PNG), which is read above, not by it
        core = b"".join(data[start - 8 : start + length + 4] for ctype, start, length, _ in chunks
                        if ctype in (b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"))
        arr = _cv2_decode(data[:8] + core)
        if arr is None or arr.dtype != np.uint16 or arr.shape[:2] != (height, width):
            raise ImageError("corrupt PNG data: the 16-bit image could not be decoded")
        if arr.ndim == 3 and arr.shape[2] >= 3:  # BGR(A) -> RGB(A)
            arr = np.concatenate([arr[..., 2::-1], arr[..., 3:]], axis=2)
        pixels, alpha = _split_alpha(arr)
        if colortype in (0, 4) and pixels.ndim == 3:  # OpenCV expands gray(+alpha) to colour
            pixels = np.ascontiguousarray(pixels[..., 0])
        trns = aux["trns"]
        if alpha is None and trns is not None:
            if colortype == 0 and len(trns) >= 2:
                key = struct.unpack(">H", trns[:2])[0]
                alpha = np.where(pixels == key, 0, 65535).astype(np.uint16)
            elif colortype == 2 and len(trns) >= 6:
                key = np.array(struct.unpack(">3H", trns[:6]), np.uint16)
                alpha = np.where((pixels == key).all(axis=2), 0, 65535).astype(np.uint16)
        depth = 16
    else:
        from PIL import PngImagePlugin

        with _pillow_allows(width * height):
            im = PngImagePlugin.PngImageFile(io.BytesIO(data))
            im.load()
        pixels, alpha, converted = _pil_to_arrays(im)
        if converted:
            extra["source_mode"] = converted
        depth = 8
    return _finish(pixels, alpha, "PNG", depth, exif, icc, extra, _exif_orientation(exif))


def _cv2_decode(data: bytes):
    """``cv2.imdecode(IMREAD_UNCHANGED)`` with OpenCV's own log lines silenced: a file it
    cannot read is reported once, by the caller, not also by libtiff warnings on stderr."""
    import cv2

    log = cv2.utils.logging
    level = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    finally:
        log.setLogLevel(level)


# ---- JPEG


_STD_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)


def _ijg_table_sum(quality: int) -> int:
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return sum(min(max((v * scale + 50) // 100, 1), 255) for v in _STD_LUMINANCE)


_IJG_SUMS = {q: _ijg_table_sum(q) for q in range(1, 101)}


def _estimate_jpeg_quality(qtables) -> int | None:
    """IJG quality (1-100) whose luminance table is closest to the file's (by sum)."""
    try:
        table = list(qtables[0])
    except (KeyError, IndexError, TypeError):
        return None
    if len(table) != 64:
        return None
    total = sum(table)
    return min(_IJG_SUMS, key=lambda q: (abs(_IJG_SUMS[q] - total), -q))


def _read_jpeg(data: bytes, max_pixels: int | None) -> Image:
    from PIL import JpegImagePlugin

    im = JpegImagePlugin.JpegImageFile(io.BytesIO(data))  # parses markers up to SOS only
    _check_size(im.size[0], im.size[1], max_pixels)
    extra: dict[str, Any] = {}
    info = im.info
    exif = info.get("exif")
    if exif and exif.startswith(b"Exif\0\0"):
        exif = exif[6:]
    icc = info.get("icc_profile")
    if info.get("dpi") and all(info["dpi"]):
        extra["dpi"] = tuple(float(v) for v in info["dpi"])
    if info.get("xmp"):
        extra["xmp"] = info["xmp"]
    if info.get("comment"):
        extra["comment"] = info["comment"]
    if info.get("progressive") or info.get("progression"):
        extra["progressive"] = True
    q = _estimate_jpeg_quality(getattr(im, "quantization", None) or {})
    if q is not None:
        extra["jpeg_quality"] = q
    sampling = JpegImagePlugin.get_sampling(im)
    if sampling in (0, 1, 2):
        extra["jpeg_subsampling"] = sampling
    im = _load_jpeg(im, data)
    pixels, alpha, converted = _pil_to_arrays(im)
    if converted:
        extra["source_mode"] = converted
        icc = None  # it described the CMYK/YCbCr data, not our RGB
    return _finish(pixels, alpha, "JPEG", 8, exif, icc, extra, _exif_orientation(exif))


def _load_jpeg(im, data: bytes):
    """``im`` loaded. A file that ends where only its end marker (EOI) is missing, as some
    cameras and tools write them, is decoded with the marker added if libjpeg then finds every
    scan complete; one cut inside its image data stays truncated. Pillow's libjpeg keeps its
    warnings to itself, so OpenCV's, which prints "premature end of data segment", judges."""
    from PIL import JpegImagePlugin

    with _pillow_allows(im.size[0] * im.size[1]):
        try:
            im.load()
            return im
        except OSError as exc:
            if data.endswith(b"\xff\xd9") or "truncated" not in str(exc):
                raise
            completed = data + b"\xff\xd9"
            with _stderr_captured() as said:
                whole = _cv2_decode(completed) is not None
            if not whole or said.text:
                raise
            im = JpegImagePlugin.JpegImageFile(io.BytesIO(completed))
            im.load()
            return im


# ---- WebP


def _webp_header(data: bytes) -> tuple[int, int, bool | None]:
    """(width, height, lossless) from the RIFF container, without decoding."""
    if len(data) < 20:
        raise ImageTruncatedError("truncated WebP file: it ends inside the header")
    riff_size = struct.unpack_from("<I", data, 4)[0]
    if riff_size + 8 > len(data):
        raise ImageTruncatedError(
            f"truncated WebP file: {len(data):,} of {riff_size + 8:,} bytes present"
        )
    pos, end = 12, riff_size + 8
    width = height = None
    lossless = None
    while pos + 8 <= end:
        ctype = data[pos : pos + 4]
        size = struct.unpack_from("<I", data, pos + 4)[0]
        p = data[pos + 8 : pos + 8 + size]
        if len(p) < size:
            raise ImageTruncatedError("truncated WebP file: the data ends inside a chunk")
        if ctype == b"VP8X" and size >= 10:
            width = 1 + int.from_bytes(p[4:7], "little")
            height = 1 + int.from_bytes(p[7:10], "little")
        elif ctype == b"VP8 " and size >= 10:
            if p[3:6] != b"\x9d\x01\x2a":
                raise ImageError("corrupt WebP data: bad VP8 frame header")
            if width is None:
                width = struct.unpack_from("<H", p, 6)[0] & 0x3FFF
                height = struct.unpack_from("<H", p, 8)[0] & 0x3FFF
            lossless = False if lossless is None else lossless
        elif ctype == b"VP8L" and size >= 5:
            if p[0] != 0x2F:
                raise ImageError("corrupt WebP data: bad VP8L header")
            if width is None:
                bits = struct.unpack_from("<I", p, 1)[0]
                width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            lossless = True if lossless is None else lossless
        elif ctype == b"ANMF" and size >= 24 and lossless is None:
            lossless = p[16:20] == b"VP8L"
        pos += 8 + size + (size & 1)
    if width is None:
        raise ImageError("corrupt WebP data: no image header found")
    return width, height, lossless


def _read_webp(data: bytes, max_pixels: int | None) -> Image:
    from PIL import WebPImagePlugin

    width, height, lossless = _webp_header(data)
    _check_size(width, height, max_pixels)
    with _pillow_allows(width * height):  # WebPImageFile runs the bomb check in its constructor
        im = WebPImagePlugin.WebPImageFile(io.BytesIO(data))
        im.load()
    extra: dict[str, Any] = {}
    if lossless is not None:
        extra["webp_lossless"] = lossless
    if getattr(im, "n_frames", 1) > 1:
        extra["n_frames"] = im.n_frames
    exif = im.info.get("exif")
    if exif and exif.startswith(b"Exif\0\0"):
        exif = exif[6:]
    if im.info.get("xmp"):
        extra["xmp"] = im.info["xmp"]
    pixels, alpha, _ = _pil_to_arrays(im)
    return _finish(pixels, alpha, "WEBP", 8, exif, im.info.get("icc_profile"), extra, _exif_orientation(exif))


# ---- BMP


def _read_bmp(data: bytes, max_pixels: int | None) -> Image:
    from PIL import BmpImagePlugin

    im = BmpImagePlugin.BmpImageFile(io.BytesIO(data))  # header only
    _check_size(im.size[0], im.size[1], max_pixels)
    with _pillow_allows(im.size[0] * im.size[1]):
        im.load()
    extra: dict[str, Any] = {}
    dpi = im.info.get("dpi")
    if dpi and all(dpi):
        extra["dpi"] = _tidy_dpi(*dpi)
    pixels, alpha, converted = _pil_to_arrays(im)
    if converted:
        extra["source_mode"] = converted
    return _finish(pixels, alpha, "BMP", 8, None, None, extra, 1)


# ---- TIFF


_TIFF_EXIF_IFD0_TAGS = (270, 271, 272, 305, 306, 315, 33432)  # description, make, model, software, datetime, artist, copyright
_TIFF_SUBIFD_TAGS = (34665, 34853)  # Exif IFD, GPS IFD


def _read_tiff(data: bytes, max_pixels: int | None) -> Image:
    import tifffile

    try:
        tif = tifffile.TiffFile(io.BytesIO(data))
    except Exception as exc:
        if _tiff_directory_cut(data):
            raise ImageTruncatedError("truncated TIFF file: it ends before the end of its image directory") from exc
        raise ImageError(f"corrupt TIFF data: {_one_line(str(exc))}") from exc
    with tif:
        if not len(tif.pages):
            raise ImageError("corrupt TIFF data: the file contains no image")
        page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
        width, height = int(page.imagewidth), int(page.imagelength)
        _check_size(width, height, max_pixels)
        for off, count in zip(page.dataoffsets, page.databytecounts):
            if count and off + count > len(data):
                raise ImageTruncatedError(
                    f"truncated TIFF file: image data runs to byte {off + count:,} but the file has {len(data):,}"
                )
        tags = page.tags
        extra: dict[str, Any] = {}
        if len(tif.pages) > 1:
            extra["n_frames"] = len(tif.pages)
        icc = _tag_value(tags, 34675)
        icc = bytes(icc) if icc is not None else None
        xmp = _tag_value(tags, 700)
        if xmp is not None:
            extra["xmp"] = bytes(xmp) if not isinstance(xmp, str) else xmp.encode("utf-8")
        dpi = _tiff_dpi(tags)
        if dpi:
            extra["dpi"] = dpi
        compression = int(page.compression)
        extra["tiff_compression"] = "none" if compression == 1 else "zlib"
        orientation = _tag_value(tags, 274)
        orientation = int(orientation) if orientation in range(1, 9) else 1
        try:
            pixels, alpha, converted = _tiff_arrays(page)
        except ImageFormatError:
            raise
        except Exception as exc:  # codec missing (no imagecodecs) or layout not mapped
            try:
                pixels, alpha, converted = _tiff_via_opencv(data, page, orientation)
                orientation = 1  # OpenCV's TIFF decoder turns the pixels upright itself
            except ImageFormatError:
                raise
            except Exception:
                try:
                    pixels, alpha, converted, oriented = _tiff_via_pillow(data, width * height)
                except Exception:
                    if "imagecodecs" in str(exc):  # tifffile's codec is missing; the others failed on the data
                        raise ImageError(f"corrupt TIFF data: its {_tiff_compression_name(page)}-compressed "
                                         "image data could not be decoded") from exc
                    raise _decode_error("TIFF", exc) from exc
                if oriented:
                    orientation = 1
    if converted:
        extra["source_mode"] = converted
        icc = None
    exif = _tiff_exif_blob(data)
    depth = _dtype_depth(pixels.dtype)
    return _finish(pixels, alpha, "TIFF", depth, exif, icc, extra, orientation)


def _tiff_directory_cut(data: bytes) -> bool:
    """True if the header or the first IFD (entries or values) reaches past the end of the data."""
    if len(data) < 16:
        return True
    try:
        bo, big, off = _tiff_header(data)
        if off >= len(data):
            return True
        _read_ifd(data, off, bo, big, which=-1)
        _next_ifd_offset(data, off, bo, big)
    except struct.error:
        return True
    except _TiffParseError as e:
        return "out of range" in str(e)
    return False


def _tag_value(tags, code):
    tag = tags.get(code)
    return None if tag is None else tag.value


def _tiff_dpi(tags):
    x, y, unit = _tag_value(tags, 282), _tag_value(tags, 283), _tag_value(tags, 296)
    unit = 2 if unit is None else int(unit)
    if x is None or y is None or unit not in (2, 3):
        return None
    try:
        xv = x[0] / x[1] if isinstance(x, tuple) else float(x)
        yv = y[0] / y[1] if isinstance(y, tuple) else float(y)
    except (ZeroDivisionError, TypeError, IndexError):
        return None
    if unit == 3:
        xv, yv = xv * 2.54, yv * 2.54
    return (float(xv), float(yv)) if xv > 0 and yv > 0 else None


class _UnmappedTiff(Exception):
    pass


def _tiff_arrays(page):
    photometric = int(page.photometric)
    if photometric not in (0, 1, 2, 3):
        raise _UnmappedTiff(f"photometric {photometric}")
    arr = page.asarray()
    axes = page.axes
    if arr.ndim != len(axes):
        raise _UnmappedTiff("shape/axes mismatch")
    arr = arr[tuple(slice(None) if a in "YXS" else 0 for a in axes)]
    kept = [a for a in axes if a in "YXS"]
    arr = arr.transpose([kept.index(a) for a in "YXS" if a in kept])
    return _tiff_samples(arr, page)


def _tiff_via_opencv(data: bytes, page, orientation: int):
    """The first page through OpenCV's libtiff, which decodes the codecs (LZW, JPEG, ...)
    tifffile needs the optional ``imagecodecs`` for, only where Pillow, the other fallback,
    would lose depth: 16-bit or float samples, stored contiguously. 8-bit files stay with
    Pillow (OpenCV reads them through libtiff's RGBA interface, which premultiplies alpha), as
    do planar ones (OpenCV reads the first plane as interleaved samples). OpenCV applies the
    Orientation tag (even with IMREAD_UNCHANGED): the pixels come back upright."""
    if (int(page.photometric) not in (1, 2) or int(page.bitspersample) <= 8
            or int(page.planarconfig) != 1):
        raise _UnmappedTiff("left to Pillow")
    arr = _cv2_decode(data)
    if arr is None and int(page.compression) in _OPENCV_TIFF_CODECS:
        # a codec OpenCV's libtiff has: the data is damaged (Pillow's libtiff would fail the same
        # way, and lose the depth where it did not)
        raise ImageError(f"corrupt TIFF data: its {_tiff_compression_name(page)}-compressed image data "
                         "could not be decoded")
    upright = (int(page.imagelength), int(page.imagewidth))[::1 if orientation < 5 else -1]
    if (arr is None or arr.shape[:2] != upright
            or (1 if arr.ndim == 2 else arr.shape[2]) != int(page.samplesperpixel)):
        raise _UnmappedTiff("OpenCV could not decode it as stored")
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = arr[..., [2, 1, 0] + ([3] if arr.shape[2] == 4 else [])]  # BGR(A) -> RGB(A)
    return _tiff_samples(arr, page)


# TIFF compressions OpenCV's bundled libtiff decodes: none, LZW, JPEG, Adobe Deflate, PackBits, Deflate
_OPENCV_TIFF_CODECS = (1, 5, 7, 8, 32773, 32946)


def _tiff_compression_name(page) -> str:
    names = {5: "LZW", 7: "JPEG", 8: "Deflate", 32773: "PackBits", 32946: "Deflate"}
    return names.get(int(page.compression), f"compression {int(page.compression)}")


# ExtraSamples: 0 unspecified (e.g. a saved selection, not transparency), 1 associated
# (premultiplied) alpha, 2 unassociated alpha
_TIFF_ALPHA = (1, 2)


def _tiff_samples(arr: np.ndarray, page):
    """(pixels, alpha, converted) from a Y x X [x S] array of a TIFF page's samples."""
    photometric = int(page.photometric)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    bps = int(page.bitspersample)
    converted = None
    if photometric == 3:  # palette
        cmap = np.asarray(page.colormap)
        if arr.ndim != 2 or cmap.ndim != 2 or cmap.shape[0] != 3:
            raise _UnmappedTiff("palette layout")
        if bps <= 8:
            cmap = cmap if cmap.max() <= 255 else (cmap.astype(np.uint32) + 128) // 257
            cmap = cmap.astype(np.uint8)
        idx = np.minimum(arr.astype(np.intp), cmap.shape[1] - 1)
        return np.ascontiguousarray(cmap.T[idx]), None, "P"
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * np.uint8(255)
    elif arr.dtype.kind == "f":
        arr = arr.astype(np.float32, copy=False)
    elif arr.dtype in (np.uint8, np.uint16):
        full = 8 if arr.dtype == np.uint8 else 16
        if 1 < bps < full:  # e.g. 12-bit data in uint16: scale to the full range
            arr = np.round(arr.astype(np.float64) * ((2**full - 1) / (2**bps - 1))).astype(arr.dtype)
    else:
        raise ImageFormatError(
            f"unsupported TIFF sample type {arr.dtype} (supported: 8/16-bit unsigned integer and floating point)"
        )
    if photometric == 0 and arr.dtype.kind == "u":  # min-is-white
        arr = np.iinfo(arr.dtype).max - arr
    color = 3 if photometric == 2 else 1
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    if channels < color:
        raise _UnmappedTiff("too few samples")
    if arr.ndim == 2:
        return np.ascontiguousarray(arr), None, converted
    pixels = arr[..., 0] if color == 1 else arr[..., :3]
    kinds = tuple(int(k) for k in (getattr(page, "extrasamples", None) or ()))
    # the first extra sample is the alpha when tagged so (or untagged, as some writers leave it)
    alpha = arr[..., color] if channels > color and (not kinds or kinds[0] in _TIFF_ALPHA) else None
    if alpha is not None and kinds and kinds[0] == 1:
        pixels = _unpremultiply(pixels, alpha)
    return (np.ascontiguousarray(pixels),
            None if alpha is None else np.ascontiguousarray(alpha), converted)


def _unpremultiply(pixels: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Colour stored multiplied by alpha back to straight colour (what the rest of the
    module, the network and the writers assume); fully transparent pixels stay 0."""
    top = 1.0 if pixels.dtype.kind == "f" else float(np.iinfo(pixels.dtype).max)
    a = alpha.astype(np.float64) / top
    a = a[..., None] if pixels.ndim == 3 else a
    out = np.where(a > 0, pixels.astype(np.float64) / np.maximum(a, 1e-12), 0.0)
    if pixels.dtype.kind == "f":
        return out.astype(pixels.dtype)
    return np.clip(np.round(out), 0, top).astype(pixels.dtype)


def _tiff_via_pillow(data: bytes, n_pixels: int):
    """(pixels, alpha, converted, oriented): ``oriented`` when Pillow already turned the
    pixels upright, as its libtiff decoder (LZW, JPEG) does, dropping the Orientation tag."""
    from PIL import TiffImagePlugin

    with _pillow_allows(n_pixels), _stderr_captured():  # libtiff prints its own errors: dropped
        im = TiffImagePlugin.TiffImageFile(io.BytesIO(data))
        tagged = 274 in im.tag_v2
        im.load()
    return (*_pil_to_arrays(im), tagged and 274 not in im.tag_v2)


# --------------------------------------------------------------------------- writing


def encode_image(img: Image, format: str | None = None, bit_depth: int | None = None,
                 quality: int | None = None) -> bytes:
    """Encode ``img`` to bytes in ``format`` (default: ``img.format``).

    ``bit_depth`` 8, 16 or 32 (float32, TIFF only); default ``img.bit_depth``
    lowered to what the format holds.  ``quality`` (1-100) applies to JPEG and
    makes WebP lossy; other formats ignore it.  See the module docstring for the
    metadata and quality policy.
    """
    fmt = _normalize_format(format if format is not None else img.format)
    pixels, alpha = _prepare_arrays(img)
    depth = _target_depth(fmt, img, pixels, bit_depth)
    pixels = _convert_depth(pixels, depth)
    if alpha is not None:
        alpha = _convert_depth(alpha, depth)
    if quality is not None and not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be between 1 and 100, not {quality}")
    h, w = pixels.shape[:2]
    exif = _exif_patch(img.exif, w, h, drop_thumbnail=True) if img.exif else None
    extra = dict(img.extra or {})
    icc = img.icc_profile or None
    try:
        if fmt == "PNG":
            return _encode_png(pixels, alpha, exif, icc, extra)
        if fmt == "JPEG":
            return _encode_jpeg(pixels, alpha, exif, icc, extra, quality, img.format)
        if fmt == "WEBP":
            return _encode_webp(pixels, alpha, exif, icc, extra, quality, img.format)
        if fmt == "BMP":
            return _encode_bmp(pixels, alpha, extra)
        return _encode_tiff(pixels, alpha, exif, icc, extra)
    except ImageError:
        raise
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot encode {fmt}: {_one_line(str(exc))}") from exc


def _prepare_arrays(img: Image):
    pixels = np.asarray(img.pixels)
    alpha = None if img.alpha is None else np.asarray(img.alpha)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4) and alpha is None:
        pixels, alpha = _split_alpha(pixels)
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"pixels must be HxW or HxWx3, got shape {pixels.shape}")
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ValueError("cannot encode an empty image")
    _dtype_depth(pixels.dtype)  # validates the dtype
    if alpha is not None:
        if alpha.ndim == 3 and alpha.shape[2] == 1:
            alpha = alpha[..., 0]
        if alpha.shape != pixels.shape[:2]:
            raise ValueError(f"alpha shape {alpha.shape} does not match pixels {pixels.shape[:2]}")
        _dtype_depth(alpha.dtype)
    return pixels, alpha


def _target_depth(fmt: str, img: Image, pixels: np.ndarray, bit_depth: int | None) -> int:
    allowed = _FORMAT_DEPTHS[fmt]
    name = "WebP" if fmt == "WEBP" else fmt
    if bit_depth is not None:
        bit_depth = int(bit_depth)
        if bit_depth not in (8, 16, 32):
            raise ImageFormatError(f"bit depth must be 8, 16 or 32 (float), not {bit_depth}")
        if bit_depth not in allowed:
            if bit_depth == 32:
                raise ImageFormatError(f"32-bit float output needs TIFF; {name} cannot hold float data")
            raise ImageFormatError(f"{name} holds only 8 bits per channel; use PNG or TIFF for 16-bit output")
        return bit_depth
    depth = img.bit_depth if img.bit_depth in (8, 16, 32) else _dtype_depth(pixels.dtype)
    if depth in allowed:
        return depth
    return max(d for d in allowed if d <= depth)


def write_image(path: str | os.PathLike, img: Image, format: str | None = None,
                bit_depth: int | None = None, overwrite: bool = False,
                quality: int | None = None) -> Path:
    """Encode and write atomically (temp file in the same folder, then rename).

    The format comes from the suffix unless given.  An existing file is never
    replaced unless ``overwrite``: :class:`OutputExistsError` (also checked at
    the final rename, so a file created meanwhile is not clobbered either).
    Missing parent folders are created.  On any failure no temp file remains
    and an existing output is left as it was.
    """
    path = Path(path)
    fmt = format_from_path(path) if format is None else _normalize_format(format)
    if not overwrite and os.path.lexists(path):
        raise OutputExistsError(path)
    data = encode_image(img, fmt, bit_depth=bit_depth, quality=quality)
    try:
        write_file_atomic(path, data, overwrite)
    except ImageError:
        raise
    except OSError as exc:
        raise ImageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_file_atomic(path: Path, data: bytes, overwrite: bool) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder, renamed into place
    (readers never see half a file), with the umask's permissions as ``open`` would give.
    Without ``overwrite`` an existing ``path`` raises :class:`OutputExistsError`."""
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # no such file (the usual case), or one we cannot look at
        if not stat.S_ISREG(os.stat(path).st_mode):  # a device or FIFO (links followed): never replaced
            raise RestoreError(f"output {path} exists and is not a regular file (a device, FIFO or "
                               "socket): refusing to replace it")
    # The temp name adds 15 bytes to the output's: a long name (up to the usual 255 bytes) keeps
    # only its start there.
    stem = path.name
    while len(os.fsencode(stem)) > 200:
        stem = stem[:-1]
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=".part", dir=parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        mode = 0o666 & ~_umask()
        if overwrite:  # a replaced file keeps its permissions (a shared folder's 664 stays 664)
            with contextlib.suppress(OSError):
                mode = stat.S_IMODE(os.stat(path).st_mode)
        os.chmod(tmp, mode)
        if overwrite:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)  # atomic and never replaces an existing file
        except FileExistsError:
            raise OutputExistsError(path) from None
        except OSError:  # no hard links on this filesystem: check, then rename
            if os.path.lexists(path):
                raise OutputExistsError(path) from None
            os.replace(tmp, path)
            return
        os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ---- PNG


def _png_chunk(ctype: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + ctype + payload
            + struct.pack(">I", zlib.crc32(ctype + payload) & 0xFFFFFFFF))


def _png_meta_chunks(exif, icc, extra) -> list[bytes]:
    chunks = [_png_chunk(k.encode("ascii"), v) for k, v in (extra.get("png_colour") or {}).items()]
    if icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc, 9)))
    if exif:
        chunks.append(_png_chunk(b"eXIf", exif))
    dpi = extra.get("dpi")
    if dpi:
        x, y = (max(1, round(float(d) / 0.0254)) for d in dpi)
        chunks.append(_png_chunk(b"pHYs", struct.pack(">IIB", x, y, 1)))
    for key, value in (extra.get("png_text") or {}).items():
        try:
            k = str(key).encode("latin-1")
        except UnicodeEncodeError:
            continue
        if not 1 <= len(k) <= 79 or b"\0" in k:
            continue
        value = str(value)
        try:
            chunks.append(_png_chunk(b"tEXt", k + b"\0" + value.encode("latin-1")))
        except UnicodeEncodeError:
            chunks.append(_png_chunk(b"iTXt", k + b"\0\0\0\0\0" + value.encode("utf-8")))
    xmp = extra.get("xmp")
    if xmp:
        xmp = _xmp_reset_orientation(xmp)
        chunks.append(_png_chunk(b"iTXt", _XMP_KEY.encode() + b"\0\0\0\0\0" + xmp))
    return chunks


def _png_insert(png: bytes, chunks: list[bytes]) -> bytes:
    if not chunks:
        return png
    assert png[:8] == _PNG_SIG and png[12:16] == b"IHDR"
    return png[:33] + b"".join(chunks) + png[33:]


def _png_encode_raw(arr: np.ndarray, color_type: int) -> bytes:
    """Minimal 16-bit PNG encoder (Sub filter + zlib), used for gray+alpha."""
    h, w = arr.shape[:2]
    rows = np.ascontiguousarray(arr.astype(">u2")).reshape(h, -1).view(np.uint8)
    bpp = rows.shape[1] // w
    out = np.empty((h, rows.shape[1] + 1), np.uint8)
    out[:, 0] = 1  # Sub
    out[:, 1 : 1 + bpp] = rows[:, :bpp]
    np.subtract(rows[:, bpp:], rows[:, :-bpp], out=out[:, 1 + bpp :])
    comp = zlib.compressobj(_PNG_COMPRESSION)
    idat = comp.compress(out.data) + comp.flush()
    step = 1 << 24
    body = b"".join(_png_chunk(b"IDAT", idat[i : i + step]) for i in range(0, len(idat), step))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return _PNG_SIG + _png_chunk(b"IHDR", ihdr) + body + _png_chunk(b"IEND", b"")


def _encode_png(pixels, alpha, exif, icc, extra) -> bytes:
    if pixels.dtype == np.uint8:
        from PIL import Image as PILImage

        arr = pixels if alpha is None else np.dstack([pixels, alpha])
        buf = io.BytesIO()
        PILImage.fromarray(arr).save(buf, "PNG", compress_level=_PNG_COMPRESSION)
        png = buf.getvalue()
    elif pixels.ndim == 2 and alpha is not None:
        png = _png_encode_raw(np.dstack([pixels, alpha]), 4)
    else:
        import cv2

        if pixels.ndim == 2:
            bgr = pixels
        else:
            bgr = pixels[..., ::-1] if alpha is None else np.dstack([pixels[..., ::-1], alpha])
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(bgr), [cv2.IMWRITE_PNG_COMPRESSION, _PNG_COMPRESSION])
        if not ok:
            raise ImageError("cannot encode PNG: OpenCV's encoder failed")
        png = buf.tobytes()
    return _png_insert(png, _png_meta_chunks(exif, icc, extra))


# ---- JPEG / WebP / BMP


_JPEG_MARKER_MAX = 65533


def _encode_jpeg(pixels, alpha, exif, icc, extra, quality, source_format) -> bytes:
    from PIL import Image as PILImage

    if alpha is not None:
        check_output_alpha("JPEG")
    check_output_size("JPEG", pixels.shape[1], pixels.shape[0])
    if quality is None:
        est = extra.get("jpeg_quality") if source_format == "JPEG" else None
        quality = max(JPEG_QUALITY_FLOOR, int(est)) if est else DEFAULT_JPEG_QUALITY
    sub = extra.get("jpeg_subsampling") if source_format == "JPEG" else None
    params: dict[str, Any] = {
        "quality": int(quality),
        "subsampling": sub if sub in (0, 1, 2) else 0,
        "optimize": True,
        "progressive": bool(extra.get("progressive")),
    }
    if icc:
        params["icc_profile"] = icc
    if exif:
        if len(exif) + 8 <= _JPEG_MARKER_MAX:
            params["exif"] = b"Exif\0\0" + exif
        else:
            warnings.warn("EXIF data is too large for a JPEG APP1 segment; not written", stacklevel=3)
    if extra.get("dpi"):
        params["dpi"] = tuple(int(round(float(d))) for d in extra["dpi"])
    xmp = extra.get("xmp")
    if xmp and len(xmp) + 40 <= _JPEG_MARKER_MAX:
        params["xmp"] = _xmp_reset_orientation(xmp)
    comment = extra.get("comment")
    if comment and len(comment) <= _JPEG_MARKER_MAX:
        params["comment"] = comment
    im = PILImage.fromarray(pixels)
    buf = io.BytesIO()
    try:
        im.save(buf, "JPEG", **params)
    except OSError:
        # Optimised/progressive output is produced all at once into a buffer Pillow sizes
        # at 1-2 bytes per pixel; very detailed images at high quality overflow it
        # ("Suspension not allowed here").  Baseline output is streamed: retry that way.
        params.update(optimize=False, progressive=False)
        buf = io.BytesIO()
        im.save(buf, "JPEG", **params)
    return buf.getvalue()


def _encode_webp(pixels, alpha, exif, icc, extra, quality, source_format) -> bytes:
    from PIL import Image as PILImage

    check_output_size("WEBP", pixels.shape[1], pixels.shape[0])
    rgb = np.dstack([pixels] * 3) if pixels.ndim == 2 else pixels
    arr = rgb if alpha is None else np.dstack([rgb, alpha])
    lossy_source = source_format == "JPEG" or (source_format == "WEBP" and extra.get("webp_lossless") is False)
    lossless = quality is None and not lossy_source
    params: dict[str, Any] = {"lossless": lossless, "exact": True, "method": 4,
                              "quality": 80 if lossless else int(quality or DEFAULT_WEBP_QUALITY)}
    if icc:
        params["icc_profile"] = icc
    if exif:
        params["exif"] = exif
    if extra.get("xmp"):
        params["xmp"] = _xmp_reset_orientation(extra["xmp"])
    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(arr)).save(buf, "WEBP", **params)
    return buf.getvalue()


def _encode_bmp(pixels, alpha, extra) -> bytes:
    dpi = extra.get("dpi")
    if alpha is not None:
        rgb = np.dstack([pixels] * 3) if pixels.ndim == 2 else pixels
        return _bmp_encode_rgba(np.dstack([rgb, alpha]), dpi)
    from PIL import Image as PILImage

    params = {"dpi": tuple(float(d) for d in dpi)} if dpi else {}
    buf = io.BytesIO()
    PILImage.fromarray(pixels).save(buf, "BMP", **params)
    return buf.getvalue()


def _bmp_encode_rgba(rgba: np.ndarray, dpi) -> bytes:
    """32-bit BMP with a BITMAPV4HEADER and BI_BITFIELDS masks, so alpha is read back."""
    h, w = rgba.shape[:2]
    px = np.ascontiguousarray(rgba[::-1][..., [2, 1, 0, 3]]).tobytes()  # bottom-up BGRA
    if len(px) + 122 > 0xFFFFFFFF:
        raise ImageFormatError("image too large for BMP")
    xppm, yppm = (round(float(d) / 0.0254) for d in dpi) if dpi else (0, 0)
    offset = 14 + 108
    head = struct.pack("<2sIHHI", b"BM", offset + len(px), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 108, w, h, 1, 32, 3, len(px), xppm, yppm, 0, 0)
    info += struct.pack("<IIIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000, 0x73524742)  # masks, 'sRGB'
    info += bytes(36 + 12)  # endpoints, gamma (unused with sRGB)
    return head + info + px


# ---- TIFF


def _encode_tiff(pixels, alpha, exif, icc, extra) -> bytes:
    import tifffile

    arr = pixels if alpha is None else np.dstack([pixels, alpha])
    params: dict[str, Any] = {
        "photometric": "minisblack" if pixels.ndim == 2 else "rgb",
        "planarconfig": "contig" if arr.ndim == 3 else None,
        "metadata": None,
        "software": False,
        "bigtiff": arr.nbytes > 2**32 - 2**25,
    }
    if alpha is not None:
        params["extrasamples"] = ["unassalpha"]
    if extra.get("tiff_compression") != "none":
        params["compression"] = "zlib"
        if arr.dtype.kind == "u":
            params["predictor"] = "horizontal"
    dpi = extra.get("dpi")
    if dpi:
        params["resolution"] = (float(dpi[0]), float(dpi[1]))
        params["resolutionunit"] = "INCH"
    if icc:
        params["iccprofile"] = icc
    xmp = extra.get("xmp")
    if xmp:
        xmp = _xmp_reset_orientation(xmp)
        params["extratags"] = [(700, "B", len(xmp), xmp, True)]
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, **params)
    out = buf.getvalue()
    if exif:
        out = _tiff_add_exif(out, exif)
    return out


# --------------------------------------------------------------------------- TIFF/EXIF structures

# Minimal TIFF IFD reader/writer, shared by EXIF blobs and TIFF files.
# Entry values are kept as raw bytes in little-endian order, converted on write.

_TYPES = {  # TIFF type -> (numpy code, bytes per count)
    1: ("u1", 1), 2: ("u1", 1), 3: ("u2", 2), 4: ("u4", 4), 5: ("u4", 8), 6: ("i1", 1),
    7: ("u1", 1), 8: ("i2", 2), 9: ("i4", 4), 10: ("i4", 8), 11: ("f4", 4), 12: ("f8", 8),
    13: ("u4", 4), 16: ("u8", 8), 17: ("i8", 8), 18: ("u8", 8),
}
_POINTER_TYPES = (4, 13, 16, 18)
_EXIF_SUBIFDS = {0: (34665, 34853), 34665: (40965,)}  # which tags in which IFD point to sub-IFDs


class _TiffParseError(ValueError):
    pass


@dataclass
class _Ifd:
    entries: dict  # tag -> (type, count, raw little-endian bytes)
    subs: dict  # tag -> _Ifd


def _tiff_header(buf) -> tuple[str, bool, int]:
    if len(buf) < 8:
        raise _TiffParseError("short header")
    bo = {b"II": "<", b"MM": ">"}.get(bytes(buf[:2]))
    if bo is None:
        raise _TiffParseError("bad byte order")
    magic = struct.unpack_from(bo + "H", buf, 2)[0]
    if magic == 42:
        return bo, False, struct.unpack_from(bo + "I", buf, 4)[0]
    if magic == 43 and len(buf) >= 16:
        return bo, True, struct.unpack_from(bo + "Q", buf, 8)[0]
    raise _TiffParseError("bad magic")


def _iter_entries(buf, off: int, bo: str, big: bool):
    """Yield (tag, type, count, position of the value field) for each entry of the IFD at ``off``."""
    nfmt, cfmt, esize, head = ("Q", "Q", 20, 8) if big else ("H", "I", 12, 2)
    if off < 8 or off + head > len(buf):
        raise _TiffParseError("IFD offset out of range")
    n = struct.unpack_from(bo + nfmt, buf, off)[0]
    if n > 4096 or off + head + n * esize > len(buf):
        raise _TiffParseError("IFD out of range")
    for i in range(n):
        p = off + head + i * esize
        tag, typ = struct.unpack_from(bo + "HH", buf, p)
        count = struct.unpack_from(bo + cfmt, buf, p + 4)[0]
        yield tag, typ, count, p + (12 if big else 8)


def _value_raw(buf, typ: int, count: int, vpos: int, bo: str, big: bool) -> bytes:
    size = count * _TYPES[typ][1]
    if size <= (8 if big else 4):
        raw = bytes(buf[vpos : vpos + size])
    else:
        o = struct.unpack_from(bo + ("Q" if big else "I"), buf, vpos)[0]
        if o + size > len(buf):
            raise _TiffParseError("value out of range")
        raw = bytes(buf[o : o + size])
    return _swap(raw, typ, bo, "<")


def _swap(raw: bytes, typ: int, src: str, dst: str) -> bytes:
    code = _TYPES[typ][0]
    if src == dst or code[1] == "1":
        return raw
    return np.frombuffer(raw, src + code).astype(dst + code).tobytes()


def _first_int(raw_le: bytes, typ: int) -> int:
    return int(np.frombuffer(raw_le[: _TYPES[typ][1]], "<" + _TYPES[typ][0])[0])


def _read_ifd(buf, off, bo, big, which=0, seen=None) -> _Ifd:
    seen = set() if seen is None else seen
    if off in seen:
        raise _TiffParseError("IFD loop")
    seen.add(off)
    entries, subs = {}, {}
    for tag, typ, count, vpos in _iter_entries(buf, off, bo, big):
        if typ not in _TYPES or count > len(buf):
            continue
        raw = _value_raw(buf, typ, count, vpos, bo, big)
        if tag in _EXIF_SUBIFDS.get(which, ()) and typ in _POINTER_TYPES and count >= 1:
            with contextlib.suppress(_TiffParseError):
                subs[tag] = _read_ifd(buf, _first_int(raw, typ), bo, big, tag, seen)
            continue
        entries[tag] = (typ, count, raw)
    return _Ifd(entries, subs)


def _ifd_bytes(ifd: _Ifd, base: int, bo: str, big: bool, next_ifd: int = 0) -> bytes:
    """Serialise ``ifd`` (and its sub-IFDs after it) to live at file offset ``base``."""
    tags = sorted(set(ifd.entries) | set(ifd.subs))
    inline = 8 if big else 4
    head = (8 if big else 2) + len(tags) * (20 if big else 12) + (8 if big else 4)
    area = bytearray()
    fields = {}
    for t in tags:
        if t in ifd.subs:
            continue
        typ, count, raw = ifd.entries[t]
        raw = _swap(raw, typ, "<", bo)
        if len(raw) <= inline:
            fields[t] = (typ, count, raw.ljust(inline, b"\0"))
        else:
            off = base + head + len(area)
            fields[t] = (typ, count, struct.pack(bo + ("Q" if big else "I"), off))
            area += raw + (b"\0" if len(raw) & 1 else b"")
    children = bytearray()
    for t in tags:
        if t in ifd.subs:
            pos = base + head + len(area) + len(children)
            child = _ifd_bytes(ifd.subs[t], pos, bo, big)
            children += child + (b"\0" if len(child) & 1 else b"")
            fields[t] = (16 if big else 4, 1, struct.pack(bo + ("Q" if big else "I"), pos))
    out = bytearray(struct.pack(bo + ("Q" if big else "H"), len(tags)))
    for t in tags:
        typ, count, value = fields[t]
        out += struct.pack(bo + ("HHQ" if big else "HHI"), t, typ, count) + value
    out += struct.pack(bo + ("Q" if big else "I"), next_ifd)
    return bytes(out + area + children)


def _exif_tree(blob: bytes) -> _Ifd:
    bo, big, off = _tiff_header(blob)
    return _read_ifd(blob, off, bo, big)


def _exif_orientation(blob: bytes | None) -> int:
    if not blob:
        return 1
    try:
        bo, big, off = _tiff_header(blob)
        for tag, typ, count, vpos in _iter_entries(blob, off, bo, big):
            if tag == 274 and typ in (3, 4) and count >= 1:
                value = struct.unpack_from(bo + ("H" if typ == 3 else "I"), blob, vpos)[0]
                return value if 1 <= value <= 8 else 1
    except (_TiffParseError, struct.error):
        pass
    return 1


def _exif_patch(blob: bytes | None, width: int | None = None, height: int | None = None,
                drop_thumbnail: bool = False):
    """Set Orientation to 1 and, if given, PixelX/YDimension, in place (nothing else moves);
    ``drop_thumbnail``: end the IFD chain after IFD0, so the thumbnail (IFD1) is no longer
    referenced (its bytes stay, unused: moving anything could break offsets in maker notes)."""
    if not blob:
        return blob
    if blob.startswith(b"Exif\0\0"):
        blob = blob[6:]
    buf = bytearray(blob)
    try:
        bo, big, off = _tiff_header(buf)
        exif_ifd = None

        def put(typ, vpos, value):
            if typ == 3 and value <= 0xFFFF:
                struct.pack_into(bo + "H", buf, vpos, value)
            elif typ == 4:
                struct.pack_into(bo + "I", buf, vpos, value)

        for tag, typ, count, vpos in _iter_entries(buf, off, bo, big):
            if tag == 274 and count == 1:
                put(typ, vpos, 1)
            elif tag == 34665 and typ in (4, 13) and count == 1:
                exif_ifd = struct.unpack_from(bo + "I", buf, vpos)[0]
        if width and height and exif_ifd:
            for tag, typ, count, vpos in _iter_entries(buf, exif_ifd, bo, big):
                if tag == 40962 and count == 1:
                    put(typ, vpos, width)
                elif tag == 40963 and count == 1:
                    put(typ, vpos, height)
        if drop_thumbnail:
            n = struct.unpack_from(bo + ("Q" if big else "H"), buf, off)[0]
            struct.pack_into(bo + ("Q" if big else "I"), buf, off + (8 if big else 2) + n * (20 if big else 12), 0)
    except (_TiffParseError, struct.error):
        pass
    return bytes(buf)


def _tiff_exif_blob(data: bytes) -> bytes | None:
    """EXIF blob (IFD0 descriptive tags + Exif and GPS IFDs) from a TIFF file's first IFD."""
    try:
        tree = _exif_tree(data)
    except (_TiffParseError, struct.error):
        return None
    entries = {t: v for t, v in tree.entries.items() if t in _TIFF_EXIF_IFD0_TAGS}
    if 270 in entries and entries[270][2].lstrip().startswith(b"{"):  # tifffile's JSON shape note
        del entries[270]
    subs = {t: v for t, v in tree.subs.items() if t in _TIFF_SUBIFD_TAGS}
    if not subs and not entries:
        return None
    return b"II*\0" + struct.pack("<I", 8) + _ifd_bytes(_Ifd(entries, subs), 8, "<", False)


def _tiff_add_exif(tiff: bytes, exif: bytes) -> bytes:
    """Add EXIF (descriptive IFD0 tags, Exif and GPS sub-IFDs) to a TIFF written by tifffile.

    A new first IFD (the old entries plus the EXIF ones) and the sub-IFDs are
    appended to the file and the header is pointed at it; every existing offset
    stays valid.  Unparseable EXIF is skipped.
    """
    try:
        src = _exif_tree(exif)
        bo, big, off = _tiff_header(tiff)
        ifd0 = _read_ifd(tiff, off, bo, big, which=-1)
        nxt = _next_ifd_offset(tiff, off, bo, big)
    except (_TiffParseError, struct.error):
        return tiff
    added = {t: v for t, v in src.entries.items() if t in _TIFF_EXIF_IFD0_TAGS and t not in ifd0.entries}
    subs = {t: v for t, v in src.subs.items() if t in _TIFF_SUBIFD_TAGS}
    if not added and not subs:
        return tiff
    base = len(tiff) + (len(tiff) & 1)
    new = _ifd_bytes(_Ifd({**ifd0.entries, **added}, subs), base, bo, big, next_ifd=nxt)
    out = bytearray(tiff)
    out += b"\0" * (base - len(tiff))
    out += new
    struct.pack_into(bo + ("Q" if big else "I"), out, 8 if big else 4, base)
    return bytes(out)


def _next_ifd_offset(buf, off, bo, big) -> int:
    n = struct.unpack_from(bo + ("Q" if big else "H"), buf, off)[0]
    pos = off + (8 if big else 2) + n * (20 if big else 12)
    return struct.unpack_from(bo + ("Q" if big else "I"), buf, pos)[0]


_XMP_ORIENTATION = [
    re.compile(rb'(tiff:Orientation=")([2-8])(")'),
    re.compile(rb"(tiff:Orientation=')([2-8])(')"),
    re.compile(rb"(<tiff:Orientation>)([2-8])(</tiff:Orientation>)"),
]


def _xmp_reset_orientation(xmp) -> bytes:
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    for pattern in _XMP_ORIENTATION:
        xmp = pattern.sub(rb"\g<1>1\g<3>", xmp)
    return xmp
