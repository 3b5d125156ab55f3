"""Schedules (``--lr_scheduler``): PyTorch's schedulers drive the hand-written rule as they drive ``torch.optim.SGD``;
``train.py`` logs the values PyTorch's scheduler sets, continues a run mid-schedule bit for bit, refuses bad options
in one line; each grid point follows its own run's schedule from its own settings.

Bugs these exist to catch: a hand-written rule that keeps the momentum it was built with (a one-cycle's momentum never
reaching it); a scheduler stepped at another place than Lightning steps it (off by one step or epoch), or twice; its
state left out of a checkpoint; a grid point's schedule started from another point's settings, or shared across
points that differ; a frozen point brought back to life by its schedule; a one-cycle that overrides the swept lr.
"""

import csv
import re
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, OneCycleLR

from lit_momentum.command import main as train_main
from lit_momentum.momentum import HandWrittenSGD
from lit_momentum.schedules import Warmup, build_scheduler, group_values, stand_in
from tests.conftest import TINY_DATA, assert_same_state, load_ckpt, refusal, run_dirs, run_sweep, scalars

ONE_CYCLE = ["--lr_scheduler", "OneCycleLR", "--lr_scheduler.max_lr", "0.2", "--lr_scheduler_interval", "step"]
WARMUP_COSINE = ["--lr_scheduler", "lit_momentum.schedules.Warmup", "--lr_scheduler.steps", "4",
                 "--lr_scheduler.then", "CosineAnnealingLR", "--lr_scheduler.then.T_max", "16",
                 "--lr_scheduler_interval", "step"]
STEPS = 20  # debug.yaml: 5 epochs of 4 batches


def f32(values: list[float]) -> list[float]:
    """As TensorBoard stores them."""
    return torch.tensor(values, dtype=torch.float32).tolist()


def expected(schedule: list[str], optimizer: str = "sgd", lr: float = 1e-5, momentum: float = 0.9,
             length: int = STEPS, steps: int = STEPS, per_epoch: int = 1) -> tuple[list[float], list[float]]:
    """What PyTorch's scheduler sets, step by step, on an optimizer of these settings (stepped every ``per_epoch``
    steps): the lr and momentum of each of ``steps`` steps."""
    options = dict(zip(schedule[2::2], schedule[3::2]))
    name = schedule[1]
    if name == "OneCycleLR":
        opt = stand_in(optimizer, lr, momentum)
        scheduler = OneCycleLR(opt, float(options["--lr_scheduler.max_lr"]), total_steps=length)
    else:
        opt = stand_in(optimizer, lr, momentum)
        scheduler = Warmup(opt, int(options["--lr_scheduler.steps"]),
                           lambda o: CosineAnnealingLR(o, int(options["--lr_scheduler.then.T_max"])))
    lrs, moms = [], []
    for step in range(steps):
        lr_now, m_now = group_values(opt)
        lrs.append(lr_now)
        moms.append(m_now)
        if (step + 1) % per_epoch == 0:
            scheduler.step()
    return lrs, moms


@pytest.mark.parametrize("flavour", [dict(momentum=0.9), dict(momentum=0.9, nesterov=True),
                                     dict(momentum=0.5, dampening=0.3, weight_decay=1e-2)], ids=str)
def test_a_one_cycle_drives_the_hand_written_rule_as_it_drives_torch_sgd(flavour: dict) -> None:
    """Step by step, to the bit: the momentum the one-cycle sets each step reaches the hand-written rule. The
    control: a one-cycle that does not cycle the momentum on ours differs."""
    def train(opt_class: type, cycle: bool) -> list[torch.Tensor]:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(8, 8), nn.Sigmoid(), nn.Linear(8, 1))
        opt = opt_class(net.parameters(), lr=0.01, **flavour)
        scheduler = OneCycleLR(opt, max_lr=0.5, total_steps=30, cycle_momentum=cycle)
        gen = torch.Generator().manual_seed(1)
        for _ in range(30):
            x, y = torch.randn(16, 8, generator=gen), torch.randn(16, 1, generator=gen)
            opt.zero_grad()
            nn.functional.mse_loss(net(x), y).backward()
            opt.step()
            scheduler.step()
        return [p.detach() for p in net.parameters()]

    ref = train(torch.optim.SGD, cycle=True)
    assert all(torch.equal(a, b) for a, b in zip(ref, train(HandWrittenSGD, cycle=True)))
    assert not all(torch.equal(a, b) for a, b in zip(ref, train(HandWrittenSGD, cycle=False)))


def test_warmup_of_zero_steps_is_its_schedule_alone() -> None:
    """``Warmup(steps=0, then=X)``, the start of a warmup-length axis, is X: the same lr at every step; without
    ``then`` the lr stays where the warmup ends."""
    opt = stand_in("sgd", 0.1, 0.9)
    warmup = Warmup(opt, 2, start_factor=0.5)
    lrs = []
    for _ in range(5):
        lrs.append(group_values(opt)[0])
        warmup.step()
    assert [round(v, 12) for v in lrs] == [0.05, 0.075, 0.1, 0.1, 0.1]
    a, b = stand_in("sgd", 0.1, 0.9), stand_in("sgd", 0.1, 0.9)
    warm, cosine = Warmup(a, 0, lambda o: CosineAnnealingLR(o, 10)), CosineAnnealingLR(b, 10)
    for _ in range(12):
        assert group_values(a) == group_values(b)
        warm.step()
        cosine.step()


@pytest.mark.parametrize("variant", [
    ["--model.momentum_impl", "manual", *ONE_CYCLE],
    ["--model.momentum_impl", "builtin", *ONE_CYCLE],
    ["--model.optimizer", "adam", *ONE_CYCLE],
    ["--model.momentum_impl", "manual", *WARMUP_COSINE],
], ids=["manual-onecycle", "builtin-onecycle", "adam-onecycle", "manual-warmup-cosine"])
def test_train_py_logs_the_schedule_pytorch_sets(tiny: list[str], tmp_path: Path, variant: list[str],
                                                 request: pytest.FixtureRequest) -> None:
    """train/lr and train/momentum at every step are what PyTorch's scheduler sets (one-cycle: lr and momentum, or
    Adam's beta1, cycled; OneCycleLR's total_steps taken from the run); hand-written and built-in momentum train the
    same to the bit under a one-cycle. The run's name leaves out what the scheduler sets and names its options."""
    train_main([*tiny, *variant, "--model.lr", "0.05"])
    curves = scalars(run_dirs(tmp_path)[0])
    schedule = variant[2:]
    lrs, moms = expected(schedule, "adam" if "adam" in variant else "sgd", lr=0.05)
    assert [s for s, _ in curves["train/lr"]] == list(range(STEPS))
    assert [v for _, v in curves["train/lr"]] == f32(lrs)
    assert [v for _, v in curves["train/momentum"]] == f32(moms)
    assert len(set(moms)) > 1 or "Warmup" in schedule[1]  # (the one-cycle's momentum moved)
    assert run_dirs(tmp_path)[0].parent.name == TINY_DATA + "_" + {  # what the schedule sets left out, its options in
        "manual-onecycle": "manual_OneCycleLR-max_lr0.2", "builtin-onecycle": "builtin_OneCycleLR-max_lr0.2",
        "adam-onecycle": "adam_OneCycleLR-max_lr0.2",
        "manual-warmup-cosine": "manual_m0.9_lr0.05_Warmup-steps4-CosineAnnealingLR-T_max16"}[request.node.callspec.id]
    if variant[1] == "manual" and "OneCycleLR" in variant:
        train_main([*tiny, "--model.momentum_impl", "builtin", *ONE_CYCLE, "--model.lr", "0.05"])
        builtin = scalars(run_dirs(tmp_path)[0] if "builtin" in run_dirs(tmp_path)[0].parent.name
                          else run_dirs(tmp_path)[1])
        assert builtin["train/loss_step"] == curves["train/loss_step"]


def test_an_epoch_schedule_steps_once_per_epoch(tiny: list[str], tmp_path: Path) -> None:
    """Stepped after each epoch, once (Lightning steps it; the hand-written run steps it at the same place)."""
    for impl in ("manual", "builtin"):
        train_main([*tiny, "--model.momentum_impl", impl, "--lr_scheduler", "MultiStepLR",
                    "--lr_scheduler.milestones", "[1,3]", "--lr_scheduler.gamma", "0.1", "--model.lr", "0.1"])
    for run in run_dirs(tmp_path):
        lrs = [v for _, v in scalars(run)["train/lr"]]
        assert lrs == f32([0.1] * 4 + [0.1 * 0.1] * 8 + [0.1 * 0.1 * 0.1] * 8), run.parent.name


def test_a_run_continued_mid_schedule_is_the_uninterrupted_one(tiny: list[str], tmp_path: Path) -> None:
    """Stopped after 2 of 5 epochs of a warmup-then-cosine and continued: weights, velocities, the scheduler's state
    and every logged lr and loss equal the straight run's, bit for bit."""
    args = ["--model.momentum_impl", "manual", *WARMUP_COSINE, "--model.lr", "0.1", "--checkpoint.every_n_epochs", "1"]
    train_main([*tiny, *args, "--trainer.default_root_dir", str(tmp_path / "straight")])
    train_main([*tiny, *args, "--trainer.default_root_dir", str(tmp_path / "stopped"), "--max_epochs", "2"])
    ckpt = run_dirs(tmp_path / "stopped")[0] / "checkpoints" / "last.ckpt"
    train_main([*tiny, "--trainer.default_root_dir", str(tmp_path / "stopped"), "--ckpt_path", str(ckpt)])
    straight, stopped = (run_dirs(tmp_path / n)[0] for n in ("straight", "stopped"))
    a, b = load_ckpt(straight / "checkpoints" / "last.ckpt"), load_ckpt(ckpt)
    assert_same_state(a, b)
    assert a["lr_schedulers"] == b["lr_schedulers"] and a["lr_schedulers"][0]["last_epoch"] == STEPS
    for tag in ("train/loss_step", "train/lr"):
        assert scalars(straight)[tag] == scalars(stopped)[tag], tag


@pytest.mark.parametrize("args, says", [
    (["--lr_scheduler", "OneCycleLR", "--lr_scheduler.max_lr", "fast"], "max_lr fast: must be float or list[float]"),
    (["--lr_scheduler", "CosineAnnealingLR"], "T_max"),
    (["--lr_scheduler", "torch.optim.lr_scheduler.ReduceLROnPlateau"], "steps on a metric"),
    (["--lr_scheduler", "ReduceLROnPlateau"], "two classes have this name"),
    (["--lr_scheduler", "OneCycleLR", "--lr_scheduler.max_lr", "0.1", "--lr_scheduler.total_steps", "3"],
     "Tried to step 4 times"),
    (["--lr_scheduler", "OneCycleLR", "--lr_scheduler.max_lr", "0.1", "--lr_scheduler.total_steps", "4"],
     "Tried to step 5 times"),  # one step short of debug.yaml's 5 epochs: it would crash after the last one
    (["--lr_scheduler", "OneCycleLR", "--lr_scheduler.max_lr", "0.1", "--lr_scheduler.total_steps", "19",
      "--lr_scheduler_interval", "step"], "Tried to step 20 times"),  # 5 epochs of 4 steps
    (["--lr_scheduler", "StepLR", "--lr_scheduler.step_size", "0"], "StepLR"),
    (["--lr_scheduler", "LinearLR", "--lr_scheduler.start_factor", "0"], "LinearLR: Starting multiplicative factor"),
    (["--lr_scheduler", "torch.optim.Adam"], "lr_scheduler"),
    (["--lr_scheduler_interval", "batch"], "lr_scheduler_interval"),
    (["--lr_scheduler", "lit_momentum.schedules.Warmup", "--lr_scheduler.steps", "3", "--lr_scheduler.then", "Nope"],
     "--model.lr_scheduler Nope: no such scheduler;"),
    (["--lr_scheduler", "lit_momentum.schedules.Warmup", "--lr_scheduler.steps", "3", "--lr_scheduler.then",
      "CosineAnnealingLR"], "--model.lr_scheduler.then CosineAnnealingLR: its option T_max has no default: give it, "
                            "--model.lr_scheduler.then.T_max VALUE"),  # (a nested scheduler: the flag as typed)
    (["--lr_scheduler", "lit_momentum.schedules.Warmup", "--lr_scheduler.steps", "3", "--lr_scheduler.then",
      "CosineAnnealingLR", "--lr_scheduler.then.T_max", "abc"], "--model.lr_scheduler.then.T_max abc: must be int"),
    (["--lr_scheduler", "lit_momentum.schedules.Warmup", "--lr_scheduler.steps", "3", "--lr_scheduler.then",
      "CosineAnnealingLR", "--lr_scheduler.then.T_maxx", "3"], "--model.lr_scheduler.then.T_maxx: "),
])
def test_bad_scheduler_options_are_one_line_and_nothing_is_written(tiny: list[str], tmp_path: Path,
                                                                 args: list[str], says: str) -> None:
    message = refusal(train_main, [*tiny, *args])
    assert says in message, message
    assert not (tmp_path / "lightning_logs").exists()


@pytest.mark.parametrize("total, interval", [("5", "epoch"), ("20", "step")])
def test_a_one_cycle_exactly_as_long_as_the_run_trains(tiny: list[str], tmp_path: Path, total: str,
                                                      interval: str) -> None:
    """The other side of the refusals above: the check walks the whole run, not one step more."""
    train_main([*tiny, "--lr_scheduler", "OneCycleLR", "--lr_scheduler.max_lr", "0.1", "--lr_scheduler.total_steps",
                total, "--lr_scheduler_interval", interval])
    assert len(scalars(run_dirs(tmp_path)[0])["train/loss"]) == 5


def test_a_one_cycle_refuses_an_lr_axis_it_would_override(tiny: list[str], tmp_path: Path) -> None:
    """OneCycleLR sets every point's lr from max_lr: --lr 0.01 0.1 would be two copies of one run."""
    from lit_momentum.sweep import main as sweep_main

    message = refusal(sweep_main, [*tiny, "--out", str(tmp_path / "s"), "--lr", "0.01", "0.1", *ONE_CYCLE])
    assert "--lr 0.01 0.1: OneCycleLR sets every point's learning rate" in message, message
    assert not (tmp_path / "s").exists()


def single(tiny: list[str], tmp_path: Path, name: str, *args: str) -> dict[str, list[tuple[int, float]]]:
    train_main([*tiny, "--trainer.default_root_dir", str(tmp_path / name), "--model.momentum_impl", "manual", *args])
    return scalars(run_dirs(tmp_path / name)[0])


@pytest.mark.parametrize("schedule, grid, point, run", [
    (ONE_CYCLE, ["--momentum", "0.9", "--weight_decay", "0", "0.01", "--seeds", "0", "1"], "*wd0.01_*seed1",
     ["--model.weight_decay", "0.01", "--seed_everything", "1"]),
    ([*WARMUP_COSINE[:2], "--lr_scheduler.steps", "2", "4", *WARMUP_COSINE[4:]],
     ["--lr", "0.05", "0.2", "--momentum", "0", "0.9"], "*steps4_*lr0.2_m0.9_seed0",
     ["--model.lr", "0.2", "--model.momentum", "0.9", "--lr_scheduler.steps", "4"]),
] + [(ONE_CYCLE, ["--momentum", "0.9", "--weight_decay", "0", "0.01", "--seeds", "0", "1", *extra], "*wd0.01_*seed1",
       ["--model.weight_decay", "0.01", "--seed_everything", "1", *extra,
        *(["--model.momentum_impl", "builtin"] if "--model.optimizer" in extra else [])]) for extra in (
    ["--model.optimizer", "adam"], ["--model.optimizer", "adamw"],  # beta1 cycled, lr from the table's host copy
    ["--precision", "bf16-true", "--model.net", "tests.probe_nets.DropoutMLP"])],  # bf16: point by point, host copies
    ids=["onecycle", "warmup-cosine-warmup-axis", "onecycle-adam", "onecycle-adamw", "onecycle-bf16"])
def test_each_grid_point_follows_its_runs_schedule(tiny: list[str], tmp_path: Path, schedule: list[str],
                                                   grid: list[str], point: str, run: list[str]) -> None:
    """A grid point's lr and momentum at every step are its train.py run's, to the bit, and its losses within 1e-5;
    the warmup's length is an outer axis. The control: another point of the grid has another schedule. Names leave
    out what the one-cycle sets (lr, momentum), as a run's do, and keep what the warmup does not."""
    run_sweep(tiny, tmp_path / "grid", *grid, *schedule)
    names = [p.name for p in (tmp_path / "grid").rglob("*") if p.is_dir() and re.search(r"seed\d+$", p.name)]
    assert names and all(bool(re.search(r"(^|_)(lr|m)\d", n)) == ("Warmup" in schedule[1]) for n in names), names
    base = [*WARMUP_COSINE[:2], *WARMUP_COSINE[4:]] if "Warmup" in schedule[1] else schedule
    one = single(tiny, tmp_path, "single", *base, *run)
    home = next(tmp_path.glob(f"grid/{point}"), None) or next(tmp_path.glob(f"grid/*/{point}"))
    mine = scalars(home)
    for tag in ("train/lr", "train/momentum"):
        assert mine[tag] == one[tag], tag
    worst = max(abs(a - b) for (_, a), (_, b) in zip(mine["train/loss_step"], one["train/loss_step"]))
    assert len(mine["train/loss_step"]) == STEPS and worst <= 1e-5, worst
    others = [scalars(p)["train/lr"] for p in home.parent.glob("*_seed0") if p != home]
    assert any(o != one["train/lr"] for o in others) or "OneCycleLR" in schedule


def test_a_grid_continued_mid_schedule_is_the_uninterrupted_one(tiny: list[str], tmp_path: Path) -> None:
    """2 of 5 epochs of a one-cycle, then continued: the checkpoint (weights, velocities, every point's scheduler)
    and summary.csv equal the straight grid's; a point frozen on divergence stays frozen through its schedule."""
    grid = [*tiny, "--checkpoint.every_n_epochs", "1", "--momentum", "0.9", "--weight_decay", "0", "0.01",
            *ONE_CYCLE, "--lr_scheduler.total_steps", str(STEPS)]
    run_sweep(grid, tmp_path / "straight")
    run_sweep(grid, tmp_path / "stopped", "--max_epochs", "2")
    run_sweep(grid, tmp_path / "stopped", "--ckpt_path", str(tmp_path / "stopped" / "last.ckpt"))
    # a one-cycle laid over the first 2 epochs' steps cannot be trained further: said before training
    run_sweep([*tiny, *ONE_CYCLE], tmp_path / "short", "--max_epochs", "2")
    from lit_momentum.sweep import main as sweep_main

    message = refusal(sweep_main, [*tiny, *ONE_CYCLE, "--ckpt_path", str(tmp_path / "short" / "last.ckpt")])
    assert "OneCycleLR (as continued from its checkpoint): Tried to step 9 times" in message, message
    a, b = (load_ckpt(tmp_path / d / "last.ckpt") for d in ("straight", "stopped"))
    assert_same_state(a, b)
    assert a["lr_schedulers"] == b["lr_schedulers"]
    assert (tmp_path / "straight" / "summary.csv").read_text() == (tmp_path / "stopped" / "summary.csv").read_text()


def test_a_frozen_point_stays_frozen_under_its_schedule(tiny: list[str], tmp_path: Path) -> None:
    """A point that diverges in a warmup is frozen (weights 0); the warmup raising its lr must not revive it."""
    run_sweep(tiny, tmp_path / "g", "--lr", "0.1", "1e6", "--momentum", "0.9", *WARMUP_COSINE)
    state = load_ckpt(tmp_path / "g" / "last.ckpt")
    assert state["state_dict"]["diverged_epoch"].tolist()[1] >= 0
    assert all(float(v[1].abs().max()) == 0 for k, v in state["state_dict"].items() if k.startswith("net.params"))
    # its loss curve ends at its last step within the bound, its schedule's curves at the end of that epoch
    (run,) = (tmp_path / "g").glob("1_*")
    curves = scalars(run)
    loss, lr, momentum = ([s for s, _ in curves[tag]] for tag in ("train/loss_step", "train/lr", "train/momentum"))
    assert lr == momentum == list(range(len(lr))) and len(lr) % 4 == 0  # (4 steps an epoch)
    assert loss == lr[: len(loss)] and len(loss) < len(lr), (loss, lr)


def test_build_scheduler_fills_a_one_cycles_length() -> None:
    opt = stand_in("sgd", 0.1, 0.9)
    scheduler = build_scheduler({"class_path": "OneCycleLR", "init_args": {"max_lr": 1.0}}, opt, 7)
    assert scheduler.total_steps == 7


@pytest.mark.parametrize("momentum, dampening", [(0.9, 0.0), (0.5, 0.0), (0.5, 0.5), (0.0, 0.0)])
def test_effective_step_of_keeps_the_cycled_runs_lr_over_one_minus_m_and_resumes(momentum: float,
                                                                                 dampening: float) -> None:
    """EffectiveStepOf(OneCycleLR) at a constant momentum m and dampening d: this run's effective step lr (1 - d) /
    (1 - m) is the cycled one-cycle's lr(t) / (1 - m(t)) at every step (to rounding: one division and one product);
    its state (the inner one-cycle's too) reloads exactly."""
    from lit_momentum.schedules import EffectiveStepOf

    config = {"class_path": "lit_momentum.schedules.EffectiveStepOf",
              "init_args": {"schedule": {"class_path": "OneCycleLR", "init_args": {"max_lr": 0.3}}}}
    ours, ref = stand_in("sgd", 0.01, momentum, dampening=dampening), stand_in("sgd", 0.01, 0.9)
    scheduler, cycle = build_scheduler(config, ours, 12), OneCycleLR(ref, 0.3, total_steps=12)
    assert isinstance(scheduler, EffectiveStepOf)
    for step in range(12):
        (lr, m), (ref_lr, ref_m) = group_values(ours), group_values(ref)
        effective, wanted = lr * (1 - dampening) / (1 - m), ref_lr / (1 - ref_m)
        assert m == momentum and abs(effective - wanted) <= 1e-12 * wanted, step
        if step == 5:  # a continued run, in Lightning's order: built anew, then the saved states loaded
            again = stand_in("sgd", 0.01, momentum, dampening=dampening)
            copy = build_scheduler(config, again, 12)
            again.load_state_dict(ours.state_dict())
            copy.load_state_dict(scheduler.state_dict())
            assert group_values(again) == group_values(ours)
            ours, scheduler = again, copy
        scheduler.step()
        cycle.step()


@pytest.mark.slow
def test_the_quick_schedule_study_draws_both_questions(tmp_path: Path) -> None:
    """The study through its command: every contender in the table; the cycled run's momentum moves, the matched
    runs' stays at their own; the figure drawn."""
    from PIL import Image

    from lit_momentum.schedule_study import CONTENDERS
    from lit_momentum.schedule_study import main as study_main

    study_main(["--out", str(tmp_path), "--quick", "--trainer.enable_progress_bar", "false"])
    with open(tmp_path / "schedules.csv") as f:
        table = list(csv.DictReader(f))
    assert len([r for r in table if r["part"] == "one-cycle"]) == 5 and len(table) == 11
    cycled = scalars(next((tmp_path / "mlp" / "cycled").glob("*max_lr1_*seed0")))["train/momentum"]
    matched = scalars(next((tmp_path / "mlp" / "matched").glob("*max_lr1_*_m0.9_*seed0")))["train/momentum"]
    assert len({v for _, v in cycled}) > 10 and {v for _, v in matched} == set(f32([0.9]))
    assert set(CONTENDERS) == {p.name for p in (tmp_path / "mlp").iterdir()} - {"constant_lr", "cosine_decay"}
    with Image.open(tmp_path / "schedules_mnist1d.png") as img:
        assert img.width > 800


class FirstGroupLR(torch.optim.lr_scheduler.LRScheduler):
    """A researcher's scheduler that reads the first param group only (a halving of its lr each step): right for a
    run, wrong for any group but the first of a shared stand-in."""

    def get_lr(self) -> list[float]:
        return [self.base_lrs[0] * 0.5**self.last_epoch] * len(self.optimizer.param_groups)


SHARED = {  # schedules one stand-in with a group per setting steps as each setting's own stand-in
    "onecycle": {"class_path": "OneCycleLR", "init_args": {"max_lr": 0.3}},
    "cosine": {"class_path": "CosineAnnealingLR", "init_args": {"T_max": 7}},
    "cyclic": {"class_path": "CyclicLR", "init_args": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3}},
    "warmup-cosine": {"class_path": "lit_momentum.schedules.Warmup",
                      "init_args": {"steps": 3,
                                    "then": {"class_path": "CosineAnnealingLR", "init_args": {"T_max": 9}}}},
    "sequential": {"class_path": "lit_momentum.schedules.SequentialLR", "init_args": {
        "schedulers": [{"class_path": "LinearLR", "init_args": {"start_factor": 0.1, "total_iters": 4}},
                       {"class_path": "StepLR", "init_args": {"step_size": 2, "gamma": 0.7}}], "milestones": [4]}},
    "effective-step": {"class_path": "lit_momentum.schedules.EffectiveStepOf",  # (of each group's own cosine)
                       "init_args": {"schedule": {"class_path": "CosineAnnealingLR", "init_args": {"T_max": 9}}}},
}


@pytest.mark.parametrize("name, optimizer", [(name, optimizer) for name in SHARED for optimizer in ("sgd", "adam")
                                             if (name, optimizer) != ("effective-step", "adam")])  # (SGD's only)
def test_one_stand_in_with_a_group_per_setting_is_each_settings_own(name: str, optimizer: str) -> None:
    """The grid steps one scheduler over one stand-in with a param group per setting (32 schedulers stepped apart
    cost 75 us a step): each group's lr and momentum equal its own stand-in's, to the bit, at every step and after
    a reload (in Lightning's order: built anew, the states loaded)."""
    from lit_momentum.schedules import shares_groups, stand_in_groups

    settings = [dict(lr=0.01, momentum=0.9), dict(lr=0.05, momentum=0.0),
                dict(lr=0.002, momentum=0.5, weight_decay=1e-3)]
    assert shares_groups(SHARED[name])
    shared = stand_in_groups(optimizer, settings)
    scheduler = build_scheduler(SHARED[name], shared, 12)
    apart = [stand_in(optimizer, **s) for s in settings]
    schedulers = [build_scheduler(SHARED[name], o, 12) for o in apart]
    for step in range(12):
        assert [group_values(shared, k) for k in range(len(settings))] == [group_values(o) for o in apart], step
        if step == 5:
            again = stand_in_groups(optimizer, settings)
            copy = build_scheduler(SHARED[name], again, 12)
            again.load_state_dict(shared.state_dict())
            copy.load_state_dict(scheduler.state_dict())
            shared, scheduler = again, copy
        scheduler.step()
        for s in schedulers:
            s.step()
    if name not in ("onecycle", "cyclic"):  # (the control; those two set every setting's lr and momentum alike)
        assert len({group_values(o) for o in apart}) == len(settings)


def test_a_researchers_scheduler_gets_a_stand_in_per_setting(tiny: list[str], tmp_path: Path) -> None:
    """A scheduler class of one's own may read one param group only: the grid gives it a stand-in per setting (so
    each point still has its run's lr), also inside a Warmup; and a grid checkpoint written with a scheduler per
    setting (before December 2026) continues in that layout, the same values step by step."""
    from lit_momentum.schedules import shares_groups
    from lit_momentum.sweep.points import make_grid
    from lit_momentum.sweep.schedules import PointSchedules

    run_sweep(tiny, tmp_path / "grid", "--lr", "0.05", "0.2", "--lr_scheduler", "tests.test_schedules.FirstGroupLR",
              "--lr_scheduler_interval", "step")
    one = single(tiny, tmp_path, "single", "--model.lr", "0.2", "--lr_scheduler", "tests.test_schedules.FirstGroupLR",
                 "--lr_scheduler_interval", "step")
    point = scalars(next(tmp_path.glob("grid/*lr0.2_m0.9_seed0")))
    assert point["train/lr"] == one["train/lr"] and one["train/lr"][1][1] == f32([0.1])[0]
    mine = {"class_path": "tests.test_schedules.FirstGroupLR", "init_args": {}}
    assert not shares_groups(mine)
    assert not shares_groups({"class_path": "lit_momentum.schedules.Warmup", "init_args": {"steps": 2, "then": mine}})

    class Settings:  # the grid optimizer's side: the per-point values handed to it
        def set_points(self, name: str, values: list[float]) -> None:
            self.__dict__[name] = list(values)

    points = make_grid(lr=[0.01, 0.1], momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0, beta2=0.999,
                       eps=1e-8, seeds=[0])
    old, new = (PointSchedules(SHARED["cosine"], "sgd", points, 10, lambda: [True, True]) for _ in range(2))
    old.build(together=False)  # the layout of a checkpoint from before: a stand-in and a scheduler per setting
    assert len(new.stand_ins) == 1 and len(old.stand_ins) == 2
    old.optimizer, new.optimizer = Settings(), Settings()
    for _ in range(3):
        old.step()
    new.load_state_dict(old.state_dict())
    assert len(new.stand_ins) == 2  # continued in the checkpoint's layout
    for _ in range(3):  # (steps 3 to 5 of a cosine over 7: every lr still its own)
        assert new.optimizer.__dict__ == old.optimizer.__dict__ and len(set(new.optimizer.lr)) == 2
        old.step()
        new.step()


def test_a_one_cycle_inside_a_warmup_or_a_sequence_is_laid_over_its_stretch_of_the_run() -> None:
    """Warmup and SequentialLR hand the run's length on: a OneCycleLR after a 3-step warmup of a 12-step run spans 9
    steps, one after milestone 4 spans 8 (it was refused: "this run has none"); without a length it still is."""
    cycle = {"class_path": "OneCycleLR", "init_args": {"max_lr": 0.3}}
    warm = {"class_path": "lit_momentum.schedules.Warmup", "init_args": {"steps": 3, "then": cycle}}
    seq = {"class_path": "lit_momentum.schedules.SequentialLR", "init_args": {
        "schedulers": [{"class_path": "LinearLR", "init_args": {"total_iters": 4}}, cycle], "milestones": [4]}}
    for schedule, span in ((warm, 9), (seq, 8)):
        scheduler = build_scheduler(schedule, stand_in("sgd", 0.01, 0.9), 12)
        assert scheduler._schedulers[1].total_steps == span
        with pytest.raises(ValueError, match="this run has none"):
            build_scheduler(schedule, stand_in("sgd", 0.01, 0.9), None)


def test_train_py_runs_a_warmup_then_one_cycle(tiny: list[str], tmp_path: Path) -> None:
    """Through the entry point: 2 warmup steps, then a one-cycle over the run's other 18 steps, peaking near max_lr
    (between steps) and ending near 0."""
    logged = single(tiny, tmp_path, "run", "--lr_scheduler", "lit_momentum.schedules.Warmup", "--lr_scheduler.steps",
                    "2", "--lr_scheduler.then", "OneCycleLR", "--lr_scheduler.then.max_lr", "0.2",
                    "--lr_scheduler_interval", "step")
    lrs = [v for _, v in logged["train/lr"]]
    peak = lrs.index(max(lrs))  # the one-cycle's peak: 30 % into its 18 steps, after the 2 of the warmup
    assert len(lrs) == STEPS and 0.19 < max(lrs) <= f32([0.2])[0] and peak in (7, 8) and lrs[-1] < 1e-4, lrs
