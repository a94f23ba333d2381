"""``medforget study`` on real BreastMNIST: config validation, outputs, content-addressed caching and resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from medforget.cli import app
from medforget.errors import MedforgetError
from medforget.study import StudyResult, load_study_config, run_study, study_result_schema

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]

TINY = """
name = "tiny"
seeds = [0]
retrains = 2
methods = ["retrain", {{method = "finetune", label = "ft-1", preset = "published", params = {{epochs = 1}}}}]
[[datasets]]
name = "breastmnist"
train = {{ arch = "resnet10s", epochs = 1, batch_size = 32, lr = 0.001, seed = 0 }}
[[forget]]
name = "random20"
design = "random"
fraction = 0.2
[[forget]]
name = "malignant-only10"
design = "positive-only"
fraction = {fraction}
"""


def write(tmp_path: Path, text: str, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("config", sorted((REPO / "studies").glob("*.*ml")), ids=lambda p: p.name)
def test_shipped_study_configs_validate(config: Path) -> None:
    cfg = load_study_config(config)
    assert any(f.fraction == 0.2 for f in cfg.forget) and any(f.fraction == 0.5 for f in cfg.forget)
    assert {"retrain", "salun-cra", "salun"} <= {m.method for m in cfg.methods}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (TINY.format(fraction=0.1).replace('"finetune"', '"finetuning"'), "unknown method 'finetuning'"),
        (TINY.format(fraction=0.1).replace('label = "ft-1"', 'label = "retrain"'), "duplicate method label"),
        (TINY.format(fraction=1.5), "forget.1.fraction"),
        (TINY.format(fraction=0.1) + "\nlearning_rate = 3\n", "learning_rate"),
        ("name = [", "not valid TOML"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(MedforgetError, match=message.replace("(", r"\(")):
        load_study_config(write(tmp_path, text))
    res = runner.invoke(app, ["study", str(write(tmp_path, text)), "--out", str(tmp_path / "out"), "--quiet"])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_method_parameters_fail_before_any_work(tmp_path: Path) -> None:
    text = TINY.format(fraction=0.1).replace("params = {epochs = 1}", "params = {epochs = 0}")
    res = runner.invoke(app, ["study", str(write(tmp_path, text)), "--out", str(tmp_path / "out"), "--quiet"])
    assert res.exit_code == 2 and "finetune: parameter epochs" in res.stderr
    assert not (tmp_path / "out").exists()


def test_yaml_config_equals_toml(tmp_path: Path) -> None:
    yaml_text = """
name: tiny
seeds: [0]
retrains: 2
methods: [retrain, {method: finetune, label: ft-1, preset: published, params: {epochs: 1}}]
datasets:
  - {name: breastmnist, train: {arch: resnet10s, epochs: 1, batch_size: 32, lr: 0.001, seed: 0}}
forget:
  - {name: random20, design: random, fraction: 0.2}
  - {name: malignant-only10, design: positive-only, fraction: 0.1}
"""
    with pytest.raises(MedforgetError, match="is not valid YAML"):
        load_study_config(write(tmp_path, "name: [tiny", "broken.yaml"))
    a = load_study_config(write(tmp_path, yaml_text, "s.yaml"))
    b = load_study_config(write(tmp_path, TINY.format(fraction=0.1)))
    assert a == b


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("study")
    cfg = load_study_config(write(folder, TINY.format(fraction=0.1)))
    out = folder / "out"
    first = run_study(cfg, out)
    return cfg, out, first


def test_study_writes_tidy_rows_summary_and_plots(tiny_study) -> None:
    _, out, result = tiny_study
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4  # 1 dataset x 2 designs x 1 seed x 2 methods
    assert {(r["forget"], r["label"]) for r in rows} == {
        (f, m) for f in ("random20", "malignant-only10") for m in ("retrain", "ft-1")
    }
    for r in rows:
        if r["label"] == "retrain":  # exact unlearning (the recipe's own seed) is never judged a failure
            assert r["verdict"] != "fail" and int(r["n_retrains"]) == 2
        assert 0 <= float(r["unlearned_test_accuracy"]) <= 1
        assert float(r["method_seconds"]) > 0
        # the steps an iterative method took (ft-1 is the published recipe: no stopping rule, every step)
        if r["label"] == "ft-1":
            assert r["stop_outcome"] == "step budget" and int(r["steps"]) == int(r["max_steps"]) > 0
        else:  # exact retraining takes no unlearning steps
            assert r["steps"] == r["stop_outcome"] == ""
    only = [r for r in rows if r["forget"] == "malignant-only10"]
    assert all(int(r["n_forget_positive"]) == int(r["n_forget"]) == 55 for r in only)  # 10% of 546, all malignant
    summary = (out / "summary.md").read_text()
    assert "| breastmnist | random20 | ft-1 | 1 |" in summary and "## Findings" in summary
    assert all(Path(p).stat().st_size > 10_000 for p in result.plots) and len(result.plots) == 3
    study_json = json.loads((out / "study.json").read_text())
    jsonschema.validate(study_json, study_result_schema())
    assert result.timings.originals_trained == 1 and result.timings.runs_done == 4
    assert 0 <= result.timings.overhead_fraction < 1
    assert result.timings.compute_seconds > 0
    assert not list(out.rglob("*.safetensors"))  # no run writes a checkpoint unless asked to keep it
    ft = json.loads((out / "runs" / "breastmnist" / "random20" / "seed0" / "ft-1.json").read_text())["report"]
    assert ft["preset"] == "published" and ft["params"]["optimizer"] == "sgd" and ft["params"]["epochs"] == 1


def test_rerun_reuses_everything_and_resume_redoes_only_what_is_missing(tiny_study) -> None:
    cfg, out, _ = tiny_study
    again = run_study(cfg, out, plots=False)
    assert (again.timings.originals_trained, again.timings.runs_done, again.timings.runs_reused) == (0, 0, 4)
    # An interrupted study: one run never finished (its file is missing) and one was half-written.
    (out / "runs" / "breastmnist" / "random20" / "seed0" / "ft-1.json").unlink()
    (out / "runs" / "breastmnist" / "malignant-only10" / "seed0" / "ft-1.json").write_text('{"key": "abc", "rep')
    resumed = run_study(cfg, out, plots=False)
    assert (resumed.timings.runs_done, resumed.timings.runs_reused) == (2, 2)
    # Changing a method's parameters re-runs that method only.
    cfg2 = cfg.model_copy(deep=True)
    cfg2.methods[1].params = {"epochs": 1, "lr": 5e-5}
    changed = run_study(cfg2, out, plots=False)
    assert (changed.timings.runs_done, changed.timings.runs_reused) == (2, 2)
    StudyResult.model_validate_json((out / "study.json").read_text())


def test_study_cli_prints_summary_and_json(tiny_study) -> None:
    _, out, _ = tiny_study
    config = out.parent / "study.toml"
    args = ["study", str(config), "--out", str(out), "--quiet", "--no-plots"]
    assert runner.invoke(app, args).exit_code == 0  # brings the folder back to this config (other tests edit it)
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.stderr
    assert "ft-1" in res.stdout and "0 runs done, 4 reused" in res.stdout
    res = runner.invoke(app, ["study", str(config), "--out", str(out), "--quiet", "--no-plots", "--json"])
    assert res.exit_code == 0
    assert StudyResult.model_validate_json(res.stdout).timings.runs_reused == 4


def test_report_only_summarises_finished_runs_and_runs_nothing(tiny_study, tmp_path: Path) -> None:
    _, out, _ = tiny_study
    config = out.parent / "study.toml"
    unfinished = out / "runs" / "breastmnist" / "random20" / "seed0" / "ft-1.json"
    unfinished.unlink()  # as if another process were still working on it
    args = ["study", str(config), "--out", str(out), "--quiet", "--no-plots", "--report-only", "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.stderr
    t = StudyResult.model_validate_json(res.stdout).timings
    assert (t.runs_done, t.runs_reused, t.runs_missing, t.originals_trained) == (0, 3, 1, 0)
    assert not unfinished.exists()
    with open(out / "results.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 3
    assert "1 runs of the grid not finished yet" in (out / "summary.md").read_text()
    # A recipe whose original model was never trained: report-only must not train it either.
    other = write(tmp_path, TINY.format(fraction=0.1).replace('"resnet10s", epochs = 1', '"resnet10s", epochs = 3'))
    res = runner.invoke(app, ["study", str(other), "--out", str(tmp_path / "o"), "--quiet", "--no-plots",
                              "--report-only", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.stderr
    t = StudyResult.model_validate_json(res.stdout).timings
    assert (t.originals_trained, t.runs_missing, t.runs_reused) == (0, 4, 0)


def test_patient_design_withdraws_whole_patients(tmp_path: Path) -> None:
    from conftest import write_png_dataset

    from medforget.data import load_dataset
    from medforget.request import resolve
    from medforget.study.config import ForgetDesign
    from medforget.study.runner import make_request

    manifest = write_png_dataset(tmp_path / "imgs", {"train": 40, "val": 6, "test": 6})  # two images per patient
    ds = load_dataset("csv", size=20, manifest=manifest, positive=["malignant"])
    req = make_request(ds, ForgetDesign(name="patients25", design="patients", fraction=0.25), seed=3)
    assert len(req.patient_ids) == 5 and not req.sample_ids  # 25% of 20 training patients
    resolved = resolve(req, ds)
    assert len(resolved.sample_ids) == 10  # every image of each withdrawn patient
    assert {ds.train.patient_ids[i] for i in resolved.forget_rows} == set(req.patient_ids)
    again = make_request(ds, ForgetDesign(name="p", design="patients", fraction=0.25), seed=3)
    assert again.patient_ids == req.patient_ids  # a seed always draws the same patients
