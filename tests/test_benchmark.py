"""The benchmark runs every contender on a tiny size and saves its numbers (no timing is asserted).

Bugs these exist to catch: a contender that silently fails or measures nothing (zero seconds, missing sizes); a bad
option that starts a long run.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


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


@pytest.mark.slow
def test_benchmark_refuses_a_warmup_that_leaves_no_epoch() -> None:
    proc = bench("--epochs", "5", "--warmup", "5")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1] == ("epoch_time.py: error: --warmup must be >= 0 and below --epochs; "
                                                    "got --warmup 5 --epochs 5")


@pytest.mark.slow
def test_grid_benchmark_measures_every_contender_against_either_reference(tmp_path: Path) -> None:
    out = tmp_path / "grid.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/grid_time.py"), "--dims", "32", "--n", "2",
                           "--epochs", "3", "--warmup", "1", "--contenders", "grid/sweep", "grid/loop", "--json",
                           str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert [r["contender"] for r in results] == ["grid/sweep", "grid/loop"]
    assert all(r["ratio"] > 0 and r["seconds"] > 0 and r["dim"] == 32 and r["n"] == 2 for r in results)
    assert "x bare per model" in proc.stdout
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/grid_time.py"), "--dims", "32", "--n", "2",
                           "--epochs", "2", "--warmup", "1", "--reference", "loop", "--contenders", "grid/vmap",
                           "grid/pointwise", "grid/barebones", "grid/points", "--json", str(out)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert [r["contender"] for r in results] == ["grid/vmap", "grid/pointwise", "grid/barebones", "grid/points"]
    assert results[0]["reference"] == "loop"
    assert all(r["ratio"] > 0 for r in results) and "x loop (range)" in proc.stdout
