"""``medforget study``, ``tune`` and ``schema``: grids of experiments, tuning once, published schemas."""

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
    Manifest,
    Quiet,
    Verbose,
    app,
    build,
    command,
    data_paths,
    parse_params,
    print_json,
    show,
)
from medforget.config import CalibrateSettings, RayOptions, TuneSettings, default
from medforget.errors import MedforgetError

RO = RayOptions
Executor = Annotated[
    str, typer.Option(help="local (this machine) or ray (a Ray cluster: pip install 'medforget[ray]')")
]
Address = Annotated[
    str | None, typer.Option(help="--executor ray: the cluster's address (default: start a local Ray instance)")
]
CpusPerRun = Annotated[float, typer.Option(min=0.01, help="--executor ray: CPUs each run reserves")]
GpusPerRun = Annotated[float, typer.Option(min=0.0, help="--executor ray: GPUs each run reserves")]
NumCpus = Annotated[
    int | None, typer.Option(min=1, help="--executor ray: CPUs of the local Ray instance started [default: every core]")
]


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
    keep_models: Annotated[
        bool, typer.Option("--keep-models", help="Also keep each run's unlearned checkpoint next to its report")
    ] = False,
    executor: Executor = "local",
    address: Address = default(RO, "address"),
    cpus_per_run: CpusPerRun = default(RO, "cpus_per_run"),
    gpus_per_run: GpusPerRun = default(RO, "gpus_per_run"),
    num_cpus: NumCpus = default(RO, "num_cpus"),
    json_out: JsonOut = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Run a grid of unlearning experiments (datasets x forget sets x methods x seeds); resumes where it stopped."""
    # size: a Typer command's parameters are its options; the body parses, calls one function, renders.
    from medforget.cluster import starting

    if executor not in ("local", "ray"):
        raise MedforgetError(f"--executor must be local or ray, got {executor!r}")
    options = None
    if executor == "ray" and not report_only:
        options = build(RayOptions, address=address, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run,
                        num_cpus=num_cpus)  # fmt: skip
    # Ray (when asked for) starts in the background while torch and the study code are imported.
    with starting(options, ("medforget.study.ray_runner",)):
        from medforget.study import load_study_config, read_results, run_study, summarise

        cfg = load_study_config(config)
        if options is not None:
            from medforget.study.ray_runner import run_study_on_ray

            result = run_study_on_ray(cfg, out, data_root, None, plots, keep_models, options)
        else:
            result = run_study(cfg, out, data_root=data_root, plots=plots, report_only=report_only,
                               keep_models=keep_models)  # fmt: skip
    from medforget.render.terminal import lines, study_table

    if json_out:
        print_json(result)
        return
    show(study_table(result.name, *summarise(read_results(result.results_csv))))
    t = result.timings
    missing = f", {t.runs_missing} not finished yet (left out)" if t.runs_missing else ""
    show(
        lines(
            [f"• {f}" for f in result.findings]
            + [
                f"{t.runs_done} runs done, {t.runs_reused} reused{missing}; {t.wall_seconds:.0f} s, "
                f"{100 * t.overhead_fraction:.1f}% outside forward/backward passes",
                f"wrote {result.results_csv}, {result.summary_md} and {len(result.plots)} plots",
            ]
        )
    )


TS = TuneSettings


@app.command()
@command
def tune(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="The trained model (.safetensors)")],
    method: Annotated[str, typer.Option("--method", "-m", help="Method to tune")] = default(TS, "method"),
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Tuned config [default: <method>.tuned.json]")] = None,
    trials: Annotated[int, typer.Option(min=1, help="Optuna trials (each one unlearning run)")] = default(TS, "trials"),
    fraction: Annotated[float, typer.Option(help="Proxy forget set: share of training samples")] = default(
        TS, "fraction"
    ),
    design: Annotated[str, typer.Option(help="Proxy forget set: random, positive-heavy or positive-only")] = default(
        TS, "design"
    ),
    fnr_slack: Annotated[
        float, typer.Option(min=0.0, help="Constraint: validation FNR at most this far above the proxy retrain's")
    ] = default(TS, "fnr_slack"),
    search: Annotated[
        list[str] | None, typer.Option("--search", help="Parameter to search (repeatable; default: all tunable)")
    ] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Fixed parameter key=value")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the proxy draw, the sampler and the method")] = default(TS, "seed"),
    data_root: DataRoot = None,
    manifest: Manifest = None,
    key_file: KeyFile = None,
    device: Device = "auto",
    executor: Executor = "local",
    address: Address = default(RO, "address"),
    cpus_per_run: CpusPerRun = default(RO, "cpus_per_run"),
    gpus_per_run: GpusPerRun = default(RO, "gpus_per_run"),
    num_cpus: NumCpus = default(RO, "num_cpus"),
    force: Force = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Tune a method's parameters once on a proxy request; 'unlearn --config' reuses the result."""
    # size: a Typer command's parameters are its options; the body parses, calls one function, renders.
    from medforget.cluster import starting
    from medforget.keys import load_key

    if executor not in ("local", "ray"):
        raise MedforgetError(f"--executor must be local or ray, got {executor!r}")
    options = None
    if executor == "ray":
        options = build(RayOptions, address=address, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run,
                        num_cpus=num_cpus)  # fmt: skip
    # Ray (when asked for) starts in the background while torch and the tuning code are imported.
    with starting(options, ("medforget.tune_ray",)):
        from medforget.tune import tune as run_tune

        fixed, _ = parse_params(param, None, method)
        settings = build(TuneSettings, method=method, trials=trials, fraction=fraction, design=design,
                         fnr_slack=fnr_slack, search=search, fixed=fixed, seed=seed, device=device)  # fmt: skip
        out = out or Path(f"{method}.tuned.json")
        data = data_paths(data_root, manifest)
        if options is not None:
            from medforget.tune_ray import tune_on_ray

            result = tune_on_ray(checkpoint, settings, out, data, load_key(key_file), force, options)
        else:
            result = run_tune(checkpoint, settings, out, data, load_key(key_file), force)
    from medforget.render.terminal import tune_summary

    print_json(result) if json_out else show(tune_summary(result, str(out)))


@app.command()
@command
def schema(
    document: Annotated[
        str,
        typer.Argument(
            help="request, report, checkpoint, ledger, audit, method-config, study-config, study, calibration, "
            "info or preview"
        ),
    ],
) -> None:
    """Print the JSON Schema of a document medforget reads or writes."""
    from medforget.schemas import SCHEMAS

    if document not in SCHEMAS:
        raise MedforgetError(f"unknown document {document!r}; choose from {', '.join(SCHEMAS)}")
    print_json(SCHEMAS[document]())


CS = CalibrateSettings


@app.command()
@command
def calibrate(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="The deployed model (.safetensors)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Calibration to write (JSON)")],
    design: Annotated[str, typer.Option(help="Proxy requests: random, positive-heavy or positive-only")] = default(
        CS, "design"
    ),
    fraction: Annotated[float, typer.Option(help="Proxy size: share of the training samples")] = default(
        CS, "fraction"
    ),
    proxies: Annotated[int, typer.Option(min=1, help="Proxy requests to draw")] = default(CS, "proxies"),
    retrains: Annotated[int, typer.Option(min=2, help="Retrains per proxy")] = default(CS, "retrains"),
    seed: Annotated[int, typer.Option(help="Seed of the first proxy draw")] = default(CS, "seed"),
    workers: Annotated[int, typer.Option(min=0, help="Parallel retrain processes on CPU (0: one per core)")] = default(
        CS, "workers"
    ),
    data_root: DataRoot = None,
    manifest: Manifest = None,
    key_file: KeyFile = None,
    device: Device = "auto",
    force: Force = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Measure once what retraining does on this data, so 'unlearn --baseline calibrated' needs no retrain."""
    from medforget.calibrate import calibrate_checkpoint, summary_values
    from medforget.fileio import check_outputs, commit
    from medforget.keys import load_key
    from medforget.render.terminal import lines

    check_outputs({"--out": out}, {"the checkpoint": checkpoint}, force)
    settings = build(
        CalibrateSettings,
        design=design,
        fraction=fraction,
        proxies=proxies,
        retrains=retrains,
        seed=seed,
        workers=workers,
        device=device,
    )
    cal = calibrate_checkpoint(checkpoint, settings, data_paths(data_root, manifest), load_key(key_file))
    commit({out: cal.model_dump_json(indent=2).encode()}, force)
    if json_out:
        print_json(cal)
        return
    values = summary_values(cal)
    show(
        lines(
            [f"{k}: {v:.4f}" for k, v in values.items()]
            + [
                f"calibrated from {cal.proxies} proxies x {cal.retrains_per_proxy} retrains in {cal.seconds:.0f} s",
                f"wrote {out}",
                f"use it with: medforget unlearn --baseline calibrated --calibration {out} ...",
            ]
        )
    )
