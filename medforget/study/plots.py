"""A study's figures: test accuracy and FNR vs forget size, gap vs cost, forget accuracy by difficulty."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medforget.fileio import atomic_path
from medforget.study.findings import mean


def write_plots(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Three figures per dataset; written atomically, returned in order."""
    import matplotlib

    matplotlib.use("Agg")
    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for ds in sorted({r["dataset"] for r in rows}):
        drows = [r for r in rows if r["dataset"] == ds]
        labels = list(dict.fromkeys(r["label"] for r in drows))
        if any(r["design"] == "random" for r in drows):
            files.append(_save(_vs_size(ds, drows, labels), folder / f"{ds}-vs-forget-size.png"))
        files.append(_save(_gap_vs_cost(ds, drows, labels), folder / f"{ds}-gap-vs-cost.png"))
        files.append(_save(_difficulty(ds, drows, labels), folder / f"{ds}-difficulty.png"))
    return files


def _vs_size(ds: str, drows: list[dict[str, Any]], labels: list[str]) -> Any:
    import matplotlib.pyplot as plt

    random_rows = [r for r in drows if r["design"] == "random"]
    sizes = sorted({r["fraction"] for r in random_rows})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, col, title in (
        (axes[0], "unlearned_test_accuracy", "Test accuracy"),
        (axes[1], "unlearned_test_fnr", "Test false-negative rate (missed disease)"),
    ):
        for label in labels:
            ys = [mean([r[col] for r in random_rows if r["label"] == label and r["fraction"] == f]) for f in sizes]
            pts = [(100 * f, 100 * y) for f, y in zip(sizes, ys, strict=True) if y is not None]
            if pts:
                style = {"color": "black", "lw": 2.5, "ls": "--"} if label == "retrain" else {"marker": "o"}
                ax.plot(*zip(*pts, strict=True), label=label, **style)
        ax.set_xlabel("random forget set, % of training samples")
        ax.set_ylabel("%")
        ax.set_title(f"{ds}: {title}")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    return fig


def _gap_vs_cost(ds: str, drows: list[dict[str, Any]], labels: list[str]) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label in labels:
        rs = [r for r in drows if r["label"] == label and r["time_fraction"] is not None and r["method"] != "retrain"]
        rs = [r for r in rs if r["average_gap"] is not None]  # a missing value is left out, never drawn as 0
        if rs:
            ax.scatter([100 * r["time_fraction"] for r in rs], [100 * r["average_gap"] for r in rs], label=label)
    ax.set_xlabel("cost: wall time, % of retraining")
    ax.set_ylabel("average gap to retrain, points")
    ax.set_title(f"{ds}: closeness to retrain vs cost")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _difficulty(ds: str, drows: list[dict[str, Any]], labels: list[str]) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(len(labels), 1)
    thirds = ("easy", "medium", "hard")
    for i, label in enumerate(labels):
        rs = [r for r in drows if r["label"] == label]
        ys = [mean([r[f"unlearned_forget_{t}_accuracy"] for r in rs]) for t in thirds]
        # A third with no value is left without a bar, never drawn as 0%.
        known = [(j + i * width, 100 * y) for j, y in enumerate(ys) if y is not None]
        if known:
            ax.bar(*zip(*known, strict=True), width, label=label)
    ax.set_xticks([j + width * (len(labels) - 1) / 2 for j in range(3)])
    ax.set_xticklabels([f"{t} third" for t in thirds])
    ax.set_ylabel("forget accuracy, %")
    ax.set_title(f"{ds}: forget accuracy by sample difficulty (original model's loss)")
    ax.legend(fontsize=7, ncol=2)
    return fig


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path, force=True) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
