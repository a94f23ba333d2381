"""What CheXpert at 224 px with ResNet-50 would cost: per-image costs measured here, scaled by FLOPs to GPUs.

Measures on this machine: ResNet-50 (1-channel input, 224 px, the model medforget builds) forward FLOPs
(``torch.utils.flop_counter``), the CPU time per image of a training step (forward + backward + Adam) and
of inference, and the time to decode one CheXpert-sized JPEG (320x390) and resize it to 224 px. GPU
throughput is not measured here (no GPU): it is taken as ``--gpu-train-ips`` images/s per GPU for
training in bf16 with channels_last (NVIDIA's published ResNet-50 mixed-precision training throughput
on one A100 is about 2,500-2,700 img/s), inference 3x that, and ``--scaling`` efficiency for 8 GPUs under
DDP. Then the wall time of each job of a deletion request on CheXpert's frontal training images:

* train: ``--epochs`` passes over the training images (+ validation passes on 5% of them);
* retrain: the same on the retained images, ``--retrains`` times for the verdict's distribution;
* SalUn-CRA: the saliency pass over the forget set, ``--method-epochs`` paired passes (each forget image
  with ``retain_ratio`` 2 retain images), and the verification: the original, the unlearned model and
  the retrains evaluated on retain, forget, validation and test (forward passes, rank 0 only: under
  torchrun only training from scratch runs on every GPU).

    python benchmarks/chexpert_estimate.py
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
import torch
import torch.nn.functional as F
from _results import append, markdown_table

from medforget.engine import make_optimizer
from medforget.models import create_model


def measure(batch: int, steps: int) -> dict[str, float]:
    from torch.utils.flop_counter import FlopCounterMode

    model = create_model("resnet50", num_classes=2, in_channels=1, image_size=224).to(memory_format=torch.channels_last)
    x = torch.randn(batch, 1, 224, 224).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (batch,))
    with FlopCounterMode(display=False) as fc:
        model.eval()
        with torch.no_grad():
            model(x[:1])
    fwd_flops = fc.get_total_flops()
    opt = make_optimizer(list(model.parameters()), "adam", 1e-3, 0.9, 0.0)
    model.train()
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if i:
            times.append((time.perf_counter() - t0) / batch)
    model.eval()
    inf = []
    with torch.no_grad():
        for i in range(steps + 1):
            t0 = time.perf_counter()
            model(x)
            if i:
                inf.append((time.perf_counter() - t0) / batch)
    return {"fwd_flops": fwd_flops, "train_s": float(np.median(times)), "infer_s": float(np.median(inf))}


def decode_seconds(n: int = 200) -> float:
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:390, 0:320]
    arr = np.clip(100 + 50 * np.sin(xx / 23) * np.cos(yy / 19) + rng.normal(0, 10, xx.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "L").save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    t0 = time.perf_counter()
    for _ in range(n):
        with Image.open(io.BytesIO(data)) as im:
            np.asarray(im.convert("L").resize((224, 224), Image.Resampling.BICUBIC))
    return (time.perf_counter() - t0) / n


def human(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def count(n: float) -> str:
    if n >= 1e5:
        return f"{n / 1e6:.2f} M"
    return f"{n / 1e3:.1f} k" if n >= 1e3 else f"{n:.0f}"


def jobs(args) -> dict[str, tuple[float, float, bool]]:
    """Per job: images through a training step, images through inference only, whether every GPU trains."""
    n, val, test = args.n_train, round(0.05 * args.n_train), args.n_test
    n_train = n - val
    train = (args.epochs * n_train, args.epochs * val + val + test, True)
    rows = {"train (one model)": train}
    for label, n_forget in (("1 patient", args.patient_images), ("1% of patients", round(0.01 * n_train))):
        retain = n_train - n_forget
        passes = args.retrains * (args.epochs * val + val + test)
        rows[f"retrain x{args.retrains}, {label}"] = (args.retrains * args.epochs * retain, passes, True)
        method = n_forget + args.method_epochs * 3 * n_forget  # saliency pass + paired steps (1 forget : 2 retain)
        evals = (2 + args.retrains) * (retain + n_forget + val + test)
        rows[f"SalUn-CRA, {label}: method"] = (method, 0, False)
        rows[f"SalUn-CRA, {label}: method + verification"] = (method, evals, False)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-train", type=int, default=191027, help="Frontal images in CheXpert's train.csv")
    ap.add_argument("--n-test", type=int, default=202, help="Frontal images in valid.csv")
    ap.add_argument("--patient-images", type=int, default=3, help="Frontal images of one patient (mean about 2.9)")
    ap.add_argument("--epochs", type=int, default=3, help="CheXpert's published baselines train 3 epochs")
    ap.add_argument("--retrains", type=int, default=3)
    ap.add_argument("--method-epochs", type=int, default=5)
    ap.add_argument("--gpu-train-ips", type=float, default=2500.0, help="Assumed training img/s of one A100 (bf16)")
    ap.add_argument("--scaling", type=float, default=0.9, help="Assumed DDP efficiency on 8 GPUs")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    m = measure(args.batch, args.steps)
    dec = decode_seconds()
    train_flops = 3 * m["fwd_flops"]
    gpu_train, gpu_infer = args.gpu_train_ips, 3 * args.gpu_train_ips
    measured = markdown_table(["per image", "value"], [
        ["ResNet-50 forward FLOPs (1 channel, 224 px)", f"{m['fwd_flops'] / 1e9:.2f} G"],
        ["training step FLOPs (forward + backward, ~3x forward)", f"{train_flops / 1e9:.1f} G"],
        [f"CPU training step here (batch {args.batch}, {torch.get_num_threads()} threads)",
         f"{1000 * m['train_s']:.0f} ms ({1 / m['train_s']:.2f} img/s, "
         f"{train_flops / m['train_s'] / 1e9:.0f} GFLOP/s)"],
        ["CPU inference here", f"{1000 * m['infer_s']:.0f} ms ({1 / m['infer_s']:.1f} img/s)"],
        ["decode a 320x390 JPEG + resize to 224 (one core)", f"{1000 * dec:.1f} ms ({1 / dec:.0f} img/s)"],
        ["GPU training (assumed, A100 bf16)", f"{gpu_train:.0f} img/s = {gpu_train * train_flops / 1e12:.0f} TFLOP/s"],
    ])  # fmt: skip
    rows = []
    for name, (train_imgs, infer_imgs, every_gpu) in jobs(args).items():
        cpu = train_imgs * m["train_s"] + infer_imgs * m["infer_s"]
        one = train_imgs / gpu_train + infer_imgs / gpu_infer
        eight = train_imgs / ((8 * args.scaling if every_gpu else 1) * gpu_train) + infer_imgs / gpu_infer
        images = f"{count(train_imgs)} / {count(infer_imgs)}"
        rows.append([name, images, human(cpu), human(one), human(eight)])
    table = markdown_table(["job on CheXpert (frontal, 224 px, ResNet-50)", "images trained / inferred",
                            "this CPU", "1 GPU (est.)", "8 GPUs (est.)"], rows)  # fmt: skip
    notes = (
        f"{args.n_train} training images ({args.epochs} epochs, 5% held out for validation), {args.retrains} "
        f"retrains, SalUn-CRA {args.method_epochs} epochs without early stopping (an upper bound), "
        f"{args.scaling:.0%} DDP efficiency on 8 GPUs for training; evaluation and the unlearning method run on "
        f"one GPU (rank 0). To feed 8 GPUs ({8 * gpu_train:.0f} img/s) from JPEGs would take "
        f"{8 * gpu_train * dec:.0f} cores decoding; from medforget's uint8 image cache it is "
        f"{8 * gpu_train * 224 * 224 / 1e9:.1f} GB/s of reads. CPU timings taken under load (other jobs on the "
        "2 cores)."
    )
    append(
        "CheXpert at 224 px with ResNet-50: measured per-image costs and estimates (chexpert_estimate.py)",
        measured + "\n\n" + table,
        notes,
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
