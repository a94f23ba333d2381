"""Build a real HTML unlearning report and screenshot it, so the docs show what a reader actually gets.

Trains a tiny ResNet-10 on BreastMNIST for a few epochs (about a minute on two CPU cores), removes
``sample_requests/breastmnist-malignant-heavy.json`` with SalUn-CRA through the library
(:func:`medforget.unlearn.unlearn` with ``html_path``), compares with a retrain baseline, writes
``docs/example_report.html`` and renders it with headless Chromium to ``docs/report_screenshot.png``.

The manifest gives every sample a *synthetic* attribute ``demo_site`` (A or B, assigned by row
number) purely so the "results by patient group" section has something to show; BreastMNIST has no
real site or sex information. All models, caches and temporary files live in a temporary folder.

    python docs/screenshot_report.py [--epochs 5] [--chromium /usr/bin/chromium] [--skip-screenshot]
    python docs/screenshot_report.py --save-report /tmp/r.json   # keep the JSON report too
    python docs/screenshot_report.py --from-report /tmp/r.json   # re-render only (layout work, seconds)

Chromium (Debian: ``apt-get install -y chromium``) runs with a fresh profile and no network
features, so the screenshot also proves the page needs nothing from outside.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
REQUEST = REPO / "sample_requests" / "breastmnist-malignant-heavy.json"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def write_demo_manifest(path: Path, split_sizes: dict[str, int]) -> Path:
    """A manifest attaching a synthetic two-valued site to every sample (patients stay one per sample)."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sample_id", "patient_id", "demo_site"])
        for split, n in split_sizes.items():
            for i in range(n):
                w.writerow([f"{split}-{i:06d}", "", "A" if (i * 7) % 3 else "B"])
    return path


def build_report(work: Path, html_out: Path, epochs: int, save_report: Path | None) -> None:
    """Train, unlearn with salun-cra against a retrain baseline, and write the HTML report."""
    os.environ["MEDFORGET_CACHE_DIR"] = str(work / "cache")  # keep the retrain baseline out of the user cache
    from medforget.config import TrainConfig, UnlearnSettings
    from medforget.data import DataPaths, load_medmnist
    from medforget.request import read_request
    from medforget.train import train
    from medforget.unlearn import Outputs, unlearn

    plain = load_medmnist("breastmnist")
    manifest = write_demo_manifest(work / "manifest.csv", {name: len(s) for name, s in plain.splits.items()})
    dataset = load_medmnist("breastmnist", manifest=manifest)
    ckpt = work / "breast.safetensors"
    cfg = TrainConfig(arch="resnet10", epochs=epochs, batch_size=32, lr=1e-3, seed=0)
    train(dataset, cfg, ckpt, device="cpu")
    report = unlearn(
        ckpt,
        read_request(REQUEST),
        UnlearnSettings(method="salun-cra", device="cpu"),
        Outputs(
            checkpoint=work / "breast.salun-cra.safetensors",
            report=work / "breast.salun-cra.report.json",
            html=html_out,
            force=True,
        ),
        data=DataPaths(manifest=manifest),
    )
    print(f"verdict: {report.verdict.status}: {report.verdict.summary}")
    print(f"wrote {html_out}")
    if save_report is not None:
        shutil.copyfile(work / "breast.salun-cra.report.json", save_report)
        print(f"wrote {save_report}")


def render_from(report_json: Path, html_out: Path) -> None:
    """Re-render the page from a saved JSON report: the page is a function of the report alone."""
    from medforget.fileio import commit
    from medforget.render.html import render_unlearn_html
    from medforget.verify.report import UnlearnReport

    report = UnlearnReport.model_validate_json(report_json.read_text())
    commit({html_out: render_unlearn_html(report).encode("utf-8")}, force=True)
    print(f"wrote {html_out}")


def screenshot(html: Path, png: Path, chromium: str, width: int, height: int) -> None:
    """Render ``html`` with headless Chromium in a throw-away profile."""
    with tempfile.TemporaryDirectory(prefix="medforget-chromium-") as profile:
        cmd = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            html.resolve().as_uri(),
        ]
        subprocess.run(cmd, check=True, timeout=120, capture_output=True)
    print(f"wrote {png}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5, help="training epochs of the tiny model")
    ap.add_argument("--html", type=Path, default=DOCS / "example_report.html")
    ap.add_argument("--png", type=Path, default=DOCS / "report_screenshot.png")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--skip-screenshot", action="store_true", help="only write the HTML")
    ap.add_argument("--save-report", type=Path, help="also keep the JSON report here")
    ap.add_argument("--from-report", type=Path, help="render this saved JSON report instead of training")
    args = ap.parse_args()
    if args.from_report:
        render_from(args.from_report, args.html)
    else:
        with tempfile.TemporaryDirectory(prefix="medforget-docs-") as tmp:
            build_report(Path(tmp), args.html, args.epochs, args.save_report)
    if not args.skip_screenshot:
        if not Path(args.chromium).exists():
            print(f"{args.chromium} not found; install it with: apt-get install -y chromium", file=sys.stderr)
            return 2
        screenshot(args.html, args.png, args.chromium, args.width, args.height)
    return 0


if __name__ == "__main__":
    sys.exit(main())
