"""The command ``python -m lit_momentum.sweep``: plan the units, train this process's share, merge the results.

Every process of a sweep runs the same command. Each checks every unit's settings before anything is written, finds
(or writes) the sweep's plan in ``--out``, and trains units one after the other, its own share first, then any unit
nobody has finished or holds, each continuing from its newest checkpoint if it has one. The process that finds every
unit finished builds the combined outputs (``--merge`` does it on demand). Under ``--trainer.strategy ddp`` the
processes are replicas of one grid instead.
"""

import gc
import os
import sys
from argparse import ArgumentError
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities import rank_zero as fabric_rank_zero
from lightning.pytorch.utilities import rank_zero_only

from lit_momentum.arguments import find_option, normalized, one_line, print_help, self_contained
from lit_momentum.command import build, close_distributed, fit
from lit_momentum.runs import check_place, claim_dir, next_version_dir, read_checkpoint
from lit_momentum.schedules import overridden, schedule_config
from lit_momentum.sweep.cli import HELP, CheckedOnly, SweepCLI, config_axes, split_args
from lit_momentum.sweep.merge import COLUMNS, curves, load_result, merge, save_result, spelled, summarize
from lit_momentum.sweep.plan import (
    PLAN_FILE,
    claim_plan,
    detect_share,
    foreign_files,
    identity_difference,
    locked,
    make_units,
    plan_units,
    read_plan,
    sweep_identity,
    unit_dir,
    unit_record,
    write_plan,
)
from lit_momentum.terminal import quiet
from lit_momentum.threads import shared_machine

__all__ = ["COLUMNS", "main"]
PER_PROCESS = ("--out", "--share", "--ckpt_path")  # not kept in the plan's command: each process's own
SHORT_FORM = (*PER_PROCESS, "--trainer.", "--checkpoint.")  # what may be typed with the short form
OUT_ENV = "LIT_MOMENTUM_SWEEP_OUT"  # the directory rank 0 chose, for the DDP replicas Lightning launches


def check(args: list[str], outer: dict[str, Any]) -> SweepCLI:
    """Parse one combination's settings and build its data, as far as the memory check: bad input stops here."""
    try:
        SweepCLI(args, None, outer=outer, check_only=True)
    except ValueError as err:
        if isinstance(err.__cause__, CheckedOnly):
            return err.__cause__.args[0]
        raise
    raise AssertionError("the check did not run")  # pragma: no cover


def budget(cfg: Any) -> list[int]:
    """How long each grid trains: ``[max_epochs, max_steps]`` (a finished grid with another budget trains on only
    when asked, with --ckpt_path)."""
    return [cfg.trainer.max_epochs if cfg.trainer.max_epochs is not None else -1,
            cfg.trainer.max_steps if cfg.trainer.max_steps is not None else -1]


def sweep_home(ckpt: str) -> Path:
    """The sweep directory a checkpoint belongs to: its own (one unit) or the one above ``units/<unit>/``."""
    path = Path(ckpt).resolve().parent
    return path.parents[1] if (path.parents[1] / PLAN_FILE).is_file() and path.parent.name == "units" else path


def newest_checkpoint(home: Path) -> Path | None:
    """A unit's checkpoint to continue from: ``last.ckpt`` or Lightning's SLURM requeue checkpoint, the later."""
    found = [p for p in [home / "last.ckpt", *home.glob("hpc_ckpt_*.ckpt")] if p.is_file()]
    return max(found, key=lambda p: read_checkpoint(str(p)).global_step, default=None)


def prepare(argv: list[str]) -> dict[str, Any]:
    """Everything about the sweep before anything is written: options, units, this process's share, the directory."""
    own, rest, outer = split_args(argv)
    rest, outer = config_axes(normalized(rest), outer)
    replicas = (find_option(rest, "--trainer.strategy") or "").startswith(("ddp", "fsdp"))
    share, shares = (0, 1) if replicas else detect_share(own["--share"])
    if shares > 1:  # every share process logs and writes its own units
        rank_zero_only.rank = fabric_rank_zero.rank_zero_only.rank = 0
    ckpt = find_option(rest, "--ckpt_path")
    rest = [a for i, a in enumerate(rest) if not (a.startswith("--ckpt_path") or rest[i - 1:i] == ["--ckpt_path"])]
    if ckpt and not read_checkpoint(ckpt).grid:
        raise ValueError(f"--ckpt_path {ckpt}: this checkpoint is python train.py's; continue it with python train.py")
    devices = find_option(rest, "--trainer.devices")
    if shares > 1 or (devices not in (None, "1", "auto") and not replicas):
        if devices not in (None, "1", "auto") and shares == 1:
            raise ValueError(f"--trainer.devices {devices}: a sweep trains one grid per process; spread it over "
                             f"processes with torchrun --nproc_per_node {devices} (or srun), or train replicas of one "
                             f"grid with --trainer.strategy ddp")
        local = int(os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID", 0)))
        on_gpu = find_option(rest, "--trainer.accelerator") in ("gpu", "cuda") or (
            find_option(rest, "--trainer.accelerator") in (None, "auto") and torch.cuda.is_available())
        rest.append(f"--trainer.devices=[{local}]" if on_gpu else "--trainer.devices=1")
    combos = make_units(outer, ["all"], 1)
    checked = [check([*rest, *unit.args()], dict(unit.combo) or None) for unit in combos]
    settings = list(dict.fromkeys(p.setting.removeprefix(combos[0].prefix) for p in checked[0].points))
    cfg = checked[0].config
    identity = sweep_identity(cfg, own["--threshold"], own["--metric"])
    out = Path(own["--out"]) if own["--out"] else None
    if ckpt:
        home = sweep_home(ckpt)
        if out and out.resolve() != home:
            raise ValueError(f"--out {out}: a resumed sweep continues in its checkpoint's directory {home}")
        out = home
    if replicas and rank_zero_only.rank > 0 and os.environ.get(OUT_ENV):  # a DDP replica: its rank 0 chose
        out = Path(os.environ[OUT_ENV])
    elif out is None:
        if shares > 1:
            raise ValueError(f"{shares} processes share one sweep: give them its directory, --out DIR")
        out = next_version_dir(Path(cfg.trainer.default_root_dir or ".") / "lightning_logs" / "sweep")
    check_place(out, "--out")
    foreign = foreign_files(out)  # first, then the plan: a plan written in between is read (the same sweep joins)
    plan = read_plan(out) if out.is_dir() else None
    units = plan_units(plan) if plan else make_units(outer, settings, shares)  # fixed once the plan is written
    if plan is None and foreign and rank_zero_only.rank == 0:  # a sweep's own plan is checked in join
        raise ValueError(f"--out {out} is not empty: it holds other files, no sweep; choose a new directory")
    if replicas and len(units) > 1:
        raise ValueError("--trainer.strategy ddp trains replicas of one grid: no outer axes with it")
    m = cfg.model
    replaced = overridden(m.lr_scheduler, m.optimizer, checked[0].point_settings()[0], 1000) if not ckpt else []
    return dict(own=own, rest=rest, outer=outer, units=units, share=share, shares=shares, out=out, cfg=cfg,
                identity=identity, replicas=replicas, ckpt=ckpt, paths=list(dict.fromkeys(c.path for c in checked)),
                replaced=replaced)


def join(out: Path, plan: dict[str, Any], p: dict[str, Any]) -> list[Any]:
    """The sweep's units, for a process that found (or wrote) ``plan`` in ``out``: refused, in one line, if its
    command means another sweep (naming the first option that differs), or another budget than the sweep's (unless
    asked to train on, ``--ckpt_path``: then the plan takes the new budget, and a unit trained to the old one is
    unfinished until trained on). The one place every process passes: starting, joining a plan written a moment
    ago, continuing."""
    differs = identity_difference(plan["identity"], p["identity"])
    if differs:
        raise ValueError(f"--out {out} holds another sweep ({differs}): every process of a sweep needs the same "
                         f"options; choose a new directory, or continue that sweep with its own command")
    units, now = plan_units(plan), budget(p["cfg"])
    was = plan.get("budget") or next((r["budget"] for r in (load_result(unit_dir(out, u, units)) for u in units)
                                      if r), now)  # (a plan from before budgets were kept: its finished units')
    if was != now and not p["ckpt"]:
        raise ValueError(f"--out {out} is not empty: it holds this sweep, trained to {spelled(was)}; train it "
                         f"further with --ckpt_path {unit_dir(out, units[0], units)}/last.ckpt, or choose a new "
                         f"directory")
    if plan.get("budget") != now:  # the sweep as it now stands: what the merge counts as finished, and its command
        write_plan(out, {**plan, "budget": now, "command": p["command"]})
    return units


def work_order(units: list[Any], share: int, shares: int) -> list[Any]:
    """The units in the order this process tries them: its own share first (unit k is share k mod K's), then the
    others (a process that finds one unfinished and free trains it: a resubmitted or extra process continues)."""
    mine = units[share::shares]
    return [*mine, *(u for u in units if u not in mine)]


def train_share(p: dict[str, Any], argv: list[str]) -> None:
    """Train every unit nobody has finished or holds, this process's share first, each from its newest checkpoint if
    it has one, and save each one's rows."""
    out, units, length = p["out"], p["units"], budget(p["cfg"])
    for unit in work_order(units, p["share"], p["shares"]):
        home = unit_dir(out, unit, units)
        home.mkdir(parents=True, exist_ok=True)
        if finished_unit(home, length):
            continue
        with locked(home / ".lock") if rank_zero_only.rank == 0 else nullcontext(True) as mine:
            if not mine:  # another process trains it right now
                continue
            if finished_unit(home, length):  # it may have finished between the look above and the lock
                continue
            ckpt = newest_checkpoint(home)  # every DDP replica finds the same: none is written before training
            args = [*p["rest"], *unit.args(), *(["--ckpt_path", str(ckpt)] if ckpt else [])]
            cli, resume = build(SweepCLI, args, out=out, home=home, outer=dict(unit.combo) or None,
                                share=p["shares"] > 1)
            fit(cli, resume, argv)
            if not cli.trainer.is_global_zero:
                continue
            if len(units) == 1 and not any(e < 0 for e in cli.model.diverged_epoch.tolist()):
                epoch = int(cli.model.diverged_epoch.max())
                sys.exit(f"error: every grid point diverged (the last at epoch {epoch}: loss above "
                         f"{cli.model.hparams.bound:g} or not finite): lower --lr")
            rows = summarize(cli.model, p["own"]["--threshold"], dict(unit.combo))
            save_result(home, {"budget": length, "share": f"{p['share'] + 1}/{p['shares']}", "rows": rows,
                               "curves": curves(cli.model), "threads": torch.get_num_threads()})
        del cli
        gc.collect()


def finished_unit(home: Path, length: list[int]) -> bool:
    """Whether the unit in ``home`` has its result for this budget."""
    return (load_result(home) or {}).get("budget") == length


def stored_command(argv: list[str]) -> list[str]:
    """The short form, ``--ckpt_path`` of a sweep's checkpoint with at most Trainer and checkpoint options (a new
    budget): the command its plan keeps (every option it was started with), to stand before the options typed now.
    A command with a config or a grid, model or data option is a whole command: it stands alone, as it always did."""
    ckpt = find_option(argv, "--ckpt_path")
    names = [a.partition("=")[0] for a in normalized(argv) if a.startswith("--")]
    if not ckpt or not Path(ckpt).is_file() or not all(n.startswith(SHORT_FORM) for n in names):
        return []
    plan = read_plan(sweep_home(ckpt))
    return list(plan.get("command", [])) if plan else []


def main(argv: list[str] | None = None) -> None:
    quiet()
    argv = sys.argv[1:] if argv is None else argv
    if "--help" in argv or "-h" in argv:
        print_help(HELP)
        return
    if "--merge" in argv:
        own = split_args(argv)[0]
        out = Path(own["--out"] or sweep_home(find_option(argv, "--ckpt_path") or "."))
        plan = read_plan(out)
        if plan is None:
            sys.exit(f"error: --merge: {out} holds no sweep ({PLAN_FILE} is missing); give its --out DIR")
        merge(out, plan, own["--metric"])
        return
    try:
        full = [*stored_command(argv), *argv]  # (the short form: the plan's command first)
        p = {**prepare(full), "command": self_contained(full, PER_PROCESS)}
    except (ValueError, ArgumentError) as err:  # bad input: one line, before anything is written
        sys.exit("error: " + one_line(err))
    out = p["out"]
    if rank_zero_only.rank == 0:
        if not out.exists() and out.name.startswith("version_"):
            out = p["out"] = claim_dir(out)  # atomically: a sweep started at the same moment gets the next version
        plan = {"identity": p["identity"], "outer": p["outer"], "shares": p["shares"],
                "units": [unit_record(u) for u in p["units"]], "budget": budget(p["cfg"]),
                "command": p["command"]}
        claim_plan(out, plan)  # unless another process wrote it first (a moment ago, or before)
        try:
            p["units"] = join(out, read_plan(out), p)
        except ValueError as err:
            sys.exit(f"error: {err}")
        for path in p["paths"]:  # how each network is trained (vmap, point by point), once
            print(f"grid: {path}", file=sys.stderr)
        if p["replaced"]:  # what the scheduler replaces (the names leave it out)
            name = schedule_config(p["cfg"].model.lr_scheduler)["class_path"].rpartition(".")[2]
            print(f"lr_scheduler: {name} sets the points' {' and '.join(r.split()[0] for r in p['replaced'])} itself "
                  f"(the first point: {', '.join(p['replaced'])}); the run names leave it out",
                  file=sys.stderr)
    units, length = p["units"], budget(p["cfg"])
    if p["ckpt"] and all(finished_unit(unit_dir(out, u, units), length) for u in units):  # nothing left to train
        epochs = budget(p["cfg"])[0]
        print(f"--ckpt_path {p['ckpt']}: this sweep has finished its {epochs} epochs; to train it further, give a "
              f"larger budget: python -m lit_momentum.sweep --ckpt_path {p['ckpt']} --max_epochs {2 * epochs}",
              file=sys.stderr)
        return
    if p["replicas"]:
        os.environ[OUT_ENV] = str(out)  # for the DDP replicas Lightning launches with this same command
    with shared_machine(p["shares"] if p["own"]["--share"] else 1):  # --share I/K by hand: K processes here
        train_share(p, argv)
    if rank_zero_only.rank == 0:
        merge(out, read_plan(out), p["own"]["--metric"], quiet_if_missing=True)
    close_distributed()
