"""``medforget unlearn`` and ``request``: honour a deletion request, or look at one first."""

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
    parse_params,
    print_json,
    show,
)
from medforget.config import Thresholds, UnlearnSettings, default

U = UnlearnSettings
TH = Thresholds


@app.command()
@command
def unlearn(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="The trained model (.safetensors)")],
    request: Annotated[str, typer.Option("--request", "-r", help="Deletion request JSON file, or - for stdin")],
    method: Annotated[
        str, typer.Option("--method", "-m", help="Unlearning method (see 'medforget methods')")
    ] = default(U, "method"),
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Unlearned checkpoint [default: <input>.<method>.safetensors]")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="JSON report [default: <out>.report.json]")] = None,
    html: Annotated[
        Path | None, typer.Option(help="Also write a self-contained HTML report for non-ML readers")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Method parameter key=value; repeatable")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Method parameters from a TOML/JSON file")] = None,
    preset: Annotated[
        str, typer.Option(help="Named parameter set under --param: fast (default), published (the paper's), ...")
    ] = default(U, "preset"),
    recalibrate: Annotated[
        bool,
        typer.Option(
            "--recalibrate/--no-recalibrate",
            help="Reset the threshold on validation to the original's sensitivity (retrains alike)",
        ),
    ] = default(U, "recalibrate"),
    baseline: Annotated[
        str, typer.Option(help="retrain (K cached retrains), calibrated, none, or a retrained checkpoint path")
    ] = default(U, "baseline"),
    retrains: Annotated[
        int, typer.Option(min=1, help="K: retrains to compare with (their spread is the noise floor)")
    ] = default(U, "retrains"),
    workers: Annotated[
        int, typer.Option(min=0, help="Processes training retrains in parallel on CPU (0: one per core)")
    ] = default(U, "workers"),
    calibration: Annotated[
        Path | None, typer.Option(help="With --baseline calibrated: the file written by 'medforget calibrate'")
    ] = None,
    data_root: DataRoot = None,
    manifest: Manifest = None,
    seed: Annotated[int, typer.Option(help="Seed of the unlearning method")] = default(U, "seed"),
    fn_cost: Annotated[float, typer.Option(help="Clinical cost of a missed disease")] = default(U, "fn_cost"),
    fp_cost: Annotated[float, typer.Option(help="Clinical cost of a false alarm")] = default(U, "fp_cost"),
    forget_tolerance: Annotated[
        float, typer.Option(help="Verdict: max |forget accuracy (minus unseen images of the same classes) - retrains'|")
    ] = default(TH, "forget_accuracy_tolerance"),
    evidence_tolerance: Annotated[
        float, typer.Option(help="Verdict: max |per-sample z difference| (retrain SDs)")
    ] = default(TH, "evidence_tolerance"),
    forget_auc_tolerance: Annotated[
        float, typer.Option(help="Calibrated verdict: max |forget-vs-unseen AUC - retrains'|")
    ] = default(TH, "forget_auc_tolerance"),
    max_auroc_drop: Annotated[float, typer.Option(help="Verdict: max test AUROC below the retrains")] = default(
        TH, "max_auroc_drop"
    ),
    mia_tolerance: Annotated[float, typer.Option(help="Verdict: max |MIA efficacy - retrain's|")] = default(
        TH, "mia_tolerance"
    ),
    max_test_drop: Annotated[float, typer.Option(help="Verdict: max test accuracy below retrain")] = default(
        TH, "max_test_accuracy_drop"
    ),
    max_fnr_increase: Annotated[float, typer.Option(help="Verdict: max test FNR above retrain")] = default(
        TH, "max_fnr_increase"
    ),
    alpha: Annotated[
        float, typer.Option(help="Verdict: largest chance of failing an exact retrain (shared among the checks)")
    ] = default(TH, "alpha"),
    allow_class_removal: Annotated[
        bool, typer.Option("--allow-class-removal", help="Allow removing a whole class")
    ] = False,
    show_ids: ShowIds = False,
    accept_unsigned: Annotated[
        bool, typer.Option("--accept-unsigned", help="With a key, use an unsigned input (recorded in the output)")
    ] = False,
    key_file: KeyFile = None,
    ledger: LedgerOpt = None,
    device: Device = "auto",
    force: Force = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Remove the patients in a deletion request from a model, and verify against retraining."""
    # size: a Typer command's parameters are its options; the body parses, calls unlearn() once, renders.
    from medforget.keys import load_key
    from medforget.methods import get_method
    from medforget.render.terminal import lines, unlearn_report
    from medforget.request import read_request
    from medforget.unlearn import Outputs
    from medforget.unlearn import unlearn as run_unlearn

    get_method(method)  # an unknown name is refused before it becomes part of a file name
    req = read_request(request)
    out = out or checkpoint.with_name(f"{checkpoint.stem}.{method}.safetensors")
    report = report or out.with_suffix(".report.json")
    thresholds = build(
        Thresholds,
        forget_accuracy_tolerance=forget_tolerance,
        evidence_tolerance=evidence_tolerance,
        forget_auc_tolerance=forget_auc_tolerance,
        max_auroc_drop=max_auroc_drop,
        mia_tolerance=mia_tolerance,
        max_test_accuracy_drop=max_test_drop,
        max_fnr_increase=max_fnr_increase,
        alpha=alpha,
    )
    params, tuning = parse_params(param, config, method)
    settings = build(
        UnlearnSettings,
        method=method,
        params=params,
        preset=preset,
        recalibrate=recalibrate,
        seed=seed,
        baseline=baseline,
        retrains=retrains,
        workers=workers,
        calibration=calibration,
        fn_cost=fn_cost,
        fp_cost=fp_cost,
        thresholds=thresholds,
        allow_class_removal=allow_class_removal,
        show_ids=show_ids,
        accept_unsigned=accept_unsigned,
        device=device,
    )
    outputs = Outputs(checkpoint=out, report=report, html=html, ledger=ledger, force=force)
    result = run_unlearn(
        checkpoint, req, settings, outputs, data=data_paths(data_root, manifest), key=load_key(key_file), tuning=tuning
    )
    if json_out:
        print_json(result)
    else:
        show(unlearn_report(result))
        show(lines([f"wrote {out}, {report}" + (f" and {html}" if html else "")]))
    exit_for(result.verdict.status)


request_app = typer.Typer(help="Inspect deletion requests before applying them.", no_args_is_help=True)
app.add_typer(request_app, name="request")


@request_app.command("check")
@command
def request_check(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="The model the request is for")],
    request: Annotated[str, typer.Option("--request", "-r", help="Deletion request JSON file, or - for stdin")],
    data_root: DataRoot = None,
    manifest: Manifest = None,
    allow_class_removal: Annotated[bool, typer.Option("--allow-class-removal")] = False,
    show_ids: ShowIds = False,
    key_file: KeyFile = None,
    json_out: JsonOut = False,
) -> None:
    """Show what a request would forget (by class and split) without changing anything."""
    from medforget.keys import load_key
    from medforget.render.terminal import request_check as render_check
    from medforget.request import preview, read_request
    from medforget.session import open_task

    req = read_request(request)
    data, key = data_paths(data_root, manifest), load_key(key_file)
    task = open_task(checkpoint, req, data, "cpu", key, allow_class_removal, show_ids)
    print_json(preview(task.resolved, task.dataset.name)) if json_out else show(
        render_check(task.resolved, task.dataset.name)
    )


@request_app.command("schema")
@command
def request_schema_cmd() -> None:
    """Print the JSON Schema of a deletion request."""
    from medforget.request import request_schema

    print_json(request_schema())
