"""Tests for restorecli.imageio: generated images only, no network."""
from __future__ import annotations

import io
import os
import pathlib
import stat
import struct
import zlib

import numpy as np
import piexif
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageFile, ImageOps, JpegImagePlugin

from restorecli import imageio as iio
from restorecli.imageio import (
    IMAGE_SUFFIXES,
    Image,
    ImageError,
    ImageFormatError,
    ImageTooLargeError,
    OutputExistsError,
    encode_image,
    format_from_path,
    from_float,
    read_image,
    to_float,
    write_image,
)

H, W = 13, 17  # odd sizes catch row-padding and transposition bugs


def rand(shape, depth, seed=0):
    rng = np.random.default_rng(seed)
    if depth == 8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if depth == 16:
        return rng.integers(0, 65536, shape, dtype=np.uint16)
    return (rng.random(shape, dtype=np.float32) * 1.6 - 0.3).astype(np.float32)  # outside [0, 1] on purpose


def make(mode, depth, h=H, w=W, seed=0):
    shape = (h, w) if mode in ("L", "LA") else (h, w, 3)
    px = rand(shape, depth, seed)
    alpha = rand((h, w), depth, seed + 1) if mode.endswith("A") else None
    if alpha is not None and depth != 32:
        alpha[0, 0] = 0  # a fully transparent pixel whose colour must survive
        alpha[0, 1] = np.iinfo(alpha.dtype).max
    return px, alpha


def smooth_rgb(h=48, w=64):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, (x + y) * 127 // (h + w)], axis=2).astype(np.uint8)


def srgb_icc():
    try:
        from PIL import ImageCms

        return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    except Exception:  # Pillow without littlecms: any opaque bytes will do for carrying
        return b"\0\0\x02\x0cfake" + bytes(range(256)) * 3


def exif_blob(orientation=1, xdim=W, ydim=H):
    return piexif.dump({
        "0th": {piexif.ImageIFD.Make: b"Canon", piexif.ImageIFD.Model: b"EOS R5",
                piexif.ImageIFD.Orientation: orientation, piexif.ImageIFD.Artist: b"Ann"},
        "Exif": {piexif.ExifIFD.DateTimeOriginal: b"2021:02:03 04:05:06",
                 piexif.ExifIFD.ExposureTime: (1, 250),
                 piexif.ExifIFD.PixelXDimension: xdim, piexif.ExifIFD.PixelYDimension: ydim},
        "GPS": {piexif.GPSIFD.GPSLatitudeRef: b"N",
                piexif.GPSIFD.GPSLatitude: ((52, 1), (30, 1), (15, 1))},
    })[6:]  # without "Exif\0\0"


def pil_bytes(arr_or_im, fmt, **params):
    im = arr_or_im if isinstance(arr_or_im, PILImage.Image) else PILImage.fromarray(arr_or_im)
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


# --------------------------------------------------------------------------- round trips

LOSSLESS = [
    (fmt, mode, depth)
    for fmt, depths in (("PNG", (8, 16)), ("TIFF", (8, 16, 32)))
    for mode in ("L", "LA", "RGB", "RGBA")
    for depth in depths
] + [("BMP", m, 8) for m in ("L", "RGB", "RGBA")] + [("WEBP", m, 8) for m in ("RGB", "RGBA")]


@pytest.mark.parametrize("fmt,mode,depth", LOSSLESS)
def test_lossless_roundtrip_exact(fmt, mode, depth, tmp_path):
    px, alpha = make(mode, depth)
    data = encode_image(Image(px, alpha, fmt))
    back = read_image(data)
    assert back.format == fmt
    assert back.bit_depth == depth
    assert back.pixels.dtype == px.dtype and back.pixels.shape == px.shape
    np.testing.assert_array_equal(back.pixels, px)
    if alpha is None:
        assert back.alpha is None
    else:
        assert back.alpha is not None and back.alpha.dtype == alpha.dtype
        np.testing.assert_array_equal(back.alpha, alpha)
    # the same through a file, by path and by file object
    path = write_image(tmp_path / f"x.{fmt.lower()}", back)
    again = read_image(path)
    np.testing.assert_array_equal(again.pixels, px)
    with open(path, "rb") as f:
        np.testing.assert_array_equal(read_image(f).pixels, px)


def test_16bit_png_is_really_16bit_and_rgb_ordered(tmp_path):
    import cv2

    # independent writer: OpenCV, BGR order, values that do not fit 8 bits
    rgb = np.zeros((4, 5, 3), np.uint16)
    rgb[..., 0] = 65535  # red
    rgb[..., 1] = 257
    rgb[..., 2] = 1
    p = tmp_path / "rgb16.png"
    cv2.imwrite(str(p), rgb[..., ::-1])
    img = read_image(p)
    assert img.bit_depth == 16 and img.pixels.dtype == np.uint16
    np.testing.assert_array_equal(img.pixels, rgb)
    # and what we write is read by libpng as 16-bit RGB in the right order
    out = np.frombuffer(encode_image(img), np.uint8)
    np.testing.assert_array_equal(cv2.imdecode(out, cv2.IMREAD_UNCHANGED)[..., ::-1], rgb)


def test_16bit_gray_png_from_pillow_and_gray_alpha_readable_by_libpng():
    import cv2

    gray = rand((H, W), 16)
    img = read_image(pil_bytes(PILImage.fromarray(gray), "PNG"))  # Pillow writes I;16 PNGs
    assert img.pixels.ndim == 2 and img.bit_depth == 16
    np.testing.assert_array_equal(img.pixels, gray)
    px, alpha = make("LA", 16)
    data = encode_image(Image(px, alpha))  # our own encoder (neither Pillow nor OpenCV writes LA16)
    assert data[24:26] == bytes([16, 4])  # IHDR: bit depth 16, colour type 4
    dec = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(dec[..., 0], px)
    np.testing.assert_array_equal(dec[..., 3], alpha)


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_jpeg_roundtrip_close(mode):
    px = smooth_rgb()
    if mode == "L":
        px = px[..., 0].copy()
    back = read_image(encode_image(Image(px, None, "JPEG")))
    assert back.format == "JPEG" and back.bit_depth == 8 and back.pixels.shape == px.shape
    diff = np.abs(back.pixels.astype(int) - px.astype(int))
    assert diff.mean() < 1.5 and diff.max() < 16


def test_webp_gray_comes_back_as_rgb_with_equal_channels():
    px, _ = make("L", 8)
    back = read_image(encode_image(Image(px, None, "WEBP")))
    assert back.pixels.shape == (H, W, 3)
    for c in range(3):
        np.testing.assert_array_equal(back.pixels[..., c], px)


def test_bmp_gray_alpha_is_written_as_rgba():
    px, alpha = make("LA", 8)
    back = read_image(encode_image(Image(px, alpha, "BMP")))
    np.testing.assert_array_equal(back.pixels, np.dstack([px] * 3))
    np.testing.assert_array_equal(back.alpha, alpha)


def test_alpha_passes_through_and_hidden_colours_survive():
    px = np.full((8, 8, 3), 200, np.uint8)
    px[0] = (12, 34, 56)
    alpha = np.zeros((8, 8), np.uint8)
    alpha[4:] = np.arange(8, dtype=np.uint8) * 36
    for fmt in ("PNG", "TIFF", "WEBP", "BMP"):
        back = read_image(encode_image(Image(px, alpha, fmt)))
        np.testing.assert_array_equal(back.alpha, alpha, err_msg=fmt)
        np.testing.assert_array_equal(back.pixels, px, err_msg=fmt)  # colour under alpha=0 kept


def test_rgba_array_without_separate_alpha_is_split():
    rgba = rand((H, W, 4), 8)
    back = read_image(encode_image(Image(rgba)))
    np.testing.assert_array_equal(back.pixels, rgba[..., :3])
    np.testing.assert_array_equal(back.alpha, rgba[..., 3])


# --------------------------------------------------------------------------- palette & odd inputs


def test_palette_png_becomes_rgb_or_rgba():
    idx = (np.arange(H * W).reshape(H, W) % 4).astype(np.uint8)
    pal = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]
    im = PILImage.fromarray(idx, "P")
    im.putpalette(pal + [0] * (768 - len(pal)))
    expect = np.array(pal, np.uint8).reshape(4, 3)[idx]
    img = read_image(pil_bytes(im, "PNG"))
    assert img.pixels.shape == (H, W, 3) and img.alpha is None and img.bit_depth == 8
    np.testing.assert_array_equal(img.pixels, expect)
    assert img.extra.get("source_mode") == "P"
    img = read_image(pil_bytes(im, "PNG", transparency=2))  # index 2 transparent
    np.testing.assert_array_equal(img.pixels, expect)
    np.testing.assert_array_equal(img.alpha, np.where(idx == 2, 0, 255))
    bmp = read_image(pil_bytes(im, "BMP"))
    np.testing.assert_array_equal(bmp.pixels, expect)


def test_palette_tiff():
    idx = (np.arange(H * W).reshape(H, W) % 3).astype(np.uint8)
    cmap = np.zeros((3, 256), np.uint16)
    cmap[:, 0] = (65535, 0, 0)
    cmap[:, 1] = (0, 65535, 0)
    cmap[:, 2] = (257 * 10, 257 * 20, 257 * 30)
    buf = io.BytesIO()
    tifffile.imwrite(buf, idx, photometric="palette", colormap=cmap)
    img = read_image(buf.getvalue())
    expect = np.array([[255, 0, 0], [0, 255, 0], [10, 20, 30]], np.uint8)[idx]
    np.testing.assert_array_equal(img.pixels, expect)
    assert img.bit_depth == 8


def test_png_colour_key_transparency_becomes_alpha():
    px = rand((H, W, 3), 8)
    px[2, 3] = (1, 2, 3)
    img = read_image(pil_bytes(px, "PNG", transparency=(1, 2, 3)))
    assert img.alpha is not None and img.alpha[2, 3] == 0 and img.alpha.sum() == 255 * (H * W - (px == (1, 2, 3)).all(2).sum())
    # 16-bit gray with a tRNS key (decoded by OpenCV, which ignores it)
    gray = rand((H, W), 16)
    gray[1, 1] = 4321
    png = encode_image(Image(gray))
    trns = struct.pack(">I", 2) + b"tRNS" + struct.pack(">H", 4321)
    trns += struct.pack(">I", zlib.crc32(b"tRNS" + struct.pack(">H", 4321)))
    img = read_image(png[:33] + trns + png[33:])
    np.testing.assert_array_equal(img.alpha, np.where(gray == 4321, 0, 65535))


def test_tiff_layouts_planar_lzw_cmyk_multipage():
    rgb = rand((H, W, 3), 16)
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.moveaxis(rgb, 2, 0), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_image(buf.getvalue()).pixels, rgb)
    # LZW (tifffile needs the optional imagecodecs for it: Pillow fallback)
    rgb8 = rand((H, W, 3), 8)
    img = read_image(pil_bytes(rgb8, "TIFF", compression="tiff_lzw"))
    np.testing.assert_array_equal(img.pixels, rgb8)
    # CMYK: converted to RGB like Pillow does
    cmyk = PILImage.fromarray(rand((H, W, 4), 8), "CMYK")
    img = read_image(pil_bytes(cmyk, "TIFF"))
    np.testing.assert_array_equal(img.pixels, np.asarray(cmyk.convert("RGB")))
    assert img.extra["source_mode"] == "CMYK"
    # multi-page: the first page, with the page count noted
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tw:
        tw.write(rgb8, photometric="rgb")
        tw.write(rgb8[::-1].copy(), photometric="rgb")
    img = read_image(buf.getvalue())
    np.testing.assert_array_equal(img.pixels, rgb8)
    assert img.extra["n_frames"] == 2


def _handmade_tiff(pixel_bytes, width, height, bits, photometric):
    """Uncompressed single-strip gray TIFF built by hand (little-endian)."""
    entries = [(256, 3, 1, width), (257, 3, 1, height), (258, 3, 1, bits), (259, 3, 1, 1),
               (262, 3, 1, photometric), (273, 4, 1, 0), (277, 3, 1, 1), (278, 3, 1, height),
               (279, 4, 1, len(pixel_bytes))]
    data_offset = 8 + 2 + 12 * len(entries) + 4
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        value = data_offset if tag == 273 else value
        ifd += struct.pack("<HHI", tag, typ, count) + struct.pack("<I" if typ == 4 else "<HH", *((value,) if typ == 4 else (value, 0)))
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + pixel_bytes


def test_tiff_low_bit_depths_and_min_is_white():
    nibbles = np.array([[0, 1, 7, 15], [15, 8, 2, 0]], np.uint8)
    packed = (nibbles[:, 0::2] << 4 | nibbles[:, 1::2]).tobytes()
    img = read_image(_handmade_tiff(packed, 4, 2, 4, 1))
    np.testing.assert_array_equal(img.pixels, nibbles * 17)  # 4-bit scaled to the full 8-bit range
    inverted = read_image(_handmade_tiff(bytes([0, 10, 200, 255]), 4, 1, 8, 0))  # min-is-white
    np.testing.assert_array_equal(inverted.pixels, [[255, 245, 55, 0]])
    bits = rand((H, W), 8) > 127
    img = read_image(pil_bytes(PILImage.fromarray(bits), "TIFF"))  # 1-bit bilevel
    assert img.pixels.dtype == np.uint8
    np.testing.assert_array_equal(img.pixels, bits * 255)


def test_tiff_12bit_samples_are_scaled_to_16bit():
    # What tifffile returns for a 12-bit TIFF when imagecodecs is installed (not needed here)
    from types import SimpleNamespace

    raw = np.array([[0, 1, 2048, 4095]], np.uint16)
    page = SimpleNamespace(photometric=1, axes="YX", bitspersample=12, asarray=lambda: raw)
    pixels, alpha, _ = iio._tiff_arrays(page)
    np.testing.assert_array_equal(pixels, np.round(raw * (65535 / 4095)).astype(np.uint16))
    assert pixels.dtype == np.uint16 and alpha is None


def test_tiff_uncompressed_stays_uncompressed():
    px = rand((H, W), 16)
    buf = io.BytesIO()
    tifffile.imwrite(buf, px)
    img = read_image(buf.getvalue())
    assert img.extra["tiff_compression"] == "none"
    with tifffile.TiffFile(io.BytesIO(encode_image(img))) as t:
        assert t.pages[0].compression == 1
    with tifffile.TiffFile(io.BytesIO(encode_image(Image(px, format="TIFF")))) as t:
        assert t.pages[0].compression == 8  # deflate by default


def test_cmyk_jpeg_is_rgb_and_drops_cmyk_profile():
    cmyk = PILImage.fromarray(np.full((16, 16, 4), (0, 255, 255, 0), np.uint8), "CMYK")
    img = read_image(pil_bytes(cmyk, "JPEG", icc_profile=b"fake cmyk profile", quality=95))
    assert img.pixels.shape == (16, 16, 3)
    assert img.icc_profile is None
    assert np.abs(img.pixels.astype(int) - (255, 0, 0)).max() < 8


# --------------------------------------------------------------------------- bit depth


def test_bit_depth_conversions():
    px16 = rand((H, W, 3), 16)
    img = Image(px16, None, "PNG")
    b8 = read_image(encode_image(img, bit_depth=8))
    assert b8.bit_depth == 8
    np.testing.assert_array_equal(b8.pixels, np.round(px16 / 257).astype(np.uint8))
    px8 = rand((H, W), 8)
    b16 = read_image(encode_image(Image(px8), bit_depth=16))
    np.testing.assert_array_equal(b16.pixels, px8.astype(np.uint16) * 257)
    # float input, format without float: 16-bit, clipped and rounded
    fl = rand((H, W, 3), 32)
    b = read_image(encode_image(Image(fl, None, "PNG")))
    assert b.bit_depth == 16
    np.testing.assert_array_equal(b.pixels, np.round(np.clip(fl, 0, 1) * 65535).astype(np.uint16))
    # integer -> float TIFF is exact in [0, 1]
    t = read_image(encode_image(Image(px16, None, "TIFF"), bit_depth=32))
    assert t.pixels.dtype == np.float32
    np.testing.assert_allclose(t.pixels, px16 / 65535, rtol=0, atol=1e-7)
    # inherited 16-bit depth into an 8-bit-only format is lowered, not refused
    j = read_image(encode_image(Image(px16, None, "PNG"), format="JPEG"))
    assert j.bit_depth == 8


@pytest.mark.parametrize("fmt,depth,needle", [
    ("PNG", 32, "TIFF"), ("JPEG", 32, "TIFF"), ("WEBP", 32, "TIFF"), ("BMP", 32, "TIFF"),
    ("JPEG", 16, "8 bits"), ("WEBP", 16, "8 bits"), ("BMP", 16, "8 bits"), ("PNG", 12, "8, 16 or 32"),
])
def test_unsupported_depth_is_a_clear_error(fmt, depth, needle):
    with pytest.raises(ImageFormatError, match=needle) as ei:
        encode_image(Image(rand((4, 4, 3), 8)), format=fmt, bit_depth=depth)
    assert "\n" not in str(ei.value)


def test_jpeg_refuses_alpha():
    px, alpha = make("RGBA", 8)
    with pytest.raises(ImageFormatError, match="alpha"):
        encode_image(Image(px, alpha), format="JPEG")


def test_to_float_from_float():
    u8 = np.array([0, 1, 128, 255], np.uint8)
    np.testing.assert_allclose(to_float(u8), u8 / 255, rtol=1e-6)
    assert to_float(u8).dtype == np.float32
    u16 = np.array([0, 1, 32768, 65535], np.uint16)
    np.testing.assert_allclose(to_float(u16), u16 / 65535, rtol=1e-6)
    f = np.array([-0.5, 0.25, 1.5], np.float32)
    assert to_float(f) is f  # passes through, not clipped
    np.testing.assert_array_equal(from_float(f, np.uint8), [0, 64, 255])
    np.testing.assert_array_equal(from_float(np.array([np.nan, 0.5 / 255, 1.4 / 255], np.float32), np.uint8), [0, 0, 1])
    np.testing.assert_array_equal(from_float(np.array([1.0, 2.0, -1.0], np.float32), np.uint16), [65535, 65535, 0])
    assert from_float(f, np.float32).dtype == np.float32
    np.testing.assert_array_equal(from_float(to_float(u16), np.uint16), u16)
    np.testing.assert_array_equal(from_float(to_float(u8), np.uint8), u8)


# --------------------------------------------------------------------------- metadata


@pytest.mark.parametrize("fmt,depth", [("PNG", 8), ("PNG", 16), ("JPEG", 8), ("TIFF", 8), ("TIFF", 16),
                                       ("TIFF", 32), ("WEBP", 8)])
def test_exif_and_icc_survive(fmt, depth):
    icc = srgb_icc()
    px = smooth_rgb(H, W) if depth == 8 else rand((H, W, 3), depth)
    img = Image(px, None, fmt, depth, exif=exif_blob(), icc_profile=icc)
    data = encode_image(img)
    back = read_image(data)
    assert back.icc_profile == icc
    e = piexif.load(back.exif)
    assert e["0th"][piexif.ImageIFD.Make] == b"Canon"
    assert e["0th"][piexif.ImageIFD.Artist] == b"Ann"
    assert e["0th"].get(piexif.ImageIFD.Orientation, 1) == 1
    assert e["Exif"][piexif.ExifIFD.DateTimeOriginal] == b"2021:02:03 04:05:06"
    assert e["Exif"][piexif.ExifIFD.ExposureTime] == (1, 250)
    assert e["GPS"][piexif.GPSIFD.GPSLatitude] == ((52, 1), (30, 1), (15, 1))
    # an independent reader sees the same metadata in the written file
    if fmt == "TIFF":  # Pillow cannot open float32 RGB TIFFs; tifffile decodes the EXIF IFDs itself
        with tifffile.TiffFile(io.BytesIO(data)) as t:
            tags = t.pages[0].tags
            assert tags["Make"].value == "Canon"
            assert tags["ExifTag"].value["DateTimeOriginal"] == "2021:02:03 04:05:06"
            assert tags["GPSTag"].value["GPSLatitudeRef"] == "N"
            assert tags["InterColorProfile"].value == icc
        return
    pim = PILImage.open(io.BytesIO(data))
    ex = pim.getexif()
    assert ex.get(271) == "Canon"
    assert ex.get_ifd(0x8769).get(36867) == "2021:02:03 04:05:06"
    assert ex.get_ifd(0x8825).get(1) == "N"
    assert pim.info.get("icc_profile") == icc


def test_tiff_exif_subifd_is_valid_for_tifffile():
    data = encode_image(Image(rand((H, W, 3), 16), None, "TIFF", exif=exif_blob()))
    with tifffile.TiffFile(io.BytesIO(data)) as t:
        page = t.pages[0]
        assert page.tags["Make"].value == "Canon"
        assert page.tags["ExifTag"].value["DateTimeOriginal"] == "2021:02:03 04:05:06"
        assert page.tags["GPSTag"].value["GPSLatitudeRef"] == "N"
        assert page.asarray().shape == (H, W, 3)


def test_other_metadata_carried():
    text = {"Title": "café", "Comment": "日本語"}
    img = Image(rand((H, W, 3), 8), extra={"dpi": (300.0, 300.0), "png_text": text})
    back = read_image(encode_image(img))
    assert back.extra["png_text"] == text
    assert back.extra["dpi"] == (300.0, 300.0)
    for fmt in ("JPEG", "TIFF", "BMP"):
        assert read_image(encode_image(img, format=fmt)).extra["dpi"] == (300.0, 300.0), fmt
    jpeg = pil_bytes(smooth_rgb(), "JPEG", quality=90, comment=b"hello", progressive=True)
    j = read_image(jpeg)
    assert j.extra["comment"] == b"hello" and j.extra["progressive"]
    j2 = read_image(encode_image(j))
    assert j2.extra["comment"] == b"hello" and j2.extra["progressive"]


def test_exif_pixel_dimensions_follow_the_written_size():
    img = Image(rand((H, W, 3), 8), exif=exif_blob(xdim=999, ydim=888))
    e = piexif.load(read_image(encode_image(img)).exif)
    assert (e["Exif"][piexif.ExifIFD.PixelXDimension], e["Exif"][piexif.ExifIFD.PixelYDimension]) == (W, H)


def _marked(h, w):
    """Blocky image, red block at the stored top-left, blue at top-right (survives JPEG)."""
    a = np.full((h, w, 3), 128, np.uint8)
    a[: h // 4, : w // 4] = (255, 0, 0)
    a[: h // 4, -(w // 4):] = (0, 0, 255)
    return a


def _colour_at(a, y, x):
    return tuple(int(v) for v in a[y, x])


def test_exif_orientation_6_reads_upright_and_writes_1(tmp_path):
    stored = _marked(40, 64)  # stored landscape; orientation 6 = rotate 90 deg clockwise to display
    src = tmp_path / "in.jpg"
    src.write_bytes(pil_bytes(stored, "JPEG", quality=95, exif=b"Exif\0\0" + exif_blob(6, 64, 40)))
    before = src.read_bytes()
    img = read_image(src)
    assert img.pixels.shape == (64, 40, 3)  # portrait now
    # stored top-left (red) is displayed top-right; stored top-right (blue) bottom-right
    assert np.abs(np.subtract(_colour_at(img.pixels, 2, 37), (255, 0, 0))).max() < 20
    assert np.abs(np.subtract(_colour_at(img.pixels, 61, 37), (0, 0, 255))).max() < 20
    assert np.abs(np.subtract(_colour_at(img.pixels, 2, 2), (128, 128, 128))).max() < 20
    assert piexif.load(img.exif)["0th"][piexif.ImageIFD.Orientation] == 1
    for fmt in ("jpg", "png", "tiff", "webp"):
        out = write_image(tmp_path / f"out.{fmt}", img)
        pil = PILImage.open(out)
        assert pil.getexif().get(274, 1) == 1
        # displayed the same way round: a viewer applying EXIF gets the upright pixels
        shown = np.asarray(ImageOps.exif_transpose(pil).convert("RGB"))
        assert shown.shape == (64, 40, 3)
        assert np.abs(shown.astype(int) - img.pixels.astype(int)).mean() < 3
        e = piexif.load(read_image(out).exif)
        assert (e["Exif"][piexif.ExifIFD.PixelXDimension], e["Exif"][piexif.ExifIFD.PixelYDimension]) == (40, 64)
    assert src.read_bytes() == before  # input untouched


def test_exif_thumbnail_of_the_input_is_not_carried(tmp_path):
    # Cameras embed a thumbnail (IFD1) stored like the main image and shown with its
    # Orientation; after rotating the pixels and writing Orientation 1 it would show sideways
    # (and it pictures the input, before restoration) in any viewer that previews it.
    stored = _marked(40, 64)
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6, piexif.ImageIFD.Make: b"Canon"},
                        "Exif": {piexif.ExifIFD.PixelXDimension: 64, piexif.ExifIFD.PixelYDimension: 40},
                        "1st": {piexif.ImageIFD.Orientation: 1},
                        "thumbnail": pil_bytes(stored[::4, ::4], "JPEG")})
    src = tmp_path / "in.jpg"
    src.write_bytes(pil_bytes(stored, "JPEG", quality=95, exif=exif))
    assert piexif.load(str(src))["thumbnail"]
    img = read_image(src)
    for fmt in ("jpg", "png", "webp"):
        out = write_image(tmp_path / f"out.{fmt}", img)
        e = piexif.load(read_image(out).exif)
        assert not e["thumbnail"] and not e["1st"], fmt
        assert e["0th"][piexif.ImageIFD.Orientation] == 1 and e["0th"][piexif.ImageIFD.Make] == b"Canon"
        assert (e["Exif"][piexif.ExifIFD.PixelXDimension], e["Exif"][piexif.ExifIFD.PixelYDimension]) == (40, 64)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_orientations_match_pillow(orientation):
    px = rand((5, 7, 3), 8)
    alpha = rand((5, 7), 8, seed=3)
    data = pil_bytes(np.dstack([px, alpha]), "PNG", exif=b"Exif\0\0" + exif_blob(orientation))
    img = read_image(data)
    expect = np.asarray(ImageOps.exif_transpose(PILImage.open(io.BytesIO(data))))
    np.testing.assert_array_equal(img.pixels, expect[..., :3])
    np.testing.assert_array_equal(img.alpha, expect[..., 3])


def test_tiff_orientation_tag_is_honoured():
    stored = _marked(8, 12)
    data = pil_bytes(stored, "TIFF", tiffinfo={274: 8})  # rotate 90 deg counter-clockwise to display
    img = read_image(data)
    np.testing.assert_array_equal(img.pixels, np.rot90(stored, 1))
    with tifffile.TiffFile(io.BytesIO(encode_image(img))) as t:
        assert 274 not in t.pages[0].tags or t.pages[0].tags[274].value == 1


@pytest.mark.parametrize("orientation", range(2, 9))
def test_compressed_tiff_orientation_applied_once(orientation):
    """LZW and JPEG TIFFs go through a decoder that may turn the pixels upright itself (Pillow's
    libtiff for 8 bits, OpenCV for 16); the Orientation tag must still be applied exactly once."""
    stored = _marked(32, 48)
    for compression in ("tiff_lzw", "jpeg"):
        img = read_image(pil_bytes(stored, "TIFF", compression=compression, tiffinfo={274: orientation}))
        assert np.abs(img.pixels.astype(int) - _pillow_upright(stored, orientation)).mean() < 8, compression
    gray16 = np.zeros((8, 12), np.uint16)
    gray16[:2, :3], gray16[0, 0] = 60000, 30000   # a corner mark that tells every orientation apart
    img = read_image(pil_bytes(gray16, "TIFF", compression="tiff_lzw", tiffinfo={274: orientation}))
    assert img.bit_depth == 16
    np.testing.assert_array_equal(img.pixels, _pillow_upright(gray16, orientation))


def _pillow_upright(stored, orientation):
    """``stored`` as Pillow's exif_transpose displays it under ``orientation``."""
    data = pil_bytes(stored, "PNG", exif=b"Exif\0\0" + exif_blob(orientation))
    return np.asarray(ImageOps.exif_transpose(PILImage.open(io.BytesIO(data))))


def test_xmp_orientation_reset():
    xmp = b'<x:xmpmeta><rdf:Description tiff:Orientation="6" tiff:Make="X"/></x:xmpmeta>'
    img = Image(rand((H, W, 3), 8), extra={"xmp": xmp})
    for fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
        back = read_image(encode_image(img, format=fmt))
        assert b'tiff:Orientation="1"' in back.extra["xmp"], fmt
        assert b'tiff:Make="X"' in back.extra["xmp"]


def test_jpeg_quality_estimate_and_policy():
    src = smooth_rgb()
    for q in (50, 75, 90, 97):
        assert read_image(pil_bytes(src, "JPEG", quality=q)).extra["jpeg_quality"] == q

    def written_quality(data):
        return iio._estimate_jpeg_quality(JpegImagePlugin.JpegImageFile(io.BytesIO(data)).quantization)

    low = read_image(pil_bytes(src, "JPEG", quality=60, subsampling=2))
    assert low.extra["jpeg_subsampling"] == 2
    out = encode_image(low)
    assert written_quality(out) == iio.JPEG_QUALITY_FLOOR  # raised to the floor
    assert JpegImagePlugin.get_sampling(JpegImagePlugin.JpegImageFile(io.BytesIO(out))) == 2  # kept
    high = read_image(pil_bytes(src, "JPEG", quality=98))
    assert written_quality(encode_image(high)) == 98  # kept
    png = Image(src)
    out = encode_image(png, format="JPEG")
    assert written_quality(out) == iio.DEFAULT_JPEG_QUALITY
    assert JpegImagePlugin.get_sampling(JpegImagePlugin.JpegImageFile(io.BytesIO(out))) == 0  # 4:4:4
    assert written_quality(encode_image(png, format="JPEG", quality=70)) == 70


def test_jpeg_of_very_detailed_image_does_not_fail():
    # Pillow's optimize/progressive JPEG encoder needs the whole file to fit a buffer of
    # 1-2 bytes/pixel; noise at high quality and 4:4:4 is bigger than that
    noise = rand((256, 256, 3), 8)
    data = encode_image(Image(noise, extra={"progressive": True}), format="JPEG", quality=100)
    back = read_image(data)
    assert np.abs(back.pixels.astype(int) - noise).mean() < 3


def test_webp_lossless_unless_source_was_lossy():
    png = Image(rand((H, W, 3), 8))
    assert read_image(encode_image(png, format="WEBP")).extra["webp_lossless"] is True
    jpg = read_image(encode_image(Image(smooth_rgb()), format="JPEG"))
    w = read_image(encode_image(jpg, format="WEBP"))
    assert w.extra["webp_lossless"] is False
    assert read_image(encode_image(w)).extra["webp_lossless"] is False
    assert read_image(encode_image(png, format="WEBP", quality=80)).extra["webp_lossless"] is False


# --------------------------------------------------------------------------- errors


def _valid(fmt):
    px = smooth_rgb(64, 80)
    if fmt == "PNG16":
        return encode_image(Image(px.astype(np.uint16) * 257))
    if fmt == "TIFF":
        return encode_image(Image(px), format="TIFF")
    if fmt == "TIFFRAW":
        return encode_image(Image(px, extra={"tiff_compression": "none"}), format="TIFF")
    if fmt == "WEBP":
        return encode_image(Image(rand((64, 80, 3), 8)), format="WEBP")
    return encode_image(Image(px), format=fmt)


@pytest.mark.parametrize("fmt", ["PNG", "PNG16", "JPEG", "TIFF", "TIFFRAW", "WEBP", "BMP"])
@pytest.mark.parametrize("keep", [0.05, 0.5, 0.9, 0.999])
def test_truncated_files_raise(fmt, keep, tmp_path):
    data = _valid(fmt)
    n = int(len(data) * keep)
    if fmt == "JPEG":  # without only its 2-byte end marker a JPEG is whole (test_jpeg_missing_only_...)
        n = min(n, len(data) - 3)
    p = tmp_path / "cut.img"
    p.write_bytes(data[:n])
    with pytest.raises(iio.ImageTruncatedError) as ei:
        read_image(p)
    msg = str(ei.value)
    assert "\n" not in msg and len(msg) < 250
    name = {"PNG16": "PNG", "TIFFRAW": "TIFF", "WEBP": "WebP"}.get(fmt, fmt)
    assert msg.startswith(f"truncated {name} file")


def test_truncated_jpeg_is_an_error_not_grey():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    data = _valid("JPEG")
    with pytest.raises(iio.ImageTruncatedError, match="truncated JPEG"):
        read_image(data[: len(data) - 200])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_missing_only_its_end_marker_is_read(capfd, progressive):
    """Some cameras and tools leave out the final EOI marker: every scan is there, so the image
    is read as with it; one byte less of image data is still a truncated file."""
    data = pil_bytes(rand((48, 64, 3), 8), "JPEG", quality=90, progressive=progressive)
    assert data.endswith(b"\xff\xd9")
    whole = read_image(data)
    for cut in (data[:-2], data[:-1]):
        np.testing.assert_array_equal(read_image(cut).pixels, whole.pixels)
    capfd.readouterr()
    for cut in (3, 40):
        with pytest.raises(iio.ImageTruncatedError, match="truncated JPEG"):
            read_image(data[:-cut])
    assert capfd.readouterr().err == ""   # libjpeg's own warning is not let through


@pytest.mark.parametrize("data,cls,needle", [
    (b"", ImageError, "empty"),
    (b"hello, I am a text file\n" * 10, ImageFormatError, "not a recognised image"),
    (b"GIF89a" + bytes(50), ImageFormatError, "GIF"),
    (b"\x89PNG\r\n\x1a\n", iio.ImageTruncatedError, "truncated"),
    (b"\x89PNG\r\n\x1a\n" + bytes(40), ImageError, "PNG"),
    (b"\xff\xd8\xff\xe0" + os.urandom(300), ImageError, "JPEG"),
    (b"II*\x00" + bytes(100), ImageError, "TIFF"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(8), ImageError, "WebP"),
    (b"BM" + os.urandom(60), ImageError, "BMP"),
])
def test_empty_and_garbage(data, cls, needle, tmp_path):
    p = tmp_path / "bad.png"
    p.write_bytes(data)
    with pytest.raises(cls, match=needle) as ei:
        read_image(p)
    assert "\n" not in str(ei.value)


def test_atomic_writes_take_the_longest_names_and_never_replace_a_device(tmp_path):
    from restorecli.errors import RestoreError
    from restorecli.imageio import write_file_atomic

    longest = tmp_path / ("z" * 251 + ".png")   # 255 bytes: what most filesystems allow
    write_image(longest, Image(rand((4, 4, 3), 8)))
    assert read_image(longest).pixels.shape == (4, 4, 3)
    assert [p.name for p in tmp_path.iterdir()] == [longest.name]   # no temp file left
    with pytest.raises(RestoreError, match="not a regular file"):
        write_file_atomic(pathlib.Path(os.devnull), b"data", overwrite=True)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="directory"):
        read_image(tmp_path)


def test_corrupt_16bit_png_data(capfd):
    """A broken IDAT checksum: one error of ours, refused before libpng prints its own line."""
    data = bytearray(_valid("PNG16"))
    idat = data.index(b"IDAT")
    data[idat + 40 : idat + 80] = bytes(40)  # garbage inside the zlib stream, chunk structure intact
    capfd.readouterr()
    with pytest.raises(ImageError, match="PNG.*checksum"):
        read_image(bytes(data))
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("damage", ["garbage", "short"])
def test_corrupt_16bit_png_stream_with_valid_checksums(capfd, damage):
    """The IDAT checksum recomputed over damaged data (what a careless tool writes), or a zlib
    stream that ends before the last row: refused by us, before libpng prints its own line."""
    import struct
    import zlib

    data = _valid("PNG16")
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4:idat])[0]
    payload = bytearray(data[idat + 4:idat + 4 + length])
    if damage == "garbage":
        payload[len(payload) // 3:len(payload) // 3 + 12] = b"\xff" * 12
    else:
        payload = bytearray(zlib.compress(zlib.decompress(bytes(payload))[:-7]))
    chunk = struct.pack(">I", len(payload)) + b"IDAT" + payload
    chunk += struct.pack(">I", zlib.crc32(chunk[4:]) & 0xFFFFFFFF)
    broken = data[:idat - 4] + chunk + data[idat + 8 + length:]
    capfd.readouterr()
    with pytest.raises(ImageError, match="corrupt PNG data: the image data (does not decompress|ends early)"):
        read_image(broken)
    assert capfd.readouterr().err == ""


# --------------------------------------------------------------------------- max_pixels

FORMATS_FOR_LIMIT = ["PNG", "PNG16", "JPEG", "TIFF", "WEBP", "BMP"]


@pytest.fixture
def no_decoding(monkeypatch):
    """Make every pixel decoder fail loudly, so that only header parsing can succeed."""
    from PIL import WebPImagePlugin

    def boom(*a, **k):
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)
    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "_open", boom)  # libwebp is set up in the constructor
    monkeypatch.setattr(iio, "_cv2_decode", boom)
    monkeypatch.setattr(tifffile.TiffPage, "asarray", boom)


@pytest.mark.parametrize("fmt", FORMATS_FOR_LIMIT)
def test_max_pixels_checked_before_decoding(fmt, no_decoding):
    data = _valid(fmt)  # 80x64 = 5120 pixels
    with pytest.raises(ImageTooLargeError) as ei:
        read_image(data, max_pixels=5119)
    e = ei.value
    assert (e.width, e.height, e.pixels, e.limit) == (80, 64, 5120, 5119)
    assert "5,120" in str(e) and "5,119" in str(e) and "80x64" in str(e)
    with pytest.raises(ImageError, match="pixel data was decoded"):  # at the limit: allowed, goes on to decode
        read_image(data, max_pixels=5120)


@pytest.mark.parametrize("fmt", FORMATS_FOR_LIMIT)
def test_pillow_bomb_guard_does_not_fire_first(fmt, monkeypatch):
    data = _valid(fmt)
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1000)  # far below 80x64, even doubled
    img = read_image(data)  # no limit of ours: reads fine, no DecompressionBombError
    assert img.pixels.shape[:2] == (64, 80)
    assert PILImage.MAX_IMAGE_PIXELS == 1000  # restored
    with pytest.raises(ImageTooLargeError):
        read_image(data, max_pixels=4000)


# --------------------------------------------------------------------------- writing


def test_format_from_path_and_suffixes():
    assert format_from_path("a/b.PNG") == "PNG"
    assert format_from_path("x.jpeg") == format_from_path("x.JPG") == "JPEG"
    assert format_from_path("x.tif") == format_from_path("x.TIFF") == "TIFF"
    assert format_from_path("x.webp") == "WEBP" and format_from_path("x.bmp") == "BMP"
    for bad in ("x.gif", "x", "x.png.txt"):
        with pytest.raises(ImageFormatError, match="extension"):
            format_from_path(bad)
    assert IMAGE_SUFFIXES == {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}
    assert all(s == s.lower() for s in IMAGE_SUFFIXES)



def test_suffix_from_content(tmp_path):
    for fmt, suffix in (("png", ".png"), ("jpeg", ".jpg"), ("tiff", ".tif"), ("webp", ".webp"), ("bmp", ".bmp")):
        (tmp_path / fmt).write_bytes(encode_image(Image(rand((H, W, 3), 8)), fmt))
        assert iio.suffix_from_content(tmp_path / fmt) == suffix  # the name has no extension to go by
    (tmp_path / "notes").write_text("not an image")
    with pytest.raises(ImageFormatError, match="not a recognised image"):
        iio.suffix_from_content(tmp_path / "notes")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        iio.suffix_from_content(tmp_path / "empty")


def test_side_limits_of_webp_and_jpeg(monkeypatch):
    iio.check_output_size("webp", 16383, 16383)
    iio.check_output_size("jpg", 65535, 1)
    iio.check_output_size("png", 100_000, 1)
    with pytest.raises(ImageFormatError, match=r"^WebP images are limited to 16383 pixels a side and this one "
                                               r"is 16384x2: write PNG or TIFF$"):
        iio.check_output_size("WEBP", 16384, 2)
    with pytest.raises(ImageFormatError, match="JPEG images are limited to 65535 pixels a side"):
        iio.check_output_size("JPEG", 3, 65536)
    # the encoders apply the same check (made small here: no 16k image needed)
    monkeypatch.setattr(iio, "_WEBP_MAX_SIDE", W - 1)
    monkeypatch.setattr(iio, "_JPEG_MAX_SIDE", W - 1)
    for fmt in ("webp", "jpeg"):
        with pytest.raises(ImageFormatError, match=f"{W}x{H}: write PNG or TIFF"):
            encode_image(Image(rand((H, W, 3), 8)), fmt)

def test_write_refuses_overwrite_and_replaces_with_flag(tmp_path):
    img = Image(rand((H, W, 3), 8))
    p = write_image(tmp_path / "sub" / "out.png", img)  # parent folders created
    assert p == tmp_path / "sub" / "out.png"
    np.testing.assert_array_equal(read_image(p).pixels, img.pixels)
    mode = stat.S_IMODE(p.stat().st_mode)
    assert mode & 0o044 == 0o666 & ~iio._umask() & 0o044  # not the 0600 of a temp file
    before = p.read_bytes()
    with pytest.raises(OutputExistsError) as ei:
        write_image(p, Image(rand((H, W, 3), 8, seed=5)))
    assert isinstance(ei.value, ImageError) and isinstance(ei.value, FileExistsError)
    assert "already exists" in str(ei.value) and "\n" not in str(ei.value)
    assert p.read_bytes() == before
    os.chmod(p, 0o664)  # a shared folder's file: replacing it keeps its permissions
    write_image(p, Image(rand((H, W, 3), 8, seed=6)), overwrite=True)
    assert stat.S_IMODE(p.stat().st_mode) == 0o664
    img2 = Image(rand((H, W, 3), 8, seed=5))
    write_image(p, img2, overwrite=True)
    np.testing.assert_array_equal(read_image(p).pixels, img2.pixels)
    assert sorted(os.listdir(p.parent)) == ["out.png"]


def test_write_format_override_and_bit_depth(tmp_path):
    img = Image(rand((H, W, 3), 16))
    p = write_image(tmp_path / "a.tif", img, bit_depth=32)
    assert read_image(p).pixels.dtype == np.float32
    p = write_image(tmp_path / "b.img", img, format="png", bit_depth=8)
    assert read_image(p).format == "PNG" and read_image(p).bit_depth == 8
    with pytest.raises(ImageFormatError):
        write_image(tmp_path / "c.jpg", img, bit_depth=16)
    assert not (tmp_path / "c.jpg").exists()


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    img = Image(rand((H, W, 3), 8))

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(ImageError, match="No space left"):
        write_image(tmp_path / "out.png", img)
    assert os.listdir(tmp_path) == []
    # overwriting: the old file stays intact
    monkeypatch.undo()
    p = write_image(tmp_path / "out.png", img)
    before = p.read_bytes()
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(ImageError):
        write_image(p, Image(rand((H, W, 3), 8, seed=9)), overwrite=True)
    assert p.read_bytes() == before and os.listdir(tmp_path) == ["out.png"]


def test_write_does_not_clobber_a_file_created_meanwhile(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    real_encode = iio.encode_image

    def racing_encode(*a, **k):
        data = real_encode(*a, **k)
        target.write_bytes(b"someone else's file")
        return data

    monkeypatch.setattr(iio, "encode_image", racing_encode)
    with pytest.raises(OutputExistsError):
        write_image(target, Image(rand((H, W), 8)))
    assert target.read_bytes() == b"someone else's file"
    assert os.listdir(tmp_path) == ["out.png"]


def test_interrupt_during_write_leaves_no_temp(tmp_path, monkeypatch):
    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "out.png", Image(rand((H, W), 8)), overwrite=True)
    assert os.listdir(tmp_path) == []


def test_image_defaults():
    img = Image(rand((4, 4), 16))
    assert img.bit_depth == 16 and img.format == "PNG" and img.alpha is None and img.extra == {}
    assert Image(rand((4, 4), 32), format="tif").format == "TIFF"
    with pytest.raises(ImageFormatError):
        encode_image(img, format="gif")


# ----------------------------------------------------------------------------- TIFF codecs and extra samples

def test_lzw_tiff_keeps_16_bit_and_float_samples_without_imagecodecs(tmp_path, capfd):
    """OpenCV writes LZW (the usual export), which tifffile decodes only with the optional
    imagecodecs; such files are read through OpenCV at their depth, not Pillow's 8 bits, and
    without libtiff warnings on stderr."""
    import cv2

    rgb, rgba = rand((30, 40, 3), 16), rand((30, 40, 4), 16, seed=1)
    gray, flt = rand((30, 40), 16, seed=2), np.random.default_rng(3).random((30, 40, 3)).astype(np.float32)
    cv2.imwrite(str(tmp_path / "rgb.tif"), rgb[..., ::-1])
    cv2.imwrite(str(tmp_path / "rgba.tif"), rgba[..., [2, 1, 0, 3]])  # no ExtraSamples tag: alpha
    cv2.imwrite(str(tmp_path / "gray.tif"), gray)
    cv2.imwrite(str(tmp_path / "float.tif"), flt[..., ::-1])
    capfd.readouterr()
    got = {n: read_image(tmp_path / f"{n}.tif") for n in ("rgb", "rgba", "gray", "float")}
    assert capfd.readouterr().err == ""
    assert got["rgb"].bit_depth == 16 and np.array_equal(got["rgb"].pixels, rgb)
    assert np.array_equal(got["rgba"].pixels, rgba[..., :3]) and np.array_equal(got["rgba"].alpha, rgba[..., 3])
    assert got["gray"].bit_depth == 16 and np.array_equal(got["gray"].pixels, gray)
    assert got["float"].pixels.dtype == np.float32 and np.array_equal(got["float"].pixels, flt)


@pytest.mark.parametrize("depth", [8, 16])
def test_damaged_lzw_tiff_is_one_error_of_ours(capfd, depth):
    """Damaged LZW data (tifffile needs imagecodecs for it; OpenCV and Pillow's libtiff fail on
    it): one line that says the data is damaged, not that a package is missing, and no libtiff
    line on stderr."""
    import cv2

    ramp = np.linspace(0, 65535, 64 * 96).reshape(64, 96).astype(np.uint16)
    rgb = np.dstack([ramp, ramp[::-1], ramp[:, ::-1]])
    if depth == 16:
        data = bytearray(cv2.imencode(".tiff", rgb)[1].tobytes())   # OpenCV writes LZW
    else:
        data = bytearray(pil_bytes((rgb >> 8).astype(np.uint8), "TIFF", compression="tiff_lzw"))
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as t:
        start = t.pages[0].dataoffsets[0] + t.pages[0].databytecounts[0] // 3
    data[start:start + 16] = b"\xfe" * 16
    capfd.readouterr()
    with pytest.raises(ImageError, match="^corrupt TIFF data: its LZW-compressed image data could not be decoded$"):
        read_image(bytes(data))
    assert capfd.readouterr().err == ""


def test_tiff_extra_samples_premultiplied_alpha_and_unspecified(tmp_path):
    """Associated (premultiplied) alpha is divided out, since everything downstream and every
    writer uses straight alpha; an unspecified extra sample (a saved selection) is not alpha."""
    rng = np.random.default_rng(0)
    color = rng.integers(0, 256, (20, 30, 3)).astype(np.uint16)
    alpha = np.full((20, 30), 255, np.uint16)
    alpha[:, :15] = 128
    alpha[0, 0] = 0
    premul = (color * alpha[..., None] + 127) // 255
    tifffile.imwrite(tmp_path / "assoc.tif", np.dstack([premul, alpha]).astype(np.uint8),
                     photometric="rgb", extrasamples=["assocalpha"])
    img = read_image(tmp_path / "assoc.tif")
    seen = alpha > 0
    assert np.abs(img.pixels.astype(int) - color)[seen].max() <= 1  # 8-bit rounding of the premultiply
    assert np.array_equal(img.alpha, alpha.astype(np.uint8)) and (img.pixels[0, 0] == 0).all()
    mask = np.zeros((20, 30), np.uint8)
    mask[5:10] = 255
    tifffile.imwrite(tmp_path / "sel.tif", np.dstack([color.astype(np.uint8), mask]),
                     photometric="rgb", extrasamples=["unspecified"])
    sel = read_image(tmp_path / "sel.tif")
    assert sel.alpha is None and np.array_equal(sel.pixels, color.astype(np.uint8))


def test_png_gamma_and_chromaticity_chunks_are_kept(tmp_path):
    """gAMA/cHRM/sRGB tell viewers how to show the values: a restored copy keeps them (8 and 16 bit)."""
    buf = io.BytesIO()
    PILImage.fromarray(rand((12, 16, 3), 8)).save(buf, "PNG")
    data = buf.getvalue()
    chunk = lambda t, p: struct.pack(">I", len(p)) + t + p + struct.pack(">I", zlib.crc32(t + p) & 0xFFFFFFFF)  # noqa: E731
    gama, chrm = struct.pack(">I", 100000), struct.pack(">8I", *range(31270, 31278))
    (tmp_path / "g.png").write_bytes(data[:33] + chunk(b"gAMA", gama) + chunk(b"cHRM", chrm) + data[33:])
    img = read_image(tmp_path / "g.png")
    for depth in (8, 16):
        out = encode_image(img, "PNG", bit_depth=depth)
        found = {c[0]: out[c[1]:c[1] + c[2]] for c in iio._png_chunks(out)}
        assert found[b"gAMA"] == gama and found[b"cHRM"] == chrm
    assert PILImage.open(io.BytesIO(encode_image(img, "PNG"))).info["gamma"] == pytest.approx(1.0)


def test_a_profile_for_other_colours_is_dropped_and_libpng_says_nothing(tmp_path, capfd):
    """A gray 16-bit PNG holding an RGB ICC profile (invalid: libpng warns on stderr when it reads
    one, and again when it writes one) reads without a stray line and without the profile;
    a matching profile is kept."""
    from PIL import ImageCms

    rgb_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert rgb_icc[16:20] == b"RGB "
    gray = rand((H, W), 16)
    png = encode_image(Image(gray, icc_profile=rgb_icc, bit_depth=16), "png")
    capfd.readouterr()
    img = read_image(png)
    assert img.icc_profile is None and img.bit_depth == 16
    np.testing.assert_array_equal(img.pixels, gray)
    assert capfd.readouterr().err == ""
    kept = read_image(encode_image(Image(rand((H, W, 3), 16), icc_profile=rgb_icc, bit_depth=16), "png"))
    assert kept.icc_profile == rgb_icc
