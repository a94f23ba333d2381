"""``medforget audit``, ``ledger`` and ``key``: check a checkpoint, its history and the secrets behind it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medforget.cli._common import (
    DataRoot,
    Device,
    Force,
    JsonOut,
    KeyFile,
    LedgerOpt,
    Manifest,
    Quiet,
    ShowIds,
    Verbose,
    app,
    build,
    command,
    data_paths,
    exit_for,
    print_json,
    show,
)
from medforget.config import AuditOptions, default
from medforget.errors import EXIT_VERDICT_FAILED, MedforgetError

A = AuditOptions


@app.command()
@command
def audit(
    checkpoint: Annotated[Path, typer.Argument(help="The checkpoint to audit (.safetensors)")],
    request: Annotated[
        str | None, typer.Option("--request", "-r", help="Check this deletion request (JSON file, or - for stdin)")
    ] = None,
    ledger: LedgerOpt = None,
    key_file: KeyFile = None,
    data_root: DataRoot = None,
    manifest: Manifest = None,
    mia: Annotated[bool, typer.Option("--mia/--no-mia", help="Membership inference (needs the data)")] = default(
        A, "mia"
    ),
    deep: Annotated[int, typer.Option("--deep", min=0, help="Also run LiRA with N shadow models")] = default(A, "deep"),
    shadow_arch: Annotated[str | None, typer.Option(help="Shadow model architecture")] = default(A, "shadow_arch"),
    shadow_epochs: Annotated[int | None, typer.Option(min=1, help="Shadow training epochs")] = default(
        A, "shadow_epochs"
    ),
    mia_tolerance: Annotated[
        float, typer.Option(help="Verdict: max excess of requested samples judged members over test samples")
    ] = default(A, "mia_tolerance"),
    alpha: Annotated[float, typer.Option(help="Verdict: significance a membership failure must reach")] = default(
        A, "alpha"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the attacks' splits and of the shadow models")] = default(
        A, "seed"
    ),
    html: Annotated[Path | None, typer.Option(help="Also write the audit as a self-contained HTML page")] = None,
    show_ids: ShowIds = False,
    device: Device = "auto",
    force: Force = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Audit a checkpoint: integrity, lineage through the ledger, a request's erasure, membership inference."""
    # size: a Typer command's parameters are its options; the body parses, calls audit() once, renders.
    from medforget.audit import audit as run_audit
    from medforget.fileio import check_outputs
    from medforget.keys import load_key
    from medforget.render.terminal import audit_report
    from medforget.request import read_request

    check_outputs({"--html": html}, {"the audited checkpoint": checkpoint, "the ledger": ledger}, force)
    req = read_request(request) if request is not None else None
    options = build(
        AuditOptions,
        mia=mia,
        deep=deep,
        shadow_arch=shadow_arch,
        shadow_epochs=shadow_epochs,
        mia_tolerance=mia_tolerance,
        alpha=alpha,
        seed=seed,
        device=device,
        show_ids=show_ids,
    )
    key = load_key(key_file)
    result = run_audit(checkpoint, options, key=key, ledger=ledger, request=req, data=data_paths(data_root, manifest))
    if html is not None:
        from medforget.fileio import commit
        from medforget.render.html import render_audit_html

        commit({html: render_audit_html(result).encode("utf-8")}, force)
    print_json(result) if json_out else show(audit_report(result))
    exit_for(result.verdict.status)


key_app = typer.Typer(help="Secret keys for hashing patient IDs and signing.", no_args_is_help=True)
app.add_typer(key_app, name="key")


@key_app.command("new")
@command
def key_new(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write it to this new file, readable by you only (0600)")
    ] = None,
) -> None:
    """Make a fresh 256-bit secret: printed, or written to a new owner-only file with --out (recommended)."""
    from medforget.keys import new_key, write_new_key

    if out is None:
        typer.echo(new_key())
    else:
        write_new_key(out)
        typer.echo(f"wrote a new key to {out} (mode 0600); keep it out of version control", err=True)


ledger_app = typer.Typer(help="The tamper-evident deletion ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("verify")
@command
def ledger_verify(
    path: Annotated[Path, typer.Argument(help="Ledger file (JSON Lines)")],
    key_file: KeyFile = None,
    json_out: JsonOut = False,
) -> None:
    """Check the hash chain (and, with the key, every entry's MAC); name any tampered entry. Exit 3 if broken."""
    from medforget.keys import load_key
    from medforget.ledger import verify
    from medforget.render.terminal import ledger_verification

    if not path.is_file():
        raise MedforgetError(f"ledger {path} not found")
    result = verify(path, load_key(key_file))
    print_json(result) if json_out else show(ledger_verification(result))
    if not result.ok:
        raise typer.Exit(EXIT_VERDICT_FAILED)


@ledger_app.command("show")
@command
def ledger_show(
    path: Annotated[Path, typer.Argument(help="Ledger file (JSON Lines)")],
    json_out: JsonOut = False,
) -> None:
    """List the ledger's entries (no patient ID is in it: only keyed hashes)."""
    from medforget.ledger import read_entries
    from medforget.render.terminal import ledger_entries

    if not path.is_file():
        raise MedforgetError(f"ledger {path} not found")
    entries = read_entries(path)
    if json_out:
        print_json([e.model_dump(mode="json") for e in entries])
        return
    show(ledger_entries(entries))


@ledger_app.command("record")
@command
def ledger_record(
    checkpoint: Annotated[Path, typer.Argument(help="A train or unlearn output the ledger does not record yet")],
    ledger: Annotated[Path, typer.Option("--ledger", help="The ledger to append to")],
    request: Annotated[
        str | None, typer.Option("--request", "-r", help="The deletion request it applied (unlearned checkpoints)")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="The run's JSON report, whose hash the entry records")] = None,
    data_root: DataRoot = None,
    manifest: Manifest = None,
    key_file: KeyFile = None,
    json_out: JsonOut = False,
) -> None:
    """Record a finished output whose run was interrupted before its ledger entry (audit reports such files)."""
    from medforget.keys import load_key
    from medforget.ledger.record import record_checkpoint
    from medforget.render.terminal import lines
    from medforget.request import read_request

    req = read_request(request) if request is not None else None
    entry = record_checkpoint(checkpoint, ledger, load_key(key_file), req, report, data_paths(data_root, manifest))
    print_json(entry) if json_out else show(lines([f"recorded {checkpoint} as entry {entry.seq} of {ledger}"]))
