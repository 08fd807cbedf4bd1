"""``restore weights list|download|verify|import``: the weights registry from the command line.

Results asked for (the table, downloaded paths, the imported entry) go to stdout; progress
and messages to stderr.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.markup import escape

from .app import app, err, fail, note, user_errors

weights_app = typer.Typer(
    help="List, download, verify and import weights (the weights.toml registry; see docs/weights.md).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(weights_app, name="weights")

Registries = Annotated[Optional[List[Path]], typer.Option(
    "--registry", help="An extra weights.toml read after the shipped and user ones (repeatable). "
                       "RESTORECLI_REGISTRY works too.", show_default=False)]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]


def _stdout_console():
    """Tables go to stdout; piped (no terminal, no COLUMNS), lines are not cut at 80 columns."""
    import os

    from rich.console import Console

    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(highlight=False, soft_wrap=False, width=200 if wide else None)


def _sources_line(reg) -> str:
    return escape("registries read: " + ", ".join(str(p) for p in reg.sources))


def _empty_hint() -> str:
    return ("no weights registered yet. Import the authors' IRNeXt checkpoint (see docs/weights.md): "
            "restore weights import FILE.pkl --arch irnext-deblur --name NAME --task deblur")


@weights_app.command("list", epilog="Example: [bold]restore weights list --task dehaze[/]")
@user_errors
def list_weights(
    task: Annotated[Optional[str], typer.Option("--task", help="Only this task's entries.")] = None,
    registry: Registries = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the entries as a JSON list (for scripts) instead of the table.")] = False,
    debug: Debug = False,
) -> None:
    """Registered weights: name, task, architecture, size, where the file is, default, metric."""
    from rich.table import Table

    from .. import TASKS
    from ..weights import load_registry
    from ..weights.hashing import format_size

    if task is not None and task not in TASKS:  # a typo must not list nothing and succeed
        raise fail(f"--task {task!r}: expected one of {', '.join(TASKS)}", 2)
    reg = load_registry(registry)
    entries = [e for e in reg if task is None or e.task == task]
    if as_json:
        _print_json(reg, entries)
        return
    if not entries:
        if len(reg) and task:
            err.print(f"no weights registered for task {task!r} ({len(reg)} for other tasks)", soft_wrap=True)
        else:
            err.print(_empty_hint(), soft_wrap=True)
        err.print(_sources_line(reg), style="dim", soft_wrap=True)
        return
    table = Table(title=None, show_lines=False)
    for col in ("name", "task", "arch", "size", "where", "default", "metric"):
        table.add_column(col, no_wrap=col != "metric",
                         justify="right" if col == "size" else "left")
    for e in sorted(entries, key=lambda e: (e.task, e.name)):
        where, size = _where_and_size(e)
        table.add_row(e.name, e.task, e.arch, format_size(size), where,
                      "*" if reg.is_default(e) else "", escape(e.metric_text()))
    _stdout_console().print(table)
    err.print(_sources_line(reg), style="dim", soft_wrap=True)


def _where_and_size(entry) -> tuple[str, int | None]:
    """Where the entry's file is (local, embedded, cache; remote or missing if nowhere here) and
    its size in bytes (the registry's figure for a file not here)."""
    from ..weights.resolve import entry_files

    files = entry_files(entry)
    if files:
        return files[0][0], files[0][1].stat().st_size
    return ("remote" if entry.repo_id else "missing"), entry.size


def _print_json(reg, entries) -> None:
    import json

    rows = [{"name": e.name, "task": e.task, "arch": e.arch, "where": where, "size_bytes": size,
             "default": reg.is_default(e), "ensemble": e.ensemble, "hub": e.hub_uri, "sha256": e.sha256,
             "metrics": [dict(m) for m in e.metrics], "defined_in": e.where_defined}
            for e in sorted(entries, key=lambda e: (e.task, e.name))
            for where, size in [_where_and_size(e)]]
    sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")


@weights_app.command(
    "download",
    epilog="Examples: [bold]restore weights download irnext-dehaze-its[/]   "
           "[bold]restore weights download --all[/]   "
           "[bold]restore weights download hf://my-lab/irnext-rain@v1/model.safetensors[/]",
)
@user_errors
def download_weights(
    names: Annotated[Optional[List[str]], typer.Argument(
        help="Registry names, hf://owner/repo[@revision]/file, or a Hub file URL.", show_default=False)] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every registry entry that lives on the Hub.")] = False,
    registry: Registries = None,
    debug: Debug = False,
) -> None:
    """Fetch weights into the Hugging Face cache (verified), so later runs work offline; print their paths."""
    from ..weights import HubRef, WeightsError, is_hub_address, load_registry, parse_hf_uri
    from ..weights.resolve import fetch_hub_file, locate_entry

    if not names and not all_:
        raise fail("name the weights to download (restore weights list shows them), or pass --all", 2)
    reg = load_registry(registry)
    targets: list[str] = list(names or [])
    if all_:
        targets += [e.name for e in reg if e.repo_id and e.name not in targets]
        if not targets:
            err.print("nothing to download: no registry entry names a Hub repo")
            return
    # Unknown names and malformed hf:// addresses are usage errors: stop before any download.
    plan = [(t, parse_hf_uri(t) if is_hub_address(t) else reg.get(t)) for t in targets]
    # an address the registry names is that entry (its sha256 applies, as when a run uses it)
    plan = [(t, (reg.find_hub(w.repo_id, w.filename, w.revision) or w) if isinstance(w, HubRef) else w)
            for t, w in plan]
    failures = 0
    for target, what in plan:
        try:
            if isinstance(what, HubRef):
                got = fetch_hub_file(what)
                path, source, sha, checked = got.path, got.source, got.sha256, got.checked
                if got.note:
                    note(got.note)
            else:
                path, source = locate_entry(what)
                sha, checked = what.sha256, True
        except WeightsError as e:
            failures += 1
            err.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
            continue
        how = {"download": "downloaded", "cache": "already cached", "embedded": "embedded in the package",
               "local": "local file"}[source]
        status = "ok" if checked else "(the Hub's hash is not visible in this cache: not checked)"
        err.print(escape(f"{target}: {how}, sha256 {sha[:12]}… {status}"), soft_wrap=True)
        sys.stdout.write(f"{path}\n")
        sys.stdout.flush()
    if failures:
        raise typer.Exit(1)


@weights_app.command("verify", epilog="Example: [bold]restore weights verify[/]")
@user_errors
def verify_weights(
    names: Annotated[Optional[List[str]], typer.Argument(
        help="Registry names (default: every entry).", show_default=False)] = None,
    registry: Registries = None,
    debug: Debug = False,
) -> None:
    """Re-hash every embedded, local or cached registered file; exit 1 on any mismatch."""
    from rich.table import Table

    from ..weights import load_registry, sha256_file
    from ..weights.resolve import entry_files

    reg = load_registry(registry)
    entries = [reg.get(n) for n in names] if names else list(reg)
    table = Table()
    for col in ("name", "where", "status", "file"):
        table.add_column(col, no_wrap=col != "file", overflow="fold")
    bad: list[str] = []
    checked = 0
    for e in entries:
        present = entry_files(e)
        kinds = {k for k, _ in present}
        for kind, path in (("embedded", e.embedded_path), ("local", e.local_path)):
            if path is not None and kind not in kinds:
                table.add_row(e.name, kind, "[red]MISSING[/]", escape(str(path)))
                bad.append(f"{e.name} ({kind} file missing)")
        for kind, path in present:
            checked += 1
            if kind == "outdated":  # intact, but of the commit the branch has moved to: not a fault
                table.add_row(e.name, "cached", f"[yellow]outdated[/]: the Hub's {escape(e.revision)} has moved; "
                              f"`restore weights download {escape(e.name)}` fetches the registered file",
                              escape(str(path)))
                continue
            actual = sha256_file(path)
            if actual == e.sha256:
                table.add_row(e.name, kind, "[green]ok[/]", escape(str(path)))
            else:
                table.add_row(e.name, kind, "[red]MISMATCH[/]", escape(f"{path} (sha256 {actual})"))
                bad.append(f"{e.name} ({kind}: sha256 mismatch)")
        if not present and e.repo_id and not e.embedded and not e.path:
            table.add_row(e.name, "remote", "[dim]not downloaded[/]", escape(e.hub_uri or ""))
    if not entries:
        err.print(_empty_hint(), soft_wrap=True)
        return
    _stdout_console().print(table)
    if bad:
        raise fail(f"{len(bad)} problem(s): {'; '.join(bad)}. A mismatched file is never used; "
                   "delete it and run `restore weights download NAME` (or fix the registry's sha256)")
    err.print(f"{checked} file(s) verified" if checked else
              "nothing to verify yet: no registered file is embedded, local or downloaded", soft_wrap=True)


@weights_app.command(
    "import",
    epilog="Example: [bold]restore weights import IRNeXt-ITS.pkl --arch irnext-dehaze "
           "--name irnext-dehaze-its --task dehaze[/]   (appends to ~/.config/restorecli/weights.toml; "
           "then: [bold]restore dehaze --weights irnext-dehaze-its hazy.jpg[/])",
)
@user_errors
def import_weights(
    file: Annotated[Path, typer.Argument(help="A checkpoint: the authors' .pkl, a .pth/.pt, or safetensors.",
                                         show_default=False)],
    arch: Annotated[str, typer.Option("--arch", help="The architecture it must load into strictly "
                                                      "(irnext-deblur, irnext-dehaze, ...).", show_default=False)],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="The safetensors to write. Default: beside FILE; with --name, "
                               "$XDG_DATA_HOME/restorecli/weights/NAME.safetensors.")] = None,
    name: Annotated[Optional[str], typer.Option(
        "--name", help="Also add the entry, under this name, to the user registry (or --registry).")] = None,
    task: Annotated[Optional[str], typer.Option("--task", help="The entry's task (default: the "
                                                               "architecture's usual one; needed for those "
                                                               "trained per task, unet-s and clginet).")] = None,
    registry: Annotated[Optional[Path], typer.Option(
        "--registry", help="With --name: the registry file to add the entry to "
                           "(default: ~/.config/restorecli/weights.toml).")] = None,
    default: Annotated[bool, typer.Option("--default", help="Make the entry its task's default.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")] = False,
    debug: Debug = False,
) -> None:
    """Check a checkpoint loads strictly, write it as fp32 safetensors, print a \\[\\[weights]] entry.

    The entry (TOML, with the new file's sha256) goes to stdout; with --name it is also added to a registry, after which --weights NAME works.
    """
    from ..weights.errors import RegistryError
    from ..weights.hashing import format_size
    from ..weights.importer import import_checkpoint
    from ..weights.registry import add_entry_to_file, entry_to_toml, parse_registry, user_registry_path

    if (registry or default) and not name:
        raise fail("--registry and --default need --name (the entry's name)", 2)
    target = (registry or user_registry_path()) if name else None
    if target is not None and target.is_file():  # fail before the work, not after it
        from ..models import get_spec
        from ..weights.importer import guess_task

        entry_task = task or guess_task(get_spec(arch, task).name)
        for e in parse_registry(target.read_text(encoding="utf-8"), target):
            if e.name == name:
                raise RegistryError(f"{target}:{e.line or '?'}: there is already an entry named {name!r}; "
                                    "choose another --name or edit the file")
            if default and e.default and e.task == entry_task:
                raise RegistryError(f"{target}:{e.line or '?'}: {e.name!r} is already the default for "
                                    f"{entry_task!r} in this file; drop --default or edit the file")

    result = import_checkpoint(file, arch, output, task=task, name=name, overwrite=overwrite)
    fields = dict(result.fields)
    if default:
        fields["default"] = True
    comments = [
        f"Imported by `restore weights import` from {result.source.name} (sha256 {result.source_sha256}).",
        "To publish it: upload the file to a Hugging Face model repo, then replace `path` with",
        f'repo_id = "your-lab/your-repo", filename = "{result.path.name}", revision = "<commit sha>".',
    ]
    err.print(escape(f"{result.source} loads strictly into {result.arch}: wrote {result.path} "
                     f"({format_size(result.size)}, fp32 safetensors)"), soft_wrap=True)
    err.print(f"sha256 {result.sha256}", soft_wrap=True)
    if target is not None:
        add_entry_to_file(target, fields, comments)
        err.print(escape(f"added {fields['name']!r} to {target}: use it with --weights {fields['name']}"),
                  soft_wrap=True)
    sys.stdout.write(entry_to_toml(fields, comments))
    sys.stdout.flush()
