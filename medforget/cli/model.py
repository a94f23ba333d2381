"""``medforget train``, ``info`` and ``methods``: models and the methods that change them."""

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
    Verbose,
    app,
    build,
    command,
    print_json,
    show,
)
from medforget.config import CsvLayout, ReadOptions, RuntimeOptions, TrainConfig, default
from medforget.errors import MedforgetError

T = TrainConfig
L = CsvLayout
R = ReadOptions
RT = RuntimeOptions


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
    manifest_format: Annotated[
        str, typer.Option(help="CSV datasets: plain (sample_id,path,label,split) or chexpert (CheXpert's train.csv)")
    ] = default(L, "format"),
    uncertain: Annotated[
        str, typer.Option(help="chexpert: an uncertain (-1) finding counts as positive, negative, or drop the image")
    ] = default(L, "uncertain"),
    views: Annotated[str, typer.Option(help="chexpert: frontal views only, or all")] = default(L, "views"),
    workers: Annotated[
        int, typer.Option(min=0, help="Processes decoding images into the cache, threads reading batches ahead")
    ] = default(R, "workers"),
    lazy: Annotated[
        bool | None,
        typer.Option(
            "--lazy/--in-memory", help="Read images from the on-disk image cache [default: lazily above 2 GiB]"
        ),
    ] = default(R, "lazy"),
    arch: Annotated[str, typer.Option(help="resnet18, resnet50 (or resnet10, resnet10s for quick runs)")] = default(
        T, "arch"
    ),
    epochs: Annotated[int, typer.Option(min=1)] = default(T, "epochs"),
    batch_size: Annotated[int, typer.Option(min=1)] = default(T, "batch_size"),
    lr: Annotated[float, typer.Option(min=0.0)] = default(T, "lr"),
    optimizer: Annotated[str, typer.Option(help="adam or sgd")] = default(T, "optimizer"),
    schedule: Annotated[str, typer.Option(help="cosine, multistep or constant")] = default(T, "schedule"),
    weight_decay: Annotated[float, typer.Option(min=0.0)] = default(T, "weight_decay"),
    seed: int = default(T, "seed"),
    precision: Annotated[
        str, typer.Option(help="auto (CUDA: bf16 where supported, else fp16 + gradient scaler; CPU: fp32), fp32, ...")
    ] = default(RT, "precision"),
    compile_model: Annotated[
        bool, typer.Option("--compile", help="Train through torch.compile (pays off on GPUs, long runs)")
    ] = default(RT, "compile"),
    deterministic: Annotated[
        bool, typer.Option("--deterministic", help="cuDNN determinism + torch.use_deterministic_algorithms (recorded)")
    ] = default(RT, "deterministic"),
    ledger: LedgerOpt = None,
    key_file: KeyFile = None,
    device: Device = "auto",
    force: Force = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Train a classifier and write a checkpoint that records exactly what it was trained on."""
    # size: a Typer command's parameters are its options (data, layout, reading, recipe, outputs); the body is short.
    from medforget import runtime
    from medforget.data import load_dataset, reading
    from medforget.keys import load_key
    from medforget.models import list_models
    from medforget.render.terminal import train_summary
    from medforget.train import train as run_train

    cfg = build(
        TrainConfig,
        arch=arch,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        schedule=schedule,
        weight_decay=weight_decay,
        seed=seed,
    )
    if arch not in list_models():
        raise MedforgetError(f"unknown architecture {arch!r}; available: {', '.join(list_models())}")
    layout = build(
        CsvLayout,
        format=manifest_format,
        uncertain=uncertain,
        views=views,
        classes=classes.split(",") if classes else None,
    )
    options = build(RuntimeOptions, precision=precision, compile=compile_model, deterministic=deterministic)
    with reading(build(ReadOptions, lazy=lazy, workers=workers)), runtime.use(options):
        ds = load_dataset(dataset, size, data_root, positive, binary, manifest, layout)
        summary = run_train(ds, cfg, out, device=device, force=force, key=load_key(key_file), ledger=ledger)
    print_json(summary) if json_out else show(train_summary(summary))


@app.command()
@command
def info(
    checkpoint: Annotated[Path, typer.Argument(help="A medforget .safetensors checkpoint")],
    key_file: KeyFile = None,
    json_out: JsonOut = False,
) -> None:
    """Show what a checkpoint is: model, data, training config, lineage and forgotten samples."""
    from medforget.checkpoint import load_checkpoint
    from medforget.keys import load_key
    from medforget.render.terminal import checkpoint_info

    ck = load_checkpoint(checkpoint, key=load_key(key_file))
    if json_out:
        print_json(ck.info())
        return
    show(checkpoint_info(ck))


@app.command()
@command
def methods(json_out: JsonOut = False) -> None:
    """List the unlearning methods with their parameters and defaults."""
    from medforget.methods import get_method, list_methods
    from medforget.render.terminal import methods_table

    specs = [get_method(n) for n in list_methods()]
    if json_out:
        print_json(
            {m.name: {"summary": m.summary, "params": m.params().model_dump(), "presets": m.presets} for m in specs}
        )
        return
    show(methods_table(specs))
