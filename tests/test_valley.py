"""The valley toy: stop indices and crossings that follow from the rule, worked out by hand.

Bugs these exist to catch: a ball whose stop or crossing does not follow from the rule written out by hand; a
missing figure; an animation that loops before its end can be seen.
"""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lit_momentum.valley import BUMP, HOLD, ball_view, decay, make_valley, roll, slopes
from lit_momentum.valley import main as valley_main
from tests.conftest import refusal


def test_the_curve_and_its_bump() -> None:
    x, y = make_valley()
    assert len(x) == 100 and x[-1].item() == pytest.approx(0.99)
    g = slopes(x, y)
    # left of the bump every slope is negative; the one step onto the bump rises, then it falls again
    assert (g[:BUMP - 1] < 0).all() and g[BUMP - 1] > 0 and g[BUMP] < 0


def test_plain_ball_sticks_before_the_bump() -> None:
    # slopes 0..23 are negative, so the ball walks 24 steps; at index 24 the slope to 25 is +0.098: it stays
    x, y = make_valley()
    path = roll(x, y, momentum=0.0, steps=50)
    assert path[24] == 24 and path[-1] == 24


def test_momentum_ball_crosses_and_reaches_the_bottom() -> None:
    # at index 24 the velocity is 0.6 v + 0.4 * 0.098 with v ~ -0.11 (the smoothed slopes so far): about -0.02 < 0,
    # so it moves on; every slope from 25 to 49 is negative, so it moves on every one of the 50 steps: index 50
    x, y = make_valley()
    path = roll(x, y, momentum=0.6, steps=50)
    assert path == list(range(51))


def test_smallest_crossing_momentum_is_one_half() -> None:
    # at index 24: m v + (1 - m) 0.098 with v ~ -0.11 is < 0 iff m > 0.47: 0.4 stays, 0.5 crosses
    x, y = make_valley()
    ends = {m: roll(x, y, m, 50)[-1] for m in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)}
    assert all(ends[m] == 24 for m in (0.0, 0.1, 0.2, 0.3, 0.4))
    assert all(ends[m] == 50 for m in (0.5, 0.6, 0.7, 0.8, 0.9))


def test_what_the_ball_sees_has_no_rise_before_the_bottom() -> None:
    x, y = make_valley()
    view = ball_view(x, y, 0.6)
    bottom = 50
    assert (torch.diff(view[:bottom]) <= 0).all()
    assert (torch.diff(y[:bottom]) > 0).any()  # the raw curve does rise (at the bump)


def test_decay_values() -> None:
    assert decay(0.6)[:3] == pytest.approx([0.6, 0.36, 0.216])
    assert len(decay(0.6)) == 9 and decay(0.6)[-1] == pytest.approx(0.6**9)


@pytest.mark.slow
def test_command_writes_every_file(tmp_path: Path) -> None:
    out = tmp_path / "v"
    valley_main(["--out", str(out), "--steps", "30"])
    summary = json.loads((out / "valley.json").read_text())
    assert summary["plain"]["stop_index"] == 24 and not summary["plain"]["passed_bump"]
    assert summary["momentum"]["stop_index"] == 30 and summary["momentum"]["passed_bump"]
    assert [r["momentum"] for r in summary["sweep"]] == pytest.approx([0.1 * i for i in range(10)])
    assert summary["smallest_crossing_momentum"] == 0.5
    for name in ("valley", "ball_view", "decay", "sweep"):
        with Image.open(out / f"{name}.png") as img:
            assert img.width > 300 and img.height > 200
    with Image.open(out / "valley.gif") as gif:
        assert gif.n_frames == 31  # a frame per step: the momentum ball moves at every one
        first = gif.info["duration"]
        gif.seek(30)
        assert gif.info["duration"] >= HOLD * first  # the last step stays on screen before the loop starts again
    assert "already holds" in refusal(valley_main, ["--out", str(out)])  # never overwrites a run


def test_default_run_logs_the_figures_to_tensorboard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    valley_main(["--no-gif"])
    (run,) = (tmp_path / "lightning_logs" / "valley").glob("version_*")
    acc = EventAccumulator(str(run))
    acc.Reload()
    assert set(acc.Tags()["images"]) == {f"valley/{n}" for n in ("valley", "ball_view", "decay", "sweep")}
    assert (run / "valley.json").is_file() and not (run / "valley.gif").exists()
