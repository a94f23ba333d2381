"""A study grid through Ray against the local runner: the same results, and what Ray costs on top.

The grid's original and retrains are trained first (a warm-up run), so every measured run does the
same work: each grid cell's methods and their verification, reading models from the shared cache.
Then, each into a fresh output folder: the local runner (1 thread), Ray with a 1-CPU local instance
(1 thread per task: the same work, one run at a time, so the difference is Ray's overhead; target
under 5%) and Ray with 2 CPUs (two cells at once). The tidy results must be identical but for timings.

Every measured run starts with an empty evaluation memo, as a fresh ``medforget study`` process
does: a Ray worker cannot see this process's memo, and the local runner would otherwise reuse the
warm-up run's evaluations of the original and the retrains (a third of its work). With
``--repeats`` the executors run again in reverse order, and the table gives the mean. "Ray CPU s"
is the CPU time of Ray's own processes (raylet, GCS, agents; not the workers) during the run.

    python benchmarks/ray_study.py --out-dir /tmp/ray-study --repeats 2
"""

from __future__ import annotations

import argparse
import csv
import os
import threading
import time
from pathlib import Path

import ray
import torch
from _results import append, markdown_table

from medforget.cluster import connect
from medforget.config import RayOptions
from medforget.evaluation import MEMO
from medforget.study import load_study_config, run_study
from medforget.study.ray_runner import run_study_on_ray

GRID = """
name = "ray-bench"
seeds = [0, 1]
retrains = 2
methods = [{method = "finetune", label = "ft-1", params = {epochs = 1}}, "salun"]
[[datasets]]
name = "breastmnist"
train = { arch = "resnet10", epochs = 3, batch_size = 32, lr = 0.001, seed = 0 }
[[forget]]
name = "random10"
design = "random"
fraction = 0.1
[[forget]]
name = "malignant-heavy10"
design = "positive-heavy"
fraction = 0.1
"""
TIMING = ("seconds", "time_", "speedup", "_s")


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in csv.DictReader(fh)]


def _warm() -> None:
    import medforget.study.ray_runner  # noqa: F401  (what a first task imports)


RAY_AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


def ray_cpu() -> float:
    """CPU seconds so far of Ray's own processes on this machine: raylet, GCS, agents, monitors (not its workers)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        program = " ".join(cmd.split(" ")[:3])  # a binary, or python (-u) and its script
        worker = "default_worker" in program or (cmd.startswith("ray::") and not cmd.startswith(RAY_AGENTS))
        if ("/ray/" in program or cmd.startswith(RAY_AGENTS)) and not worker:
            total += (int(stat[11]) + int(stat[12])) / tick
    return total


class RayCpu:
    """Samples :func:`ray_cpu` while a run goes (Ray's processes end with it): the most it grew by."""

    def __enter__(self) -> RayCpu:
        self.base, self.seconds, self._stop = ray_cpu(), 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.seconds = max(self.seconds, ray_cpu() - self.base)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = max(self.seconds, ray_cpu() - self.base)


def measure(name: str, run, out: Path) -> tuple[float, float, float | None, object]:
    """One executor's run from an empty evaluation memo: wall seconds, start-up seconds not counted, Ray CPU."""
    MEMO.clear()  # a fresh process's memo, which is all a Ray worker has
    start_up = 0.0
    if "warm" in name:  # Ray started and a worker warm (imports done) before the clock starts
        t0 = time.perf_counter()
        connect(ray, RayOptions(num_cpus=1))
        ray.get(ray.remote(num_cpus=1)(_warm).remote())
        start_up = time.perf_counter() - t0
    with RayCpu() as cpu:
        start = time.perf_counter()
        result = run(out)
        wall = time.perf_counter() - start
    if "warm" in name:
        ray.shutdown()
    return wall, start_up, cpu.seconds if "ray" in name else None, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out-dir", type=Path, default=Path("/tmp/ray-study"))
    ap.add_argument("--repeats", type=int, default=1, help="run every executor this many times, alternating order")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "grid.toml").write_text(GRID)
    cfg = load_study_config(args.out_dir / "grid.toml")
    torch.set_num_threads(1)
    load0 = os.getloadavg()[0]
    run_study(cfg, args.out_dir / "warm", plots=False)  # originals and retrains into the cache
    executors = [
        ("local runner", lambda out: run_study(cfg, out, plots=False)),
        ("ray, 1 CPU", lambda out: run_study_on_ray(cfg, out, plots=False, options=RayOptions(num_cpus=1))),
        ("ray, 1 CPU, started and warm", lambda out: run_study_on_ray(cfg, out, plots=False)),
        ("ray, 2 CPUs", lambda out: run_study_on_ray(cfg, out, plots=False, options=RayOptions(num_cpus=2))),
    ]
    timed: dict[str, list] = {name: [] for name, _ in executors}
    for rep in range(args.repeats):
        for name, run in executors if rep % 2 == 0 else executors[::-1]:
            out = args.out_dir / f"{name.replace(' ', '-').replace(',', '')}-{rep}"
            wall, start_up, cpu, result = measure(name, run, out)
            timed[name].append((wall, start_up, cpu, result, rows(out / "results.csv")))
    start_up = sum(t[1] for t in timed["ray, 1 CPU, started and warm"]) / args.repeats
    timed = {name: (sum(t[0] for t in ts) / len(ts), [t[0] for t in ts],
                    None if ts[0][2] is None else sum(t[2] for t in ts) / len(ts), ts[-1][3],
                    all(t[4] == timed["local runner"][0][4] for t in ts)) for name, ts in timed.items()}  # fmt: skip
    base_wall = timed["local runner"][0]
    table_rows = []
    for name, (wall, walls, cpu, result, same) in timed.items():
        t = result.timings
        vs = f"{100 * (wall / base_wall - 1):+.1f}%"
        table_rows.append([name, t.runs_done, t.originals_trained, f"{wall:.1f}", " ".join(f"{w:.1f}" for w in walls),
                           vs, "" if cpu is None else f"{cpu:.1f}", "yes" if same else "NO"])  # fmt: skip
    over = timed["ray, 1 CPU"][0] / base_wall - 1
    steady = timed["ray, 1 CPU, started and warm"][0] / base_wall - 1
    table = markdown_table(["executor", "runs done", "originals trained", "wall s", "each run s", "vs local",
                            "Ray CPU s", "same results"], table_rows)  # fmt: skip
    target = markdown_table(["target", "measured", "met"], [
        ["Ray overhead (1 CPU vs local, same work) < 5%", f"{100 * over:+.1f}%", "yes" if over < 0.05 else "no"],
        [f"the same once Ray is up and a worker warm (start-up {start_up:.0f} s not counted)", f"{100 * steady:+.1f}%",
         "yes" if steady < 0.05 else "no"],
        ["same results as local (all columns but timings)", "ray 1 CPU, ray 2 CPUs",
         "yes" if all(v[4] for v in timed.values()) else "no"]])  # fmt: skip
    notes = (
        f"Grid: breastmnist, resnet10 (3 epochs), 2 forget designs x 2 seeds x (finetune, salun), 2 retrains "
        "each; the original and retrains come from the cache (warm-up run first), so each row is 8 method runs "
        "and their verification, every run from an empty evaluation memo (as a fresh process). One thread per "
        f"run everywhere; {args.repeats} run(s) per executor, alternating order. Under load: 1-minute load average "
        f"{load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, {os.cpu_count()} cores, shared with "
        "other jobs."
    )
    if args.no_record:
        print(table + "\n\n" + target + "\n\n" + notes)
    else:
        append("A study grid through Ray against the local runner (ray_study.py)", table + "\n\n" + target, notes)


if __name__ == "__main__":
    main()
