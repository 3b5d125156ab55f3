"""The benchmark runs every contender on a tiny size and saves its numbers (no timing is asserted)."""

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_benchmark_measures_every_contender(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/epoch_time.py"), "--dim", "32", "--epochs", "4",
                           "--warmup", "1", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = json.loads(out.read_text())
    assert result["dim"] == 32 and result["batch_size"] == 64
    names = ["bare", "article", "template/sgd", "template/manual", "template/builtin"]
    assert list(result["seconds_per_epoch"]) == names
    assert all(sec > 0 for sec in result["seconds_per_epoch"].values())
    assert "x bare" in proc.stdout
