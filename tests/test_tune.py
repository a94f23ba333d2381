"""``medforget tune`` on real BreastMNIST: Optuna search on a proxy request, a config ``unlearn`` reuses."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from medforget.cli import app
from medforget.config import MethodConfig
from medforget.errors import MedforgetError
from medforget.tune import method_config_schema, read_method_config, search_space

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
REQUEST = REPO / "sample_requests" / "breastmnist-single-patient.json"


def test_search_space_follows_the_methods_parameters() -> None:
    assert set(search_space("salun-cra")) >= {"lr", "epochs", "mask_fraction", "positive_weight", "retain_ratio"}
    assert "mask_fraction" not in search_space("random-label")
    assert set(search_space("salun", ["lr"])) == {"lr"}
    with pytest.raises(MedforgetError, match="cannot tune mask_fraction for finetune"):
        search_space("finetune", ["mask_fraction"])


@pytest.fixture(scope="module")
def tuned(breast_ckpt: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("tune") / "salun.tuned.json"
    res = runner.invoke(
        app,
        ["tune", "-c", str(breast_ckpt), "-m", "salun", "--trials", "3", "--fraction", "0.1", "--search", "lr",
         "--search", "mask_fraction", "-p", "epochs=1", "-o", str(out), "--device", "cpu", "--quiet", "--json"],
    )  # fmt: skip
    return res, out


def test_tune_writes_a_schema_valid_config_with_its_cost(tuned) -> None:
    res, out = tuned
    assert res.exit_code == 0, res.stderr
    data = json.loads(out.read_text())
    jsonschema.validate(data, method_config_schema())
    assert json.loads(res.stdout) == data  # --json prints exactly what was written
    cfg = MethodConfig.model_validate(data)
    t = cfg.tuning
    assert cfg.method == "salun" and t is not None
    assert t.trials == 3 and t.n_proxy_forget == 55 and t.dataset == "breastmnist"
    assert cfg.params["epochs"] == 1  # the fixed parameter is kept
    assert 1e-5 <= cfg.params["lr"] <= 1e-3 and 0.1 <= cfg.params["mask_fraction"] <= 0.9
    assert t.tuning_seconds > t.retrain_seconds > 0 and t.method_seconds > 0
    # one epoch of SalUn on a tenth of the data is far cheaper than retraining: tuning pays for itself
    assert t.method_seconds < t.retrain_seconds and t.break_even_requests is not None
    expected = t.tuning_seconds / (t.retrain_seconds - t.method_seconds)
    assert t.break_even_requests == pytest.approx(expected, rel=0.01)


def test_unlearn_uses_the_tuned_config_and_reports_tuning_cost(tuned, breast_ckpt: Path, tmp_path: Path) -> None:
    _, config = tuned
    cfg = read_method_config(config, "salun")
    out = tmp_path / "u.safetensors"
    res = runner.invoke(
        app,
        ["unlearn", "-c", str(breast_ckpt), "-r", str(REQUEST), "-m", "salun", "--config", str(config), "-o",
         str(out), "--baseline", "none", "--device", "cpu", "--quiet", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["params"] == cfg.params
    assert report["cost"]["tuning_seconds"] == cfg.tuning.tuning_seconds
    # A config for another method is refused before any work.
    res = runner.invoke(
        app,
        ["unlearn", "-c", str(breast_ckpt), "-r", str(REQUEST), "-m", "random-label", "--config", str(config),
         "-o", str(tmp_path / "v.safetensors"), "--device", "cpu", "--quiet"],
    )  # fmt: skip
    assert res.exit_code == 2 and "is for method 'salun'" in res.stderr
    assert not (tmp_path / "v.safetensors").exists()


def test_tune_refuses_bad_input_before_any_work(breast_ckpt: Path, tmp_path: Path) -> None:
    for args, message in (
        (["-m", "retrain"], "nothing to tune"),
        (["-m", "salun", "--search", "alpha"], "cannot tune alpha"),
        (["-m", "salun", "-p", "mask_fraction=3"], "mask_fraction"),
    ):
        res = runner.invoke(
            app, ["tune", "-c", str(breast_ckpt), *args, "-o", str(tmp_path / "t.json"), "--device", "cpu", "--quiet"]
        )
        assert res.exit_code == 2, (args, res.stderr)
        assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "t.json").exists()
    res = runner.invoke(app, ["tune", "-c", str(breast_ckpt), "-o", str(tmp_path / "t.toml"), "--quiet"])
    assert res.exit_code == 2 and "name it *.json" in res.stderr and not (tmp_path / "t.toml").exists()


def test_method_config_forms(tmp_path: Path) -> None:
    flat = tmp_path / "flat.toml"
    flat.write_text("lr = 0.0002\nepochs = 3\n")
    assert read_method_config(flat, "salun").params == {"lr": 0.0002, "epochs": 3}
    named = tmp_path / "named.toml"
    named.write_text("[salun]\nmask_fraction = 0.3\n[random-label]\nlr = 0.1\n")
    assert read_method_config(named, "salun").params == {"mask_fraction": 0.3}
    tuned = tmp_path / "tuned.json"
    tuned.write_text(json.dumps({"method": "salun", "params": {"lr": 1e-4}}))
    cfg = read_method_config(tuned)
    assert (cfg.method, cfg.params, cfg.tuning) == ("salun", {"lr": 1e-4}, None)
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = = 1")
    with pytest.raises(MedforgetError, match="is not valid TOML"):
        read_method_config(bad, "salun")
    with pytest.raises(MedforgetError, match="does not say which method"):
        read_method_config(flat)
