"""The batch loop without a network: planning, stdout writes, per-image checks and warnings."""
from __future__ import annotations

import io
import os
import sys

import numpy as np
import pytest
from PIL import Image as PILImage
from rich.console import Console

from restorecli.batch import BatchRunner, Job, JobPlan, plan_jobs, write_stdout
from restorecli.errors import RestoreError, UsageError


class IdentityRestorer:
    """Stands in for a Restorer: returns its input clipped, and counts its calls."""

    sigma = "auto"
    last_sigma = None
    tile_overlap = 32

    def __init__(self):
        self.calls = 0

    def tiles_for(self, h: int, w: int) -> int:
        return 1

    def __call__(self, pixels: np.ndarray, progress=None) -> np.ndarray:
        self.calls += 1
        return np.clip(pixels, 0, 1)


def run(plan: JobPlan, quiet: bool = False, overwrite: bool = False) -> tuple[object, str, IdentityRestorer]:
    restorer = IdentityRestorer()
    text = io.StringIO()
    console = Console(file=text, width=300, highlight=False)
    result = BatchRunner(restorer, console=console, quiet=quiet, overwrite=overwrite).run(plan)
    return result, text.getvalue(), restorer


class ShortWrites:
    """A stdout buffer that takes at most ``chunk`` bytes per write, and none past ``limit``."""

    def __init__(self, chunk: int, limit: int | None = None):
        self.chunk, self.limit, self.data = chunk, limit, bytearray()

    def write(self, b) -> int:
        room = len(b) if self.limit is None else max(0, self.limit - len(self.data))
        n = min(self.chunk, len(b), room)
        self.data += bytes(b[:n])
        return n

    def flush(self) -> None:
        pass


class FakeStdout:
    def __init__(self, buffer):
        self.buffer = buffer


@pytest.mark.parametrize("inputs,output", [([""], None), (["a.png", ""], None), (["-"], ""), (["a.png"], "")])
def test_empty_paths_are_usage_errors(tmp_path, monkeypatch, inputs, output):
    monkeypatch.chdir(tmp_path)
    PILImage.new("RGB", (8, 8)).save(tmp_path / "a.png")  # "" must not mean this folder
    with pytest.raises(UsageError, match="empty (input|output) path"):
        plan_jobs("deblur", inputs, output)


def test_stdout_short_writes_are_continued(monkeypatch):
    buf = ShortWrites(chunk=7)
    monkeypatch.setattr(sys, "stdout", FakeStdout(buf))
    data = bytes(range(256)) * 10
    write_stdout(data)
    assert bytes(buf.data) == data


def test_stdout_that_stops_taking_data_is_an_error(monkeypatch):
    monkeypatch.setattr(sys, "stdout", FakeStdout(ShortWrites(chunk=100, limit=250)))
    with pytest.raises(RestoreError, match="cannot write to standard output.*250 of 1,000 bytes"):
        write_stdout(b"x" * 1000)


def test_stdout_failure_fails_the_image(tmp_path, monkeypatch):
    src = tmp_path / "a.png"
    PILImage.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(src)
    buf = ShortWrites(chunk=64, limit=500)
    monkeypatch.setattr(sys, "stdout", FakeStdout(buf))
    result, said, _ = run(plan_jobs("deblur", [str(src)], "-"))
    assert result.failed == 1 and result.done == 0
    assert said.count("\n") == 1 and "error:" in said and "cannot write to standard output" in said
    assert len(buf.data) == 500


def _float_tiff(path, pixels: np.ndarray) -> None:
    import tifffile
    tifffile.imwrite(path, pixels.astype(np.float32), photometric="rgb")


def test_out_of_range_float_input_is_named_with_its_share(tmp_path):
    hdr = np.full((10, 10, 3), 0.5, np.float32)
    hdr[:2, :, 0] = 4.0  # 20 pixels above 1 in one channel
    hdr[2, :5, 2] = -0.5  # 5 below 0
    _float_tiff(tmp_path / "hdr.tif", hdr)
    _float_tiff(tmp_path / "ok.tif", np.full((10, 10, 3), 0.25, np.float32))
    plan = plan_jobs("deblur", [str(tmp_path / "hdr.tif"), str(tmp_path / "ok.tif")], str(tmp_path / "out"))
    result, said, _ = run(plan)
    assert result.done == 2
    warnings = [line for line in said.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "hdr.tif" in warnings[0] and "25.0%" in warnings[0] and "clipped" in warnings[0]
    _, said, _ = run(plan_jobs("deblur", [str(tmp_path / "hdr.tif")], str(tmp_path / "q.tif")), quiet=True)
    assert said == ""


def test_alpha_for_jpeg_is_refused_before_the_network_runs(tmp_path):
    rgba, rgb = tmp_path / "rgba.png", tmp_path / "rgb.png"
    PILImage.new("RGBA", (16, 16), (10, 20, 30, 128)).save(rgba)
    PILImage.new("RGB", (16, 16), (10, 20, 30)).save(rgb)
    plan = JobPlan(todo=[Job(str(rgba), str(tmp_path / "a.jpg"), "rgba.png"),
                         Job(str(rgb), str(tmp_path / "b.jpg"), "rgb.png")])
    result, said, restorer = run(plan)
    assert result.failed == 1 and result.done == 1
    assert restorer.calls == 1  # only the image that can be written was restored
    assert "rgba.png: JPEG cannot store an alpha channel" in said
    assert not (tmp_path / "a.jpg").exists() and (tmp_path / "b.jpg").is_file()


def test_depth_stdout_cannot_hold_is_refused_before_the_network_runs(tmp_path, monkeypatch):
    src = tmp_path / "a.jpg"
    PILImage.new("RGB", (16, 16), (10, 20, 30)).save(src)
    buf = ShortWrites(chunk=1 << 20)
    monkeypatch.setattr(sys, "stdout", FakeStdout(buf))
    restorer = IdentityRestorer()
    text = io.StringIO()
    result = BatchRunner(restorer, bit_depth=16, console=Console(file=text, width=300)).run(
        plan_jobs("deblur", [str(src)], "-"))
    assert result.failed == 1 and restorer.calls == 0  # JPEG on stdout: known before any work
    assert "a.jpg: JPEG holds only 8 bits" in text.getvalue() and not buf.data


def _deny_under(monkeypatch, folder):
    """Behave as if ``folder`` could not be entered (mode 000 for a user who is not root):
    listing it and looking at anything inside it fail with EACCES."""
    real_scandir, real_stat = os.scandir, os.stat
    inside = str(folder)

    def denied(path) -> bool:
        return isinstance(path, (str, os.PathLike)) and (
            os.fspath(path) == inside or os.fspath(path).startswith(inside + os.sep))

    def scandir(path="."):
        if denied(path):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    def stat(path, *args, **kwargs):
        if denied(path) and os.fspath(path) != inside:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "stat", stat)


def test_an_opaque_alpha_channel_is_dropped_for_jpeg(tmp_path):
    """A PNG exported with an alpha channel that is 255 everywhere loses nothing as JPEG."""
    src = tmp_path / "opaque.png"
    PILImage.new("RGBA", (16, 16), (10, 20, 30, 255)).save(src)
    result, said, restorer = run(JobPlan(todo=[Job(str(src), str(tmp_path / "o.jpg"), "opaque.png")]))
    assert result.done == 1 and result.failed == 0 and restorer.calls == 1, said
    with PILImage.open(tmp_path / "o.jpg") as im:
        assert im.mode == "RGB" and np.abs(np.asarray(im).astype(int) - (10, 20, 30)).max() <= 2


def test_a_small_tile_overlap_is_noted_once_when_tiles_are_used(tmp_path):
    class Tiled(IdentityRestorer):
        def __init__(self, overlap, tiles):
            super().__init__()
            self.tile_overlap, self.n = overlap, tiles

        def tiles_for(self, h, w):
            return self.n

    for p in ("a.png", "b.png"):
        PILImage.new("RGB", (16, 16), (10, 20, 30)).save(tmp_path / p)
    plan = lambda: JobPlan(todo=[Job(str(tmp_path / p), str(tmp_path / f"out_{p}"), p) for p in ("a.png", "b.png")])
    said = {}
    for overlap, tiles in ((16, 4), (32, 4), (16, 1)):
        text = io.StringIO()
        result = BatchRunner(Tiled(overlap, tiles), console=Console(file=text, width=300), overwrite=True).run(plan())
        assert result.done == 2
        said[overlap, tiles] = text.getvalue().count("note: --tile-overlap 16 is small")
    assert said == {(16, 4): 1, (32, 4): 0, (16, 1): 0}


def test_several_files_skip_existing_outputs_so_a_rerun_resumes(tmp_path):
    """restore deblur shots/*.png -o out/ again: done files are skipped, as in a folder run;
    one file given alone still refuses to replace its output."""
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for p in (a, b):
        PILImage.new("RGB", (16, 16), (10, 20, 30)).save(p)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"done before")
    plan = plan_jobs("deblur", [str(a), str(b)], str(out))
    assert [j.dest for j in plan.todo] == [str(out / "b.png")] and plan.skipped == 1 and not plan.failed
    plan = plan_jobs("deblur", [str(a)], str(out / "a.png"))
    assert not plan.todo and "exists (pass --overwrite" in plan.failed[0].error


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_in_a_folder_is_reported_not_read(tmp_path):
    """Reading a FIFO named x.png would block the whole run."""
    src = tmp_path / "shots"
    src.mkdir()
    PILImage.new("RGB", (16, 16), (10, 20, 30)).save(src / "a.png")
    os.mkfifo(src / "pipe.png")
    plan = plan_jobs("deblur", [str(src)], str(tmp_path / "out"))
    assert [j.source for j in plan.todo] == [str(src / "a.png")]
    assert [(j.display, j.error) for j in plan.failed] == [
        (str(src / "pipe.png"), "not a regular file (a FIFO): skipped")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_special_files_given_by_name(tmp_path, monkeypatch):
    """A FIFO or device as the output is never replaced by a file, --overwrite or not; a FIFO as
    the input (bash's <(cat x.png)) is read once, so its output must be named."""
    a = tmp_path / "a.png"
    PILImage.new("RGB", (16, 16), (10, 20, 30)).save(a)
    os.mkfifo(tmp_path / "f.png")
    for dest in (str(tmp_path / "f.png"), os.devnull):
        for overwrite in (False, True):
            plan = plan_jobs("deblur", [str(a)], dest, overwrite=overwrite)
            assert not plan.todo and "not a regular file (for standard output use -o -)" in plan.failed[0].error
    assert (tmp_path / "f.png").is_fifo()
    plan = plan_jobs("deblur", [str(tmp_path / "f.png")], None)
    assert not plan.todo and plan.failed[0].error == "this is a FIFO: name its output with -o FILE (or -o - for stdout)"
    plan = plan_jobs("deblur", [str(tmp_path / "f.png")], str(tmp_path / "out.png"))
    assert [j.dest for j in plan.todo] == [str(tmp_path / "out.png")]


def test_a_file_named_dash_is_a_file_not_stdin(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    PILImage.new("RGB", (16, 16), (10, 20, 30)).save(tmp_path / "-", format="PNG")
    plan = plan_jobs("deblur", ["./-"], None)
    assert [(j.source, j.dest) for j in plan.todo] == [("./-", "-_deblur.png")]
    plan = plan_jobs("deblur", [str(tmp_path / "-")], "./-", overwrite=True)
    assert not plan.todo and "would replace the input" in plan.failed[0].error
    result, said, restorer = run(plan_jobs("deblur", ["./-"], None))
    assert result.done == 1 and (tmp_path / "-_deblur.png").is_file()


def test_an_output_folder_inside_an_input_folder_is_named(tmp_path):
    """Its images are left out (outputs are never re-read as inputs): the plan says so."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png", "sub/c.png"):
        PILImage.new("RGB", (16, 16), (10, 20, 30)).save(src / name)
    plan = plan_jobs("deblur", [str(src)], str(src / "sub"))
    assert [j.source for j in plan.todo] == [str(src / "a.png")]
    assert plan.notes == [f"the output folder {src / 'sub'} is inside the input folder {src}: its 2 image(s) "
                          "are not restored (outputs are never re-read as inputs); choose an output folder "
                          "outside the inputs to include them"]
    assert plan_jobs("deblur", [str(src)], str(tmp_path / "out")).notes == []


def test_an_overwrite_never_replaces_an_image_left_out_of_an_input_folder(tmp_path):
    """`photos -o photos/sub --overwrite`: photos/sub's own images are not inputs of the run (it
    leaves them out), but they may be originals, so an output named like one is refused."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for name, value in (("a.png", 10), ("b.png", 20), ("sub/a.png", 200)):
        PILImage.new("RGB", (16, 16), (value,) * 3).save(src / name)
    before = (src / "sub" / "a.png").read_bytes()
    plan = plan_jobs("deblur", [str(src)], str(src / "sub"), overwrite=True)
    assert [j.source for j in plan.todo] == [str(src / "b.png")]  # sub/b.png does not exist: written
    assert [j.source for j in plan.failed] == [str(src / "a.png")]
    assert plan.failed[0].error.startswith(f"its output would replace {src / 'sub' / 'a.png'}, an image "
                                           "inside the input folder that this run leaves out")
    result, said, restorer = run(plan, overwrite=True)
    assert result.done == 1 and result.failed == 1
    assert (src / "sub" / "a.png").read_bytes() == before and (src / "sub" / "b.png").is_file()
    # without --overwrite the existing one is skipped, as any existing output is
    plan = plan_jobs("deblur", [str(src)], str(src / "sub"))
    assert plan.skipped == 2 and not plan.todo and not plan.failed


def test_closed_stdin_is_a_usage_error(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(UsageError, match="standard input is closed"):
        run(plan_jobs("deblur", ["-"], str(tmp_path / "out.png")))


def test_a_broken_link_in_a_folder_is_named_as_one(tmp_path):
    src = tmp_path / "shots"
    src.mkdir()
    PILImage.new("RGB", (16, 16), (10, 20, 30)).save(src / "a.png")
    (src / "gone.png").symlink_to(tmp_path / "elsewhere.png")
    plan = plan_jobs("deblur", [str(src)], str(tmp_path / "out"))
    assert [j.source for j in plan.todo] == [str(src / "a.png")]
    assert [(j.display, j.error) for j in plan.failed] == [
        (str(src / "gone.png"), f"a broken symbolic link (to {tmp_path / 'elsewhere.png'})")]


def test_stdin_with_an_output_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="with stdin give an output file"):
        plan_jobs("deblur", ["-"], str(tmp_path / "new_folder") + "/")


def test_unreadable_folders_and_inputs_are_reported_and_the_rest_runs(tmp_path, monkeypatch):
    src = tmp_path / "shots"
    locked = src / "locked"
    locked.mkdir(parents=True)
    PILImage.new("RGB", (16, 16), (10, 20, 30)).save(src / "a.png")
    PILImage.new("RGB", (16, 16), (10, 20, 30)).save(locked / "b.png")
    _deny_under(monkeypatch, locked)
    out = tmp_path / "out"
    # a folder inside the tree that cannot be listed is named, not skipped without a word
    plan = plan_jobs("deblur", [str(src)], str(out))
    result, said, _ = run(plan)
    assert result.done == 1 and result.failed == 1
    assert f"{locked}: cannot read this folder: permission denied" in said
    # the same for the folder given itself: not "nothing to do"
    plan = plan_jobs("deblur", [str(locked)], str(out))
    assert not plan.todo and [j.display for j in plan.failed] == [str(locked)]
    # a file in it: one error line for it (not an internal error), the other input still runs
    plan = plan_jobs("deblur", [str(locked / "b.png"), str(src / "a.png")], str(tmp_path / "out2"))
    result, said, _ = run(plan)
    assert result.done == 1 and result.failed == 1
    assert f"{locked / 'b.png'}: permission denied" in said
    # an output in it is planned (the write or preflight says what is wrong), not a crash
    plan = plan_jobs("deblur", [str(src / "a.png")], str(locked / "sub" / "x.png"))
    assert [j.dest for j in plan.todo] == [str(locked / "sub" / "x.png")]


def test_a_symlinked_folder_is_named_as_given(tmp_path):
    real = tmp_path / "archive" / "2024-06-shoot"
    real.mkdir(parents=True)
    PILImage.new("RGB", (16, 16), (10, 20, 30)).save(real / "a.png")
    work = tmp_path / "work"
    work.mkdir()
    (work / "today").symlink_to(real, target_is_directory=True)
    # <folder>_<task>/ beside the folder the user named, not beside the link's target
    plan = plan_jobs("deblur", [str(work / "today")], None)
    assert [j.dest for j in plan.todo] == [str(work / "today_deblur" / "a.png")]
    other = tmp_path / "other"
    other.mkdir()
    PILImage.new("RGB", (16, 16), (10, 20, 30)).save(other / "b.png")
    plan = plan_jobs("deblur", [str(work / "today"), str(other)], str(tmp_path / "out"))
    assert sorted(j.dest for j in plan.todo) == [str(tmp_path / "out" / "other" / "b.png"),
                                                 str(tmp_path / "out" / "today" / "a.png")]


def test_stdin_to_an_existing_output_is_refused_before_any_work(tmp_path):
    out = tmp_path / "x.png"
    PILImage.new("RGB", (16, 16), (10, 20, 30)).save(out)
    plan = plan_jobs("deblur", ["-"], str(out))
    assert not plan.todo and "exists (pass --overwrite" in plan.failed[0].error  # as for a file input
    assert [j.dest for j in plan_jobs("deblur", ["-"], str(out), overwrite=True).todo] == [str(out)]
    assert [j.dest for j in plan_jobs("deblur", ["-"], str(tmp_path / "new.png")).todo] == [str(tmp_path / "new.png")]


def test_a_file_without_an_extension_is_named_from_its_content(tmp_path):
    from restorecli.batch import preflight

    scan = tmp_path / "scan"
    PILImage.new("RGB", (16, 16), (10, 20, 30)).save(scan, format="PNG")
    (tmp_path / "notes").write_text("not an image")
    # beside it, as <stem>_<task>.<ext> with the content's format's extension; the same inside -o DIR/
    plan = plan_jobs("deblur", [str(scan)], None)
    assert [j.dest for j in plan.todo] == [str(tmp_path / "scan_deblur.png")]
    preflight(plan, None)  # was refused here: an output name without an extension
    result, said, restorer = run(plan)
    assert result.done == 1 and restorer.calls == 1, said
    assert PILImage.open(tmp_path / "scan_deblur.png").format == "PNG"
    plan = plan_jobs("deblur", [str(scan)], str(tmp_path / "out") + os.sep)
    assert [j.dest for j in plan.todo] == [str(tmp_path / "out" / "scan.png")]
    # not an image: one error for it, before any work; a name the user gives is theirs
    plan = plan_jobs("deblur", [str(tmp_path / "notes")], None)
    assert not plan.todo and "not a recognised image" in plan.failed[0].error
    with pytest.raises(UsageError, match="extension"):
        preflight(plan_jobs("deblur", [str(scan)], str(tmp_path / "result")), None)


def test_sizes_a_format_cannot_hold_are_refused_before_the_network_runs(tmp_path, monkeypatch):
    from restorecli import imageio

    # the real limits (WebP 16383 px a side, JPEG 65535) made small, so a tiny image reaches them
    monkeypatch.setattr(imageio, "_WEBP_MAX_SIDE", 16)
    monkeypatch.setattr(imageio, "_JPEG_MAX_SIDE", 16)
    wide, small = tmp_path / "wide.png", tmp_path / "small.png"
    PILImage.new("RGB", (20, 8), (10, 20, 30)).save(wide)
    PILImage.new("RGB", (16, 8), (10, 20, 30)).save(small)
    plan = JobPlan(todo=[Job(str(wide), str(tmp_path / "a.webp"), "wide.png"),
                         Job(str(wide), str(tmp_path / "b.jpg"), "wide.png"),
                         Job(str(wide), str(tmp_path / "c.png"), "wide.png"),
                         Job(str(small), str(tmp_path / "d.webp"), "small.png")])
    result, said, restorer = run(plan)
    assert result.failed == 2 and result.done == 2 and restorer.calls == 2  # the two refused never ran
    errors = said.splitlines()
    assert "error: wide.png: WebP images are limited to 16 pixels a side and this one is 20x8: write PNG or TIFF" \
        in errors
    assert any(line.startswith("error: wide.png: JPEG images are limited to 16 pixels a side") for line in errors)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "d.webp", "small.png", "wide.png"]


def test_empty_stdin_is_a_usage_error_not_a_failed_image(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    with pytest.raises(UsageError, match="no image data on standard input"):
        run(plan_jobs("deblur", ["-"], None))


def test_a_file_that_is_not_an_image_is_reported_and_the_others_run(tmp_path):
    from restorecli.batch import preflight

    # `restore deblur shots/*`: the glob takes in notes and a GIF, whose names make no image output
    PILImage.new("RGB", (16, 16), (10, 20, 30)).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image")
    PILImage.new("RGB", (16, 16)).save(tmp_path / "anim.gif")
    PILImage.new("RGB", (16, 16), (10, 20, 30)).save(tmp_path / "shot.jfif", format="JPEG")
    inputs = [str(tmp_path / n) for n in ("a.png", "notes.txt", "anim.gif", "shot.jfif")]
    for output, made in ((None, ["a_deblur.png", "shot_deblur.jpg"]),
                         (str(tmp_path / "out"), ["out/a.png", "out/shot.jpg"])):
        plan = plan_jobs("deblur", inputs, output)
        assert sorted(os.path.relpath(j.dest, tmp_path) for j in plan.todo) == made
        preflight(plan, None)  # was a usage error for the whole run: "notes_deblur.txt: unsupported extension"
        result, said, restorer = run(plan)
        assert result.done == 2 and result.failed == 2 and restorer.calls == 2
        assert f"error: {tmp_path / 'notes.txt'}: not a recognised image file" in said
        assert f"error: {tmp_path / 'anim.gif'}: GIF images are not supported" in said


def test_an_output_never_replaces_another_input_of_the_run(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "a_deblur.png"  # b: a's output of an earlier run, say
    PILImage.new("RGB", (16, 16), (10, 20, 30)).save(a)
    PILImage.new("RGB", (16, 16), (40, 50, 60)).save(b)
    before = b.read_bytes()
    plan = plan_jobs("deblur", [str(a), str(b)], None, overwrite=True)
    result, said, restorer = run(plan, overwrite=True)
    assert result.done == 1 and result.failed == 1 and restorer.calls == 1
    assert f"error: {a}: its output {b} would replace the input {b}" in said
    assert b.read_bytes() == before  # b was restored from itself, untouched
    assert (tmp_path / "a_deblur_deblur.png").is_file()
    # the same through a folder: one input of it as another's output
    plan = plan_jobs("deblur", [str(a), str(tmp_path)], str(tmp_path), overwrite=True)
    assert all(j.dest not in (str(a), str(b)) for j in plan.todo)


def test_python_warnings_are_one_line_naming_the_file(tmp_path):
    import struct

    # EXIF whose Make tag points past the end of the block: Pillow warns while reading the JPEG
    ifd = struct.pack("<H", 1) + struct.pack("<HHII", 271, 2, 400, 64) + struct.pack("<I", 0)
    exif = b"Exif\0\0II*\0" + struct.pack("<I", 8) + ifd
    src = tmp_path / "camera.jpg"
    PILImage.new("RGB", (16, 16), (10, 20, 30)).save(src, exif=exif)
    result, said, _ = run(plan_jobs("deblur", [str(src)], str(tmp_path / "out.png")))
    assert result.done == 1
    lines = said.splitlines()
    assert lines and all(line.startswith(f"warning: {src}: ") for line in lines), said
    assert "Traceback" not in said and "warnings.warn" not in said and ".py:" not in said
    _, said, _ = run(plan_jobs("deblur", [str(src)], str(tmp_path / "q.png")), quiet=True)
    assert said == ""


def test_file_names_with_brackets_are_not_read_as_markup(tmp_path):
    from restorecli.batch import _Progress

    shots = tmp_path / "a["  # with the name below, the path holds "[/b]": a closing tag to rich
    shots.mkdir()
    (shots / "b].png").write_bytes(b"xx")
    (tmp_path / "shot [edited].png").write_bytes(b"xx")
    PILImage.new("RGB", (16, 16), (10, 20, 30)).save(tmp_path / "good [1].png")
    inputs = [str(shots / "b].png"), str(tmp_path / "shot [edited].png"), str(tmp_path / "good [1].png")]
    result, said, _ = run(plan_jobs("deblur", inputs, str(tmp_path / "out")))
    assert result.done == 1 and result.failed == 2  # was a MarkupError for the whole run
    assert f"error: {shots / 'b].png'}: not a recognised image file" in said
    assert f"error: {tmp_path / 'shot [edited].png'}: not a recognised" in said  # was "shot .png"
    # the progress shown on a terminal names the file the same way
    text = io.StringIO()
    progress = _Progress(Console(file=text, width=200, force_terminal=True), 1)
    progress.start_file("a[/b].png")
    progress.end_file()
    progress.close()
    assert "a[/b].png" in text.getvalue()


def test_reading_free_memory_leaves_no_file_open():
    import gc
    import warnings

    from restorecli.devices import _available_ram

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        assert _available_ram() > 0
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
