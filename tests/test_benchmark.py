"""The benchmark runs every contender on a tiny size and saves its numbers (no timing is asserted).

Bugs these exist to catch: a contender that silently fails or measures nothing (zero seconds, missing sizes); a bad
option that starts a long run.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import epoch_time  # noqa: E402
import grid_time  # noqa: E402


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks/epoch_time.py"), *args],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_benchmark_measures_every_contender(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = bench("--dim", "32", "--epochs", "4", "--warmup", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = json.loads(out.read_text())
    assert result["dim"] == 32 and result["batch_size"] == 64
    names = ["bare", "article", "lightning/barebones", "template/sgd", "template/manual", "template/builtin"]
    assert list(result["contenders"]) == names
    assert all(r["seconds"] > 0 and r["x_bare"] > 0 for r in result["contenders"].values())
    assert result["contenders"]["bare"] == {**result["contenders"]["bare"], "epochs": 5 * 3, "x_bare": 1}
    assert all(r["epochs"] == 3 for name, r in result["contenders"].items() if name != "bare")  # 4 - 1 warm-up
    assert "x bare" in proc.stdout


def test_benchmark_refuses_a_warmup_that_leaves_no_epoch(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(sys, "argv", ["epoch_time.py", "--epochs", "5", "--warmup", "5"])
    with pytest.raises(SystemExit) as exit_:
        epoch_time.main()
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and out == ""
    assert err.strip().splitlines()[-1] == ("epoch_time.py: error: --warmup must be >= 0 and below --epochs; got "
                                            "--warmup 5 --epochs 5")


@pytest.mark.slow
def test_grid_benchmark_measures_every_contender_against_either_reference(tmp_path: Path) -> None:
    """The command itself once (a contender in its own process, its table and JSON), then every other contender
    through the function each of those processes runs (``grid_time.one``), against either reference."""
    out = tmp_path / "grid.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/grid_time.py"), "--dims", "32", "--n", "2",
                           "--epochs", "3", "--warmup", "1", "--contenders", "grid/sweep", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = json.loads(out.read_text())
    assert result["contender"] == "grid/sweep" and result["dim"] == 32 and result["n"] == 2
    assert result["ratio"] > 0 and result["seconds"] > 0 and "x bare per model" in proc.stdout
    cpu = torch.device("cpu")
    measured = {name: grid_time.one("32", 2, name, 2, 1, cpu, "bare" if name == "grid/loop" else "loop")
                for name in grid_time.CONTENDERS if name != "grid/sweep"}
    assert set(measured) | {"grid/sweep"} == set(grid_time.CONTENDERS)
    for name, r in measured.items():
        assert r["ratio"] > 0 and r["seconds"] > 0 and r["ref_seconds"] > 0 and r["low"] <= r["high"], name
