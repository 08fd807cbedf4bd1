"""The task commands as a shell user drives them: files, folders, pipes, errors, metadata."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from typer.testing import CliRunner

from restorecli.cli import app
from restorecli.tiling import pad_to_multiple

runner = CliRunner()


def invoke(*args: str, input: bytes | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def photo_png(tmp_path, photo) -> Path:
    path = tmp_path / "photo.png"
    PILImage.fromarray(photo[:96, :128]).save(path)
    return path


def test_every_task_has_help_with_an_example():
    for task in ("denoise", "derain", "deblur", "defocus", "dehaze", "desnow"):
        r = invoke(task, "--help")
        assert r.exit_code == 0
        assert "Example" in r.stdout and f"restore {task}" in r.stdout
        for option in ("--model", "--weights", "--device", "--tile", "--tile-overlap", "--precision",
                       "--bit-depth", "--quality", "--overwrite", "--quiet"):
            assert option in r.stdout, (task, option)
    assert "--sigma" in invoke("denoise", "--help").stdout
    assert "--sigma" not in invoke("derain", "--help").stdout


def test_single_file_writes_beside_it_and_keeps_the_input(photo_png, dehaze_weights):
    before = sha(photo_png)
    r = invoke("dehaze", photo_png, "--weights", dehaze_weights)
    assert r.exit_code == 0, r.stderr
    out = photo_png.with_name("photo_dehaze.png")
    assert out.is_file() and sha(photo_png) == before
    assert np.asarray(PILImage.open(out)).shape == (96, 128, 3)
    assert r.stdout == ""  # nothing on stdout unless asked
    assert "1 restored" in r.stderr
    # a second run refuses to replace it, without --overwrite
    r = invoke("dehaze", photo_png, "--weights", dehaze_weights)
    assert r.exit_code == 1 and "exists" in r.stderr and "--overwrite" in r.stderr
    r = invoke("dehaze", photo_png, "--weights", dehaze_weights, "--overwrite", "-q")
    assert r.exit_code == 0 and r.stderr == ""
    assert not [p for p in photo_png.parent.iterdir() if p.name.startswith(".")]  # no temp files left


def test_quality_sets_jpeg_and_lossy_webp_output(photo_png, dehaze_weights, tmp_path):
    """Without --quality a PNG input gives JPEG 95 and lossless WebP; with it, that quality."""
    from restorecli.imageio import read_image

    sizes = {}
    for name, extra in (("q95.jpg", ()), ("q40.jpg", ("--quality", "40")), ("ll.webp", ()),
                        ("q40.webp", ("--quality", "40"))):
        r = invoke("dehaze", photo_png, "-o", tmp_path / name, "--weights", dehaze_weights, "-q", *extra)
        assert r.exit_code == 0, r.stderr
        sizes[name] = (tmp_path / name).stat().st_size
    assert read_image(tmp_path / "q95.jpg").extra["jpeg_quality"] == 95
    assert read_image(tmp_path / "q40.jpg").extra["jpeg_quality"] == 40
    assert read_image(tmp_path / "ll.webp").extra["webp_lossless"] is True
    assert read_image(tmp_path / "q40.webp").extra["webp_lossless"] is False
    assert sizes["q40.jpg"] < sizes["q95.jpg"] and sizes["q40.webp"] < sizes["ll.webp"]
    r = runner.invoke(app, ["dehaze", str(photo_png), "--quality", "0"])
    assert r.exit_code == 2 and "--quality" in r.stderr
    # PNG is lossless: the option does nothing there, and the run says so once, without failing
    r = invoke("dehaze", photo_png, "-o", tmp_path / "q40.png", "--weights", dehaze_weights, "--quality", "40")
    assert r.exit_code == 0 and (tmp_path / "q40.png").exists()
    assert r.stderr.count("note: --quality applies to JPEG and WebP outputs; PNG is written losslessly") == 1
    r = invoke("dehaze", photo_png, "-o", tmp_path / "q41.jpg", "--weights", dehaze_weights, "--quality", "41")
    assert r.exit_code == 0 and "--quality" not in r.stderr


def test_explicit_output_file_and_format(photo_png, dehaze_weights, tmp_path):
    out = tmp_path / "sub" / "result.tif"
    r = invoke("dehaze", photo_png, "-o", out, "--weights", dehaze_weights, "--bit-depth", "16")
    assert r.exit_code == 0, r.stderr
    import tifffile
    arr = tifffile.imread(out)
    assert arr.dtype == np.uint16 and arr.shape == (96, 128, 3)


def test_folder_mirrors_tree_reports_bad_files_and_resumes(tmp_path, photo, dehaze_weights):
    src = tmp_path / "in"
    (src / "a" / "b").mkdir(parents=True)
    PILImage.fromarray(photo[:64, :64]).save(src / "one.png")
    PILImage.fromarray(photo[64:128, :64]).save(src / "a" / "b" / "two.jpg", quality=95)
    (src / "a" / "notes.txt").write_text("not an image")
    good = io.BytesIO()
    PILImage.fromarray(photo[:64, :64]).save(good, format="PNG")
    (src / "a" / "broken.png").write_bytes(good.getvalue()[:300])  # truncated
    (src / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out"
    r = invoke("dehaze", src, "-o", out, "--weights", dehaze_weights)
    assert r.exit_code == 1
    assert (out / "one.png").is_file() and (out / "a" / "b" / "two.jpg").is_file()
    assert not (out / "a" / "notes.txt").exists()
    assert "broken.png" in r.stderr and "empty.jpg" in r.stderr
    assert "2 restored" in r.stderr and "2 failed" in r.stderr
    assert "Traceback" not in r.stderr
    # a rerun skips what exists (resumes) and only retries the failures
    stamp = (out / "one.png").stat().st_mtime_ns
    r = invoke("dehaze", src, "-o", out, "--weights", dehaze_weights)
    assert (out / "one.png").stat().st_mtime_ns == stamp
    assert "2 skipped" in r.stderr


def test_folder_default_output_is_a_sibling(tmp_path, photo, dehaze_weights):
    src = tmp_path / "shots"
    src.mkdir()
    PILImage.fromarray(photo[:64, :64]).save(src / "x.png")
    r = invoke("dehaze", src, "--weights", dehaze_weights, "-q")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "shots_dehaze" / "x.png").is_file()


def test_stdin_to_stdout_through_the_console_script(tmp_path, photo, dehaze_weights):
    buf = io.BytesIO()
    PILImage.fromarray(photo[:64, :96]).save(buf, format="PNG")
    proc = subprocess.run([sys.executable, "-m", "restorecli", "dehaze", "-", "--weights", str(dehaze_weights)],
                          input=buf.getvalue(), capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    out = PILImage.open(io.BytesIO(proc.stdout))
    assert out.format == "PNG" and out.size == (96, 64)  # the input's format, nothing else on stdout
    assert b"restored" in proc.stderr


def test_usage_errors_exit_2_without_traceback(photo_png, dehaze_weights):
    cases = [
        ("--tile", "huge"), ("--device", "tpu"), ("--device", ""), ("--bit-depth", "12"), ("--precision", "fp8"),
        ("--tile-overlap", "-3"),
    ]
    for opt, value in cases:
        r = invoke("dehaze", photo_png, "--weights", dehaze_weights, opt, value)
        assert r.exit_code == 2, (opt, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.strip(), opt
    r = invoke("dehaze", "-", photo_png)
    assert r.exit_code == 2 and "stdin" in r.stderr
    r = invoke("dehaze", photo_png, "--weights", dehaze_weights, "--model", "irnxt")
    assert r.exit_code != 0 and "irnext" in r.stderr  # a close name is suggested


def test_wrong_weights_for_model_is_one_clear_line(photo_png, dehaze_weights):
    r = invoke("deblur", photo_png, "--weights", dehaze_weights, "--model", "irnext")
    assert r.exit_code == 1
    assert "not a checkpoint of irnext-deblur" in r.stderr and "Traceback" not in r.stderr


def test_max_pixels_refused_with_a_message(photo_png, dehaze_weights):
    r = invoke("dehaze", photo_png, "--weights", dehaze_weights, "--max-pixels", "1000")
    assert r.exit_code == 1
    assert "photo.png" in r.stderr and "1000" in r.stderr.replace(",", "")


def test_gray_and_alpha(tmp_path, photo, dehaze_weights):
    gray = tmp_path / "g.png"
    PILImage.fromarray(photo[:64, :64, 1]).save(gray)
    rgba = tmp_path / "rgba.png"
    alpha = np.tile(np.arange(64, dtype=np.uint8)[None] * 4, (64, 1))
    PILImage.fromarray(np.dstack([photo[:64, :64], alpha])).save(rgba)
    r = invoke("dehaze", gray, rgba, "--weights", dehaze_weights)
    assert r.exit_code == 0, r.stderr
    g = PILImage.open(tmp_path / "g_dehaze.png")
    assert g.mode == "L"  # grey comes back grey
    out = np.asarray(PILImage.open(tmp_path / "rgba_dehaze.png"))
    assert out.shape == (64, 64, 4) and np.array_equal(out[..., 3], alpha)  # alpha untouched


def test_exif_orientation_and_icc_are_kept(tmp_path, photo, dehaze_weights):
    import piexif
    from PIL import ImageCms

    src = tmp_path / "cam.jpg"
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6, piexif.ImageIFD.Make: b"TestCam"}})
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    PILImage.fromarray(photo[:64, :96]).save(src, exif=exif, icc_profile=icc, quality=95)
    r = invoke("dehaze", src, "--weights", dehaze_weights)
    assert r.exit_code == 0, r.stderr
    out = PILImage.open(tmp_path / "cam_dehaze.jpg")
    assert out.size == (64, 96)  # stored upright: orientation 6 means rotated 90 degrees
    tags = piexif.load(out.info["exif"])
    assert tags["0th"][piexif.ImageIFD.Make] == b"TestCam"
    assert tags["0th"].get(piexif.ImageIFD.Orientation, 1) == 1
    assert out.info.get("icc_profile") == icc


def _authors_protocol(model: torch.nn.Module, rgb8: np.ndarray) -> np.ndarray:
    """How the IRNeXt authors evaluate: reflect-pad bottom/right to 32, run, crop, clamp."""
    x = torch.from_numpy(np.ascontiguousarray(rgb8)).permute(2, 0, 1)[None].float() / 255.0
    h, w = x.shape[-2:]
    with torch.no_grad():
        y = model(pad_to_multiple(x, 32))[..., :h, :w].clamp(0, 1)
    return np.rint(y[0].permute(1, 2, 0).numpy() * 65535).astype(np.uint16)


@pytest.mark.parametrize("variant,size", [("irnext-dehaze", (64, 96)), ("irnext-dehaze", (70, 101)),
                                          ("irnext-deblur", (96, 128)), ("irnext-deblur", (100, 131))])
def test_cli_equals_the_authors_protocol_in_16_bit(tmp_path, photo, variant, size, request):
    from conftest import active_model

    weights = request.getfixturevalue("dehaze_weights" if variant == "irnext-dehaze" else "deblur_weights")
    h, w = size
    src = tmp_path / "in.png"
    PILImage.fromarray(photo[:h, :w]).save(src)
    task = "dehaze" if variant == "irnext-dehaze" else "deblur"
    r = invoke(task, src, "-o", tmp_path / "out.png", "--model", "irnext", "--weights", weights,
               "--tile", "0", "--bit-depth", "16")
    assert r.exit_code == 0, r.stderr
    import cv2
    ours = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert ours.dtype == np.uint16
    expected = _authors_protocol(active_model(variant), photo[:h, :w])
    diff = np.abs(ours.astype(np.int64) - expected.astype(np.int64))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01  # identical up to a rounding LSB


def test_output_problems_are_found_before_any_work(photo_png, tmp_path, dehaze_weights):
    for args in (["-o", tmp_path / "x.jpg", "--bit-depth", "16"], ["-o", tmp_path / "x.png", "--bit-depth", "32"],
                 ["-o", tmp_path / "x.xyz"]):
        r = invoke("dehaze", photo_png, "--weights", "/nonexistent/never-loaded.pth", *args)
        assert r.exit_code == 2, (args, r.stderr)  # refused before the weights are even looked up
        assert "Traceback" not in r.stderr
    r = invoke("dehaze", photo_png, photo_png, "-o", tmp_path / "out", "--weights", dehaze_weights)
    assert r.exit_code == 2 and "both be written" in r.stderr
    r = invoke("dehaze", photo_png, photo_png, "-o", tmp_path / "one.png", "--weights", dehaze_weights)
    assert r.exit_code == 2 and "output folder" in r.stderr


def test_current_folder_output_goes_beside_it(tmp_path, photo, dehaze_weights, monkeypatch):
    work = tmp_path / "shots"
    work.mkdir()
    PILImage.fromarray(photo[:64, :64]).save(work / "a.png")
    monkeypatch.chdir(work)
    r = invoke("dehaze", ".", "--weights", dehaze_weights, "-q")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "shots_dehaze" / "a.png").is_file()
    assert sorted(p.name for p in work.iterdir()) == ["a.png"]


def test_weights_for_another_task_are_named(photo_png, dehaze_weights):
    r = invoke("deblur", photo_png, "--weights", dehaze_weights)
    assert r.exit_code == 0, r.stderr
    assert "irnext-dehaze checkpoint" in r.stderr and "deblur" in r.stderr


def test_empty_input_or_output_is_a_usage_error(tmp_path, photo, dehaze_weights, monkeypatch):
    PILImage.fromarray(photo[:32, :32]).save(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)  # "" must not be taken for this folder
    for args in ([""], ["a.png", "-o", ""]):
        r = invoke("dehaze", *args, "--weights", dehaze_weights)
        assert r.exit_code == 2, (args, r.stderr)
        assert r.stderr.startswith("error: empty ") and r.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_unknown_model_is_a_usage_error_naming_the_known_ones(photo_png, dehaze_weights):
    for extra in ([], ["--weights", dehaze_weights], ["--weights", "denoise-nlmunet-s"]):
        r = invoke("derain", photo_png, "-m", "foo", *extra)
        assert r.exit_code == 2, (extra, r.stderr)
        assert r.stderr.startswith("error: unknown model 'foo' (known: ") and r.stderr.count("\n") == 1
        assert "irnext" in r.stderr and "irnext-dehaze" in r.stderr and "clginet-s" in r.stderr


def test_explicit_tile_with_too_large_an_overlap_is_a_usage_error(photo_png, dehaze_weights, tmp_path):
    r = invoke("dehaze", photo_png, "--weights", dehaze_weights, "--tile", "64", "--tile-overlap", "40")
    assert r.exit_code == 2 and "--tile-overlap 40" in r.stderr and "--tile 64" in r.stderr
    assert "at most 32" in r.stderr and not photo_png.with_name("photo_dehaze.png").exists()
    for tile in ("64", "auto"):  # half the tile is kept as asked; auto tiles are ours to size
        r = invoke("dehaze", photo_png, "--weights", dehaze_weights, "--tile", tile, "--tile-overlap", "32",
                   "-o", tmp_path / f"t{tile}.png")
        assert r.exit_code == 0, r.stderr


def test_registered_weights_of_another_task_warn(photo_png, tmp_path):
    from restorecli.weights.registry import package_dir

    file = package_dir() / "weights" / "denoise-nlmunet-s.safetensors"
    for weights in ("denoise-nlmunet-s", file):  # by name, or the same file by its path
        r = invoke("deblur", photo_png, "-w", weights, "--ensemble", "1", "-o", tmp_path / "out.png", "--overwrite")
        assert r.exit_code == 0, r.stderr
        lines = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
        assert len(lines) == 1 and "trained for denoise, not deblur" in lines[0], r.stderr
    r = invoke("denoise", photo_png, "-w", file, "--ensemble", "1", "-o", tmp_path / "out.png", "--overwrite")
    assert r.exit_code == 0 and "warning" not in r.stderr


def test_tiff_without_pages_is_one_error_line(tmp_path, dehaze_weights):
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"II*\x00\x00\x00\x00\x00")  # a header whose first page offset is 0
    proc = subprocess.run([sys.executable, "-m", "restorecli", "dehaze", str(empty), "-q",
                           "--weights", str(dehaze_weights)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "empty.tif" in proc.stderr and "no image" in proc.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE short writes are Linux behaviour")
def test_stdout_cut_short_by_a_file_size_limit_fails(tmp_path, photo, dehaze_weights):
    import resource

    src = tmp_path / "in.png"
    PILImage.fromarray(photo[:96, :128]).save(src)
    limit = 4096

    def cap():  # the child's files may not grow past the limit (as `ulimit -f 4` does)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = tmp_path / "out.png"
    with open(out, "wb") as stdout:
        proc = subprocess.run([sys.executable, "-m", "restorecli", "dehaze", str(src), "-o", "-",
                               "--weights", str(dehaze_weights)], stdout=stdout, stderr=subprocess.PIPE,
                              text=True, timeout=300, preexec_fn=cap)
    assert out.stat().st_size == limit  # the image is larger than that
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot write to standard output" in errors[0], proc.stderr


def test_numpy_is_imported_before_torch_so_ctrl_c_at_start_up_is_not_lost():
    # torch's C start-up imports numpy and clears any exception raised while it does: a
    # KeyboardInterrupt in that moment was lost (the run went on) or left numpy half-imported
    # ("module 'numpy' has no attribute 'lib'" on the first image).
    code = (
        "import sys\n"
        "class Spy:\n"
        "    seen = None\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' and Spy.seen is None:\n"
        "            Spy.seen = 'numpy' in sys.modules\n"
        "        return None\n"
        "sys.meta_path.insert(0, Spy())\n"
        "from restorecli.cli.app import _setup\n"
        "_setup()\n"
        "print(Spy.seen)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"


def test_parsing_errors_are_one_line_too(photo_png):
    # click's own errors (bad value, unknown option or command, missing argument) come out as
    # our errors do: one line on stderr, exit 2; not a framed panel wrapped at 80 columns.
    def restore(*args):
        return subprocess.run([sys.executable, "-m", "restorecli", *map(str, args)],
                              capture_output=True, text=True, timeout=300)

    for args, needle in [(("deblur", photo_png, "--tile-overlap", "-3"), "'--tile-overlap'"),
                         (("deblur", photo_png, "--half"), "--half"),
                         (("deblur",), "Missing argument"),
                         (("deblurr", photo_png), "Did you mean 'deblur'"),
                         (("weights", "list", "--bogus"), "--bogus")]:
        proc = restore(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
        assert needle in proc.stderr and "--help" in proc.stderr and proc.stdout == ""
    proc = restore()  # no arguments: the help
    assert proc.returncode == 2 and "denoise" in proc.stdout and "error" not in proc.stderr
    proc = restore("deblur", "--help")
    assert proc.returncode == 0 and "--tile-overlap" in proc.stdout and proc.stderr == ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses a pseudo-terminal")
def test_stdin_from_a_terminal_is_refused_before_any_work(tmp_path):
    import pty

    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "restorecli", "deblur", "-", "-o", str(tmp_path / "x.png")],
                              stdin=secondary, capture_output=True, text=True, timeout=120)
    finally:
        os.close(secondary)
        os.close(primary)
    assert proc.returncode == 2, proc.stderr  # not a wait for an image nobody will type
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1 and "terminal" in proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_empty_stdin_is_a_usage_error(dehaze_weights):
    r = invoke("dehaze", "-", "--weights", dehaze_weights, input=b"")
    assert r.exit_code == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: no image data on standard input"] and r.stdout == "", r.stderr
    assert "restored" not in r.stderr  # the run is refused, not summed up as a failed image


def test_a_file_without_an_extension_gets_its_formats_in_the_output_name(tmp_path, photo, dehaze_weights):
    scan = tmp_path / "scan"
    PILImage.fromarray(photo[:32, :32]).save(scan, format="JPEG", quality=95)
    r = invoke("dehaze", scan, "--weights", dehaze_weights)
    assert r.exit_code == 0, r.stderr
    out = PILImage.open(tmp_path / "scan_dehaze.jpg")
    assert out.format == "JPEG" and out.size == (32, 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan", "scan_dehaze.jpg"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals")
def test_sigterm_during_a_write_cleans_up_says_so_and_exits_143(tmp_path, photo, dehaze_weights):
    import signal
    import time

    src = tmp_path / "in.png"
    PILImage.fromarray(photo[:32, :32]).save(src)
    code = (
        "import signal, sys, time\n"
        "import restorecli.cli, restorecli.imageio as iio\n"
        "if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:\n"
        "    sys.exit('importing the package installed a SIGTERM handler')\n"
        "iio._umask = lambda: time.sleep(300)  # the write stops after the temp file is written\n"
        "sys.argv[0] = 'restore'\n"
        "restorecli.cli.main()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, "dehaze", str(src), "-o", str(tmp_path / "out.png"),
                             "--weights", str(dehaze_weights)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not list(tmp_path.glob(".out.png.*.part")):  # mid-write: the hidden temp file is there
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the write never started"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)  # as `timeout` or `kill` sends it
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr
    assert stderr.splitlines()[-1] == "terminated" and "Traceback" not in stderr, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]  # no .part file, no output


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals")
@pytest.mark.parametrize("stage, signame", [("typer", "SIGINT"), ("torch", "SIGTERM"), ("torch", "SIGINT")])
def test_a_signal_during_start_up_is_said_once_without_a_traceback(tmp_path, stage, signame):
    """The console script's imports take up to a second: a Ctrl-C (or `timeout`'s SIGTERM) then
    ends the run as it does during a command. "typer": while the CLI's modules load (before
    typer's own handling); "torch": in the app's set-up, where typer would exit 130 silently."""
    import signal
    import time

    marker = tmp_path / "started"
    code = (
        "import importlib.abc, pathlib, sys, time\n"
        "class Slow(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        f"        if name == {stage!r}:\n"
        f"            pathlib.Path({str(marker)!r}).touch()\n"
        "            time.sleep(300)\n"
        "        return None\n"
        f"for m in [m for m in sys.modules if m == {stage!r} or m.startswith({stage + '.'!r})]:\n"
        "    del sys.modules[m]\n"
        "sys.meta_path.insert(0, Slow())\n"
        "sys.argv[0] = 'restore'\n"
        "from restorecli.launch import main\n"
        "main()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, "deblur", str(tmp_path / "x.png")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the slow import was never reached"
            time.sleep(0.05)
        proc.send_signal(getattr(signal, signame))
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    expected = ("interrupted", 130) if signame == "SIGINT" else ("terminated", 143)
    assert (stderr, proc.returncode) == (expected[0] + "\n", expected[1]), stderr
    assert stdout == ""


def test_a_mistyped_option_is_reported_before_an_existing_output(photo_png, dehaze_weights, tmp_path):
    """With the only output already there the run has nothing to restore, but a bad option is still
    the error (exit 2), not "output exists" (exit 1) hiding it until --overwrite is added."""
    r = invoke("dehaze", photo_png, "--weights", dehaze_weights, "-q")
    assert r.exit_code == 0, r.stderr
    for args, message in (
        (("--ensemble", "3"), "error: --ensemble 3: expected one of 1, 2, 4, 8"),
        (("--tile", "abc"), "error: --tile 'abc': expected a size in pixels, 0 (whole image) or auto"),
        (("--precision", "fp8"), "error: --precision 'fp8': expected fp32, fp16 or bf16"),
        (("--device", "tpu"), "error: --device"),
        (("-m", "nosuchmodel"), "error: unknown model 'nosuchmodel'"),
    ):
        r = invoke("dehaze", photo_png, "--weights", dehaze_weights, *args)
        assert r.exit_code == 2 and r.stderr.startswith(message) and r.stderr.count("\n") == 1, (args, r.stderr)
    (tmp_path / "junk.pth").write_bytes(b"not weights")
    r = invoke("dehaze", photo_png, "--weights", tmp_path / "junk.pth")
    assert r.exit_code == 1 and "not a weights file" in r.stderr and "exists" not in r.stderr, r.stderr
    r = invoke("dehaze", photo_png, "--weights", dehaze_weights)  # the options are fine: the output exists
    assert r.exit_code == 1 and f"output {tmp_path / 'photo_dehaze.png'} exists" in r.stderr


def test_a_file_name_starting_with_a_dash_gets_a_hint(tmp_path, photo):
    PILImage.fromarray(photo[:16, :16]).save(tmp_path / "-dash.png")
    proc = subprocess.run([sys.executable, "-m", "restorecli", "deblur", "-dash.png"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    # click reads "-d": say how to name the file, not only that there is no such option
    assert proc.stderr == "error: No such option: -d (-dash.png is a file: write ./-dash.png or put -- before it)\n"


def test_a_weights_path_with_brackets_is_named_whole_in_the_summary(photo_png, dehaze_weights, tmp_path):
    folder = tmp_path / "["
    folder.mkdir()
    weights = folder / "x] w [v2].safetensors"  # the path holds "[/x]", a closing tag to rich
    weights.write_bytes(Path(dehaze_weights).read_bytes())
    r = invoke("dehaze", photo_png, "-o", tmp_path / "out.png", "--weights", weights)
    assert r.exit_code == 0, r.stderr  # was exit 1, an internal MarkupError, after the image was written
    assert "1 restored in " in r.stderr and f"({weights})" in r.stderr


def test_an_empty_folder_is_an_error_and_version_prints(tmp_path):
    """A folder with no images (a typo'd or unmounted path) fails the run, naming it;
    one whose outputs all exist is a success with nothing to do."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    r = invoke("deblur", empty)
    assert r.exit_code == 1
    assert r.stderr.startswith(f"error: no image files found in {empty} (looked for ") and ".png" in r.stderr
    r = invoke("--version")
    assert r.exit_code == 0 and r.stdout.startswith("restorecli ")
