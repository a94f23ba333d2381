"""The ``medforget`` command line: a thin Typer layer that parses, calls one library function, renders.

Conventions every command keeps, because the tool lives in shell automation:
results on stdout (``--json`` for programs), progress and logs on stderr, no prompts;
exit 0 success, 1 internal error, 2 bad input or missing data (one clear line, nothing
written), 3 a verification verdict failed (outputs still written).
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from medforget import __version__
from medforget.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_VERDICT_FAILED, MedforgetError

app = typer.Typer(
    name="medforget",
    help="Honour patient deletion requests in medical-imaging classifiers: train, unlearn, verify, audit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output is read by programs and people alike: never truncate hashes to a terminal's width.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def command(fn: F) -> F:
    """Map library exceptions to exit codes: bad input is one line on stderr, bugs keep their traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except MedforgetError as exc:
            typer.echo(f"error: {exc}", err=True)  # one plain line, never wrapped
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted; no partial output was left behind", err=True)
            raise typer.Exit(130) from None
        except Exception:
            err.print(traceback.format_exc(), markup=False, highlight=False)
            err.print("[bold red]internal error[/] (a bug in medforget; please report it with the traceback above)")
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper  # type: ignore[return-value]


def print_json(obj: BaseModel | dict[str, Any] | list[Any]) -> None:
    text = obj.model_dump_json(indent=2) if isinstance(obj, BaseModel) else json.dumps(obj, indent=2)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


# ----------------------------------------------------------------------------- shared options

DataRoot = Annotated[
    Path | None,
    typer.Option(
        "--data-root", help="Folder with the MedMNIST .npz files (else $MEDFORGET_DATA_ROOT, else ~/.medmnist)"
    ),
]
Manifest = Annotated[
    Path | None,
    typer.Option(help="CSV with sample_id,patient_id[,attributes] (MedMNIST) or sample_id,path,label,split,patient_id"),
]
Device = Annotated[str, typer.Option(help="auto (CUDA if present), cpu or cuda")]
Force = Annotated[bool, typer.Option("--force", help="Replace an existing output file")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout and nothing else")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars")]
KeyFile = Annotated[
    Path | None, typer.Option("--key-file", help="Secret for keyed ID hashes and signatures (else $MEDFORGET_KEY)")
]
LedgerOpt = Annotated[
    Path | None,
    typer.Option(
        "--ledger", help="Tamper-evident deletion ledger (JSON Lines): train/unlearn append to it, audit reads it"
    ),
]


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"medforget {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version")
    ] = False,
) -> None:
    """medforget: remove patients from a trained medical-imaging model, prove it, keep it clinically safe."""


# ----------------------------------------------------------------------------- train


@app.command()
@command
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write (.safetensors)")],
    dataset: Annotated[
        str, typer.Option(help="MedMNIST flag (breastmnist, pneumoniamnist, ...) or 'csv'")
    ] = "breastmnist",
    size: Annotated[int, typer.Option(help="Image size: 28, 64, 128 or 224")] = 28,
    data_root: DataRoot = None,
    manifest: Manifest = None,
    positive: Annotated[
        list[str] | None, typer.Option(help="Disease class(es) by name or index; repeatable (default per dataset)")
    ] = None,
    binary: Annotated[
        bool, typer.Option("--binary", help="Collapse a multi-class dataset to positive vs negative")
    ] = False,
    classes: Annotated[
        str | None, typer.Option(help="CSV datasets: class names in label order, comma-separated")
    ] = None,
    arch: Annotated[str, typer.Option(help="resnet18, resnet50 (or resnet10 for quick runs)")] = "resnet18",
    epochs: Annotated[int, typer.Option(min=1)] = 20,
    batch_size: Annotated[int, typer.Option(min=1)] = 128,
    lr: Annotated[float, typer.Option(min=0.0)] = 1e-3,
    optimizer: Annotated[str, typer.Option(help="adam or sgd")] = "adam",
    schedule: Annotated[str, typer.Option(help="cosine, multistep or constant")] = "cosine",
    weight_decay: Annotated[float, typer.Option(min=0.0)] = 0.0,
    seed: int = 0,
    ledger: LedgerOpt = None,
    key_file: KeyFile = None,
    device: Device = "auto",
    force: Force = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Train a classifier and write a checkpoint that records exactly what it was trained on."""
    from pydantic import ValidationError

    from medforget.data import load_dataset
    from medforget.engine import TrainConfig
    from medforget.train import train as run_train

    try:
        cfg = TrainConfig(
            arch=arch,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,  # type: ignore[arg-type]
            schedule=schedule,
            weight_decay=weight_decay,
            seed=seed,  # type: ignore[arg-type]
        )
    except ValidationError as exc:
        e = exc.errors()[0]
        raise MedforgetError(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}") from None
    from medforget.models import list_models

    if arch not in list_models():
        raise MedforgetError(f"unknown architecture {arch!r}; available: {', '.join(list_models())}")
    ds = load_dataset(dataset, size, data_root, positive, binary, manifest, classes.split(",") if classes else None)
    from medforget.keys import load_key

    summary = run_train(
        ds, cfg, out, device=device, force=force, show_progress=not quiet, key=load_key(key_file), ledger=ledger
    )
    if json_out:
        print_json(summary)
        return
    console.print(
        f"[bold green]saved[/] {summary.checkpoint}  ({summary.arch}, {summary.dataset}, "
        f"best epoch {summary.best_epoch}/{summary.epochs}, {summary.seconds:.0f} s, "
        f"{summary.images_per_second:.0f} img/s)"
    )
    table = Table(title="held-out results")
    for col in ("split", "n", "accuracy", "missed disease (FNR)", "false alarms (FPR)"):
        table.add_column(col, justify="right" if col != "split" else "left")
    for name, m in (("val", summary.val), ("test", summary.test)):
        table.add_row(name, str(m.n), _pct(m.accuracy), _pct(m.fnr), _pct(m.fpr))
    console.print(table)


# ----------------------------------------------------------------------------- info


@app.command()
@command
def info(
    checkpoint: Annotated[Path, typer.Argument(help="A medforget .safetensors checkpoint")],
    json_out: JsonOut = False,
) -> None:
    """Show what a checkpoint is: model, data, training config, lineage and forgotten samples."""
    from medforget.checkpoint import load_checkpoint

    ck = load_checkpoint(checkpoint)
    m = ck.meta
    if json_out:
        print_json({"path": ck.path, "sha256": ck.sha256, "metadata": m.model_dump(mode="json")})
        return
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    pos = ", ".join(m.classes[i] for i in m.positive)
    cfg = m.train_config
    rows = [
        ("file", ck.path),
        ("sha256", ck.sha256),
        ("integrity", "ok (weights and metadata hashes verified)"),
        ("created", f"{m.created_at} by medforget {m.medforget_version}"),
        ("model", f"{m.arch}, {m.in_channels}x{m.image_size}x{m.image_size} input, {m.num_classes} classes"),
        ("classes", ", ".join(f"{i}={c}" for i, c in enumerate(m.classes))),
        ("disease (positive)", pos),
        (
            "dataset",
            f"{m.dataset.spec.name} ({m.dataset.spec.source}, {m.dataset.spec.size} px), "
            f"{m.dataset.n_train} training samples",
        ),
        ("data fingerprint", m.dataset.fingerprint),
        (
            "training",
            f"{cfg.epochs} epochs, {cfg.optimizer} lr {cfg.lr}, batch {cfg.batch_size}, "
            f"{cfg.schedule}, seed {cfg.seed}",
        ),
        ("metrics", ", ".join(f"{k} {v:.4f}" for k, v in m.metrics.items()) or "none"),
        ("parent (lineage)", m.parent_sha256 or "none (original training run)"),
        (
            "forgotten",
            f"{len(m.forgotten.sample_hashes)} samples, {len(m.forgotten.patient_hashes)} patients"
            + (
                f" (keyed hashes, key id {m.forgotten.key_id})"
                if m.forgotten.key_id
                else " (salted hashes)"
                if m.forgotten.salt
                else ""
            ),
        ),
    ]
    if m.unlearning:
        u = m.unlearning
        rows.append(
            (
                "unlearning",
                f"{u.method} for request {u.request_id or '-'}, " + ", ".join(f"{k}={v}" for k, v in u.params.items()),
            )
        )
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)


# ----------------------------------------------------------------------------- unlearn


def parse_params(pairs: list[str] | None, config: Path | None, method: str) -> tuple[dict[str, Any], Any]:
    """``--config`` file (TOML or JSON) first, then ``--param key=value`` overrides on top.

    Returns the parameters and the config's tuning record (``None`` unless written by ``medforget tune``).
    """
    from medforget.tune import read_method_config

    params: dict[str, Any] = {}
    tuning = None
    if config is not None:
        cfg = read_method_config(config, method)
        params.update(cfg.params)
        tuning = cfg.tuning
    for pair in pairs or []:
        k, sep, v = pair.partition("=")
        if not sep or not k.strip():
            raise MedforgetError(f"--param expects key=value, got {pair!r}")
        try:
            params[k.strip()] = json.loads(v)
        except ValueError:
            params[k.strip()] = v
    return params, tuning


@app.command()
@command
def unlearn(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="The trained model (.safetensors)")],
    request: Annotated[str, typer.Option("--request", "-r", help="Deletion request JSON file, or - for stdin")],
    method: Annotated[str, typer.Option("--method", "-m", help="Unlearning method (see 'medforget methods')")] = (
        "salun-cra"
    ),
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
    baseline: Annotated[str, typer.Option(help="retrain (cached), none, or a retrained checkpoint path")] = "retrain",
    data_root: DataRoot = None,
    manifest: Manifest = None,
    seed: Annotated[int, typer.Option(help="Seed of the unlearning method")] = 0,
    fn_cost: Annotated[float, typer.Option(help="Clinical cost of a missed disease (false negative)")] = 5.0,
    fp_cost: Annotated[float, typer.Option(help="Clinical cost of a false alarm (false positive)")] = 1.0,
    forget_tolerance: Annotated[float, typer.Option(help="Verdict: max |forget accuracy - retrain's|")] = 0.05,
    mia_tolerance: Annotated[float, typer.Option(help="Verdict: max |MIA efficacy - retrain's|")] = 0.10,
    max_test_drop: Annotated[float, typer.Option(help="Verdict: max test accuracy below retrain")] = 0.03,
    max_fnr_increase: Annotated[float, typer.Option(help="Verdict: max test FNR above retrain")] = 0.05,
    allow_class_removal: Annotated[
        bool, typer.Option("--allow-class-removal", help="Allow removing a whole class")
    ] = False,
    key_file: KeyFile = None,
    ledger: LedgerOpt = None,
    device: Device = "auto",
    force: Force = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Remove the patients in a deletion request from a model, and verify against retraining."""
    from medforget.keys import load_key
    from medforget.report import Thresholds, render
    from medforget.request import read_request
    from medforget.unlearn import unlearn as run_unlearn

    req = read_request(request)
    out = out or checkpoint.with_name(f"{checkpoint.stem}.{method}.safetensors")
    report = report or out.with_suffix(".report.json")
    try:
        thresholds = Thresholds(
            forget_accuracy_tolerance=forget_tolerance,
            mia_tolerance=mia_tolerance,
            max_test_accuracy_drop=max_test_drop,
            max_fnr_increase=max_fnr_increase,
        )
    except ValueError as exc:
        raise MedforgetError(f"thresholds must be non-negative: {exc}") from None
    params, tuning = parse_params(param, config, method)
    result = run_unlearn(
        checkpoint,
        req,
        method,
        out,
        params=params,
        tuning=tuning,
        report_path=report,
        baseline=baseline,
        data_root=data_root,
        manifest=manifest,
        device=device,
        seed=seed,
        fn_cost=fn_cost,
        fp_cost=fp_cost,
        thresholds=thresholds,
        force=force,
        key=load_key(key_file),
        allow_class_removal=allow_class_removal,
        show_progress=not quiet,
        ledger=ledger,
        html_path=html,
    )
    if json_out:
        print_json(result)
    else:
        console.print(render(result))
        console.print(f"wrote {out}, {report}" + (f" and {html}" if html else ""))
    if result.verdict.status == "fail":
        raise typer.Exit(EXIT_VERDICT_FAILED)


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
    mia: Annotated[
        bool, typer.Option("--mia/--no-mia", help="Membership inference on the requested samples (needs the data)")
    ] = True,
    deep: Annotated[
        int, typer.Option("--deep", min=0, help="Also run LiRA with N shadow models (N >= 2; trains N models)")
    ] = 0,
    shadow_arch: Annotated[
        str | None, typer.Option(help="Shadow model architecture (default: the checkpoint's)")
    ] = None,
    shadow_epochs: Annotated[
        int | None, typer.Option(min=1, help="Shadow training epochs (default: the checkpoint's recipe)")
    ] = None,
    mia_tolerance: Annotated[
        float, typer.Option(help="Verdict: max excess of requested samples judged members over test samples")
    ] = 0.10,
    alpha: Annotated[float, typer.Option(help="Verdict: significance level a membership failure must reach")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of the attacks' splits and of the shadow models")] = 0,
    html: Annotated[Path | None, typer.Option(help="Also write the audit as a self-contained HTML page")] = None,
    device: Device = "auto",
    force: Force = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Audit a checkpoint: integrity, lineage through the ledger, a request's erasure, membership inference."""
    from medforget.audit import audit as run_audit
    from medforget.audit import render
    from medforget.fileio import check_writable
    from medforget.keys import load_key
    from medforget.request import read_request

    if html is not None:
        check_writable(html, force)
    req = read_request(request) if request is not None else None
    result = run_audit(
        checkpoint,
        key=load_key(key_file),
        ledger=ledger,
        request=req,
        data_root=data_root,
        manifest=manifest,
        mia=mia,
        deep=deep,
        shadow_arch=shadow_arch,
        shadow_epochs=shadow_epochs,
        mia_tolerance=mia_tolerance,
        alpha=alpha,
        seed=seed,
        device=device,
        show_progress=not quiet,
    )
    if html is not None:
        from medforget.html import write_audit_html

        write_audit_html(result, html, force)
    if json_out:
        print_json(result)
    else:
        console.print(render(result))
    if result.verdict.status == "fail":
        raise typer.Exit(EXIT_VERDICT_FAILED)


@app.command()
@command
def study(
    config: Annotated[Path, typer.Argument(help="Study config (TOML or YAML), e.g. studies/breastmnist.toml")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder [default: studies/out/<study name>]")
    ] = None,
    data_root: DataRoot = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write the PNG plots")] = True,
    report_only: Annotated[
        bool, typer.Option("--report-only", help="Run nothing: summarise the runs finished so far, list the rest")
    ] = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Run a grid of unlearning experiments (datasets x forget sets x methods x seeds); resumes where it stopped."""
    from medforget.study import load_study_config, read_results, run_study, summarise

    cfg = load_study_config(config)
    result = run_study(cfg, out, data_root=data_root, show_progress=not quiet, plots=plots, report_only=report_only)
    if json_out:
        print_json(result)
        return
    header, body = summarise(read_results(result.results_csv))
    table = Table(title=f"study {result.name}: mean ± sd over seeds (%)", show_lines=False)
    for h in header:
        table.add_column(h, justify="left" if h in ("dataset", "forget set", "method") else "right")
    for row in body:
        table.add_row(*row)
    console.print(table)
    for f in result.findings:
        console.print(f"• {f}")
    t = result.timings
    console.print(
        f"{t.runs_done} runs done, {t.runs_reused} reused"
        + (f", {t.runs_missing} not finished yet (left out)" if t.runs_missing else "")
        + f"; {t.wall_seconds:.0f} s, {100 * t.overhead_fraction:.1f}% outside forward/backward passes"
    )
    console.print(f"wrote {result.results_csv}, {result.summary_md} and {len(result.plots)} plots")


@app.command()
@command
def tune(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="The trained model (.safetensors)")],
    method: Annotated[str, typer.Option("--method", "-m", help="Method to tune")] = "salun-cra",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Tuned config [default: <method>.tuned.json]")] = None,
    trials: Annotated[int, typer.Option(min=1, help="Optuna trials (each one unlearning run)")] = 20,
    fraction: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Proxy forget set: share of training samples")
    ] = 0.2,
    design: Annotated[str, typer.Option(help="Proxy forget set: random, positive-heavy or positive-only")] = "random",
    fnr_slack: Annotated[
        float, typer.Option(min=0.0, help="Constraint: validation FNR at most this far above the proxy retrain's")
    ] = 0.01,
    search: Annotated[
        list[str] | None, typer.Option("--search", help="Parameter to search (repeatable; default: all tunable)")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Fixed parameter key=value; repeatable")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the proxy draw, the sampler and the method")] = 0,
    data_root: DataRoot = None,
    manifest: Manifest = None,
    key_file: KeyFile = None,
    device: Device = "auto",
    force: Force = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Tune a method's parameters once on a proxy request; 'unlearn --config' reuses the result."""
    from medforget.keys import load_key
    from medforget.tune import tune as run_tune

    out = out or Path(f"{method}.tuned.json")
    fixed, _ = parse_params(param, None, method)
    result = run_tune(
        checkpoint,
        method,
        out,
        trials=trials,
        fraction=fraction,
        design=design,
        fnr_slack=fnr_slack,
        params=search,
        fixed=fixed,
        seed=seed,
        data_root=data_root,
        manifest=manifest,
        device=device,
        force=force,
        key=load_key(key_file),
        show_progress=not quiet,
    )
    if json_out:
        print_json(result)
        return
    t = result.tuning
    assert t is not None
    console.print(f"[bold]{method}[/] tuned over {t.trials} trials ({t.feasible_trials} met the FNR constraint)")
    for k, v in result.params.items():
        console.print(f"  {k} = {v}")
    pays = f"pays for itself after {t.break_even_requests:.1f} requests" if t.break_even_requests else "never pays"
    console.print(
        f"proxy average gap {100 * t.best_average_gap:.2f} pts, FNR vs retrain "
        f"{_pct(t.best_fnr_increase) if t.best_fnr_increase is not None else 'n/a'}; "
        f"tuning took {t.tuning_seconds:.0f} s and {pays}"
    )
    console.print(f"wrote {out}; use it with: medforget unlearn --config {out} ...")


@app.command()
@command
def methods(json_out: JsonOut = False) -> None:
    """List the unlearning methods with their parameters and defaults."""
    from medforget.methods import get_method, list_methods

    specs = [get_method(n) for n in list_methods()]
    if json_out:
        print_json({m.name: {"summary": m.summary, "params": m.params().model_dump()} for m in specs})
        return
    t = Table("method", "what it does", "parameters (defaults)")
    for m in specs:
        t.add_row(m.name, m.summary, ", ".join(f"{k}={v}" for k, v in m.params().model_dump().items()))
    console.print(t)


# ----------------------------------------------------------------------------- request

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
    key_file: KeyFile = None,
    json_out: JsonOut = False,
) -> None:
    """Show what a request would forget (by class and split) without changing anything."""
    from medforget.checkpoint import check_dataset, load_checkpoint
    from medforget.data import load_from_spec
    from medforget.keys import load_key
    from medforget.request import read_request, resolve

    req = read_request(request)
    key = load_key(key_file)
    ck = load_checkpoint(checkpoint)
    ds = load_from_spec(ck.meta.dataset.spec, data_root, manifest)
    check_dataset(ck, ds)
    res = resolve(req, ds, ck.meta.forgotten, key, allow_class_removal)
    summary = {
        "request_id": req.request_id,
        "dataset": ds.name,
        "n_samples": len(res.sample_ids),
        "n_patients": len(res.patient_ids),
        "n_retained": len(res.retain_rows),
        "previously_forgotten": res.previously_forgotten,
        "counts": [c.model_dump() for c in res.counts],
        "warnings": res.warnings,
    }
    if json_out:
        print_json(summary)
        return
    for w in res.warnings:
        err.print(f"[yellow]warning:[/] {w}")
    t = Table("split", "class", "samples to forget", title=f"request {req.request_id or '(no id)'} on {ds.name}")
    for c in res.counts:
        t.add_row(c.split, c.label, str(c.n))
    console.print(t)
    console.print(
        f"{len(res.sample_ids)} samples from {len(res.patient_ids)} patients would be forgotten; "
        f"{len(res.retain_rows)} training samples remain"
        + (f" ({res.previously_forgotten} already removed earlier)" if res.previously_forgotten else "")
    )


@request_app.command("schema")
@command
def request_schema_cmd() -> None:
    """Print the JSON Schema of a deletion request."""
    from medforget.request import request_schema

    print_json(request_schema())


@app.command()
@command
def schema(
    document: Annotated[
        str, typer.Argument(help="request, report, checkpoint, ledger, audit, method-config, study-config or study")
    ],
) -> None:
    """Print the JSON Schema of a document medforget reads or writes."""
    from medforget.schemas import SCHEMAS

    if document not in SCHEMAS:
        raise MedforgetError(f"unknown document {document!r}; choose from {', '.join(SCHEMAS)}")
    print_json(SCHEMAS[document]())


# ----------------------------------------------------------------------------- keys and ledger

key_app = typer.Typer(help="Secret keys for hashing patient IDs and signing.", no_args_is_help=True)
app.add_typer(key_app, name="key")


@key_app.command("new")
@command
def key_new() -> None:
    """Print a fresh 256-bit secret; keep it out of version control (e.g. > medforget.key; chmod 600)."""
    from medforget.keys import new_key

    typer.echo(new_key())


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

    if not path.is_file():
        raise MedforgetError(f"ledger {path} not found")
    result = verify(path, load_key(key_file))
    if json_out:
        print_json(result)
    else:
        if result.ok:
            console.print(
                f"[green]ok[/]: {result.n_entries} entries, chain intact"
                + ("" if result.macs_checked else " (MACs not checked: no key)")
                + f"; head {result.head_hash}"
            )
        for p in result.problems:
            console.print(
                f"[red]{p.kind}[/] line {p.line}"
                + (f" (entry {p.seq})" if p.seq is not None else "")
                + f": {p.message}"
            )
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

    if not path.is_file():
        raise MedforgetError(f"ledger {path} not found")
    entries = read_entries(path)
    if json_out:
        print_json([e.model_dump(mode="json") for e in entries])
        return
    t = Table("#", "when", "type", "request", "method", "samples", "patients", "input", "output")
    for e in entries:
        t.add_row(
            str(e.seq),
            e.created_at,
            e.entry_type,
            e.request_id or "—",
            e.method or "—",
            str(len(e.sample_hashes)),
            str(len(e.patient_hashes)),
            (e.input_sha256 or "—")[:12],
            e.output_sha256[:12],
        )
    console.print(t)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit as exc:
        # Click reports usage errors with exit code 2, which is already our "bad input" code.
        raise SystemExit(exc.code if exc.code is not None else 0) from None
    except Exception:  # pragma: no cover - the command wrapper catches everything first
        traceback.print_exc()
        raise SystemExit(EXIT_INTERNAL) from None


__all__ = ["EXIT_BAD_INPUT", "app", "main"]
