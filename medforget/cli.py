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
from medforget.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, MedforgetError

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
            typer.echo("interrupted; no output was written", err=True)
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
    summary = run_train(ds, cfg, out, device=device, force=force, show_progress=not quiet)
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
