"""What every command shares: the Typer app, the error and logging wrapper, JSON output, common options."""

from __future__ import annotations

import functools
import json
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from medforget import __version__, progress
from medforget.errors import EXIT_INCONCLUSIVE, EXIT_INTERNAL, EXIT_VERDICT_FAILED, MedforgetError

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
    """Set up logging and progress, map library exceptions to exit codes.

    Bad input is one line on stderr; bugs keep their traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from medforget.render.console import RichReporter, install_logging

        quiet, verbose = kwargs.get("quiet", False), kwargs.get("verbose", False)
        install_logging(err, logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
        try:
            with progress.use(None if quiet else RichReporter(err)):
                return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except MedforgetError as exc:
            typer.echo(f"error: {exc}", err=True)  # one plain line, never wrapped
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo(
                "interrupted: every output is either complete (and, with --ledger, recorded) or absent", err=True
            )
            raise typer.Exit(130) from None
        except Exception:
            err.print(traceback.format_exc(), markup=False, highlight=False)
            err.print("[bold red]internal error[/] (a bug in medforget; please report it with the traceback above)")
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper  # type: ignore[return-value]


def print_json(obj: BaseModel | dict[str, Any] | list[Any]) -> None:
    """A result as JSON on stdout, and nothing else."""
    text = obj.model_dump_json(indent=2) if isinstance(obj, BaseModel) else json.dumps(obj, indent=2)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def show(renderable: Any) -> None:
    console.print(renderable)


def build(cls: type[BaseModel], **values: Any) -> Any:
    """Build a settings model from options; a rejected value is one line naming the option."""
    try:
        return cls(**values)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise MedforgetError(f"--{str(e['loc'][-1]).replace('_', '-')}: {e['msg']}") from None


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
Force = Annotated[bool, typer.Option("--force", help="Replace an existing output file (never an input)")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout and nothing else")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars, warnings and errors only")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug messages too")]
ShowIds = Annotated[
    bool, typer.Option("--show-ids", help="Name sample and patient IDs in messages (default: counts and positions)")
]
KeyFile = Annotated[
    Path | None, typer.Option("--key-file", help="Secret for keyed ID hashes and signatures (else $MEDFORGET_KEY)")
]
LedgerOpt = Annotated[
    Path | None,
    typer.Option(
        "--ledger", help="Tamper-evident deletion ledger (JSON Lines): train/unlearn append to it, audit reads it"
    ),
]


def data_paths(data_root: Path | None, manifest: Path | None) -> Any:
    from medforget.data import DataPaths

    return DataPaths(data_root=data_root, manifest=manifest)


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


def exit_for(status: str) -> None:
    """A verdict's exit code: 3 when it failed, 4 when it is inconclusive, else return (exit 0)."""
    if status == "fail":
        raise typer.Exit(EXIT_VERDICT_FAILED)
    if status == "inconclusive":
        raise typer.Exit(EXIT_INCONCLUSIVE)
