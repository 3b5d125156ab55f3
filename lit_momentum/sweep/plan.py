"""What a sweep trains and who trains it: outer axes, units and shares.

The grid axes (lr, momentum, dampening, nesterov, weight decay, seeds) live inside one batched model. Any other
option given several values is an **outer axis** (``--data.batch_size 32 128``, ``--model.net.hidden [64] [100,100]``,
or a list in a config where the option takes one value): the sweep trains one grid per combination of outer values.
A **unit** is what one Trainer trains: a combination's whole grid, or a part of it (whole settings with all their
seeds) when there are more processes than combinations. The units are fixed when the sweep's plan is written
(``plan.json``, by the first process to start) and never change after. A **share** is where a process starts: unit k
is first tried by process k mod K; then every process takes any unit nobody has finished or holds (a per-unit lock),
so a resubmitted array task, a second ``torchrun`` with another process count, or a single process continue the same
sweep. Every point sees the same batches and the same arithmetic whatever the split, so its result does not depend
on it.

Processes learn their share from ``--share I/K``, or from their launcher: a SLURM job array
(``SLURM_ARRAY_TASK_ID`` of ``SLURM_ARRAY_TASK_COUNT``), tasks started by ``srun`` (``SLURM_PROCID`` of
``SLURM_NTASKS``), ``torchrun`` (``RANK`` of ``WORLD_SIZE``); an array of jobs of several tasks combines both.
"""

import fcntl
import itertools
import json
import math
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

from lit_momentum.sweep.axes import AXES, sort_key

GRID_OPTIONS = {*AXES, "bound", "prefix", "only"}  # the grid's own model options: never outer axes
LIST_OPTIONS = {"model.net.hidden"}  # options whose single value is itself a list: their axis is a list of lists
PLAN_FILE = "plan.json"
TMP_PREFIX = f".{PLAN_FILE}."  # the plan as it is written, before it appears whole
# the Trainer's options that change a row of summary.csv (besides the model's and the data's, and the budget)
# the Trainer's options that cannot change a row: every other one (accumulate_grad_batches, gradient clipping,
# limit_*_batches, overfit_batches, precision, callbacks, ... and any option a later Lightning adds) is in the identity
NOT_ROW_OPTIONS = ("devices", "num_nodes", "logger", "enable_progress_bar", "enable_model_summary",
                   "enable_checkpointing", "default_root_dir", "max_epochs", "max_steps", "max_time", "profiler",
                   "num_sanity_val_steps", "detect_anomaly", "barebones", "enable_autolog_hparams", "model_registry",
                   "inference_mode", "fast_dev_run")


def outer_axis(option: str, value: Any) -> bool:
    """Whether a config value of a data or model option is an outer axis: a list where the option takes one value
    (a list of lists for an option that takes a list)."""
    if not isinstance(value, list):
        return False
    return option not in LIST_OPTIONS or all(isinstance(v, list) for v in value)


def split_config(text: str, where: str) -> tuple[dict[str, list], str]:
    """A config's outer axes (``data.X`` / ``model.X`` / ``model.net.X`` given as lists), and the config without
    them."""
    config = yaml.safe_load(text) or {}
    axes: dict[str, list] = {}
    net = (config.get("model") or {}).get("net") if isinstance(config.get("model"), dict) else None
    for group, options in (("data", config.get("data")), ("model", config.get("model")), ("model.net", net)):
        if not isinstance(options, dict):
            continue
        inner = options.get("init_args") if isinstance(options.get("init_args"), dict) else options
        for key in list(inner):
            if key in ("class_path", "net") or (group == "model" and key in GRID_OPTIONS):
                continue
            if outer_axis(f"{group}.{key}", inner[key]):
                axes[f"{group}.{key}"] = check_values(f"{group}.{key}", inner.pop(key), where)
    return axes, yaml.safe_dump(config, sort_keys=False)


def check_values(option: str, values: list, where: str) -> list:
    """An outer axis needs two values or more, each once."""
    if len(values) < 2:
        raise ValueError(f"--{option} ({where}) needs at least two values to be an outer axis")
    seen = [json.dumps(v, sort_keys=True) for v in values]
    repeats = sorted({s for s in seen if seen.count(s) > 1})
    if repeats:
        raise ValueError(f"--{option} ({where}) lists {', '.join(repeats)} more than once: each value once")
    return values


def value_name(value: Any) -> str:
    """A value in a run name: 32, 1e-05, 100-100, true."""
    if isinstance(value, list):
        return "-".join(value_name(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Unit:
    """A combination of outer values and the part of its grid (``settings``: all when None) one Trainer trains."""

    combo: tuple[tuple[str, Any], ...]  # (option, value), e.g. (("data.batch_size", 32),)
    part: int = 0
    parts: int = 1
    settings: tuple[str, ...] | None = None
    place: str = ""  # "0_": the combination's place in the numeric order of the outer values (names sort by it)

    @property
    def prefix(self) -> str:
        """What the combination's run names start with, e.g. ``0_batch_size32_``; "" without outer axes."""
        return self.place + "".join(f"{key.rsplit('.', 1)[-1]}{value_name(v)}_" for key, v in self.combo)

    @property
    def name(self) -> str:
        """The unit's directory name, e.g. ``0_batch_size32`` or ``0_batch_size32_part1of2``."""
        base = self.prefix.rstrip("_") or "grid"
        return base + (f"_part{self.part + 1}of{self.parts}" if self.parts > 1 else "")

    def args(self) -> list[str]:
        """The options that make a SweepCLI train this unit."""
        out = [f"--{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in self.combo]
        if self.prefix:
            out.append(f"--model.prefix={self.prefix}")
        if self.settings is not None:
            out.append(f"--model.only={json.dumps(list(self.settings))}")
        return out


def make_units(axes: dict[str, list], settings: list[str], shares: int) -> list[Unit]:
    """Every combination of outer values, each split into enough parts (whole settings each) that ``shares``
    processes all get work where the combinations alone are fewer."""
    ordered = [sorted(values, key=sort_key) for values in axes.values()]  # numbers in numeric order, others as given
    combos = [tuple(zip(axes, values)) for values in itertools.product(*ordered)] if axes else [()]
    parts = min(max(1, math.ceil(shares / len(combos))), len(settings))
    width = len(str(len(combos) - 1))
    units = []
    for i, combo in enumerate(combos):
        place = f"{i:0{width}d}_" if axes else ""
        for part in range(parts):
            chunk = settings[part * len(settings) // parts: (part + 1) * len(settings) // parts]
            units.append(Unit(combo, part, parts, tuple(chunk) if parts > 1 else None, place))
    if len(units) < shares:
        raise ValueError(f"{shares} processes for {len(units)} units of work ({len(combos)} combinations of outer "
                         f"values x {parts} parts of {len(settings)} settings): run it on at most {len(units)}")
    return units


def detect_share(explicit: str | None) -> tuple[int, int]:
    """This process's share ``(index, count)``, 0-based: ``--share I/K`` (1-based), else from the launcher."""
    if explicit:
        try:
            index, count = (int(v) for v in explicit.split("/"))
        except ValueError:
            raise ValueError(f"--share must be I/K (the I-th of K shares, 1 <= I <= K), got {explicit}") from None
        if not 1 <= index <= count:
            raise ValueError(f"--share must be I/K with 1 <= I <= K, got {explicit}")
        return index - 1, count
    env = os.environ
    task, tasks = 0, 1
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        task = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", 0))
        tasks = int(env["SLURM_ARRAY_TASK_COUNT"])
    rank, world = 0, 1
    if TorchElasticEnvironment.detect():
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
    elif SLURMEnvironment.detect():
        rank, world = int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"])
    return task * world + rank, tasks * world


def unit_dir(out: Path, unit: Unit | str, units: list[Unit] | list[str]) -> Path:
    """Where a unit (or the unit of that name) keeps its checkpoint and result: the sweep's own directory when it is
    the only unit."""
    return out if len(units) == 1 else out / "units" / (unit if isinstance(unit, str) else unit.name)


def sweep_identity(cfg: Any, threshold: float, metric: str | None) -> dict[str, Any]:
    """Everything that decides a row of ``summary.csv`` and the figures drawn from the rows: the model's and data's
    options, the Trainer's options but ``NOT_ROW_OPTIONS``, the seed, the matmul precision, ``--threshold`` and
    ``--metric``. Every process of one sweep must have the same; the budget (epochs, steps) is checked per unit (see
    ``main``), the time limit is each process's own."""
    def plain(value: Any) -> Any:
        return json.loads(json.dumps(value.as_dict() if hasattr(value, "as_dict") else value, default=str))

    return {"model": plain(cfg.model), "data": plain(cfg.data),
            "trainer": {k: plain(v) for k, v in cfg.trainer.items() if k not in NOT_ROW_OPTIONS},
            "seed_everything": cfg.seed_everything,
            "float32_matmul_precision": cfg.get("float32_matmul_precision"), "threshold": threshold, "metric": metric}


def identity_difference(there: dict[str, Any], here: dict[str, Any], path: str = "") -> str | None:
    """The first option on which two sweep identities differ, as ``option: X there, Y here``; None if they agree. A
    Trainer option the plan does not hold (written before it was part of the identity) is not compared."""
    for key in sorted(set(there) | set(here), key=str):
        if path == "trainer." and key not in there:
            continue
        a, b = there.get(key), here.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = identity_difference(a, b, f"{path}{key}.")
            if found:
                return found
        elif a != b:
            return f"{path}{key}: {json.dumps(a)} there, {json.dumps(b)} here"
    return None


def unit_record(unit: Unit) -> dict[str, Any]:
    """A unit as plan.json keeps it."""
    return {"name": unit.name, "combo": [list(kv) for kv in unit.combo], "part": unit.part, "parts": unit.parts,
            "settings": None if unit.settings is None else list(unit.settings), "place": unit.place}


def plan_units(plan: dict[str, Any]) -> list[Unit]:
    """The sweep's units, as its plan fixed them."""
    return [Unit(tuple((k, v) for k, v in r["combo"]), r["part"], r["parts"],
                 None if r["settings"] is None else tuple(r["settings"]), r.get("place", "")) for r in plan["units"]]


def claim_plan(out: Path, plan: dict[str, Any]) -> bool:
    """Write ``plan`` as the sweep's in ``out``, or check it is the one there; True if this process wrote it.
    Several processes may start at once: the file appears whole or not at all (a link, which fails if it exists)."""
    out.mkdir(parents=True, exist_ok=True)
    # a name no other process on any host sharing the file system picks (pids repeat across hosts and containers);
    # never taken for another sweep's file (``foreign_files``)
    tmp = out / f"{TMP_PREFIX}{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(8)}"
    tmp.write_text(json.dumps(plan, indent=1))
    try:
        os.link(tmp, out / PLAN_FILE)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


def write_plan(out: Path, plan: dict[str, Any]) -> None:
    """Replace the sweep's plan (its budget, when a sweep is trained further): whole, never half written."""
    tmp = out / f"{TMP_PREFIX}{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(8)}"
    tmp.write_text(json.dumps(plan, indent=1))
    os.replace(tmp, out / PLAN_FILE)


def read_plan(out: Path) -> dict[str, Any] | None:
    path = out / PLAN_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def foreign_files(out: Path) -> bool:
    """Whether ``out`` holds anything but a plan being written by a process starting this moment."""
    return out.exists() and (not out.is_dir() or any(not p.name.startswith(TMP_PREFIX) for p in out.iterdir()))


@contextmanager
def locked(path: Path, wait: bool = False) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (released when the process ends, however it ends): wait for it (the
    merge), or yield False at once if another process holds it (a unit it is training)."""
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
