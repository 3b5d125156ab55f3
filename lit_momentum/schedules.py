"""Schedules: PyTorch's learning-rate schedulers by class path, for one run and for every grid point alike.

    python train.py --lr_scheduler OneCycleLR --lr_scheduler.max_lr 0.1 --lr_scheduler_interval step
    python train.py --lr_scheduler CosineAnnealingLR --lr_scheduler.T_max 2000          # stepped once per epoch
    python train.py --config configs/warmup_cosine.yaml                  # Warmup: LinearLR, then a cosine

A scheduler is a class with its options (jsonargparse's ``Callable[[Optimizer], LRScheduler]``; any
``torch.optim.lr_scheduler`` class by its short name, or a class path), recorded as ``{"class_path", "init_args"}``
(checkpoints, hparams.yaml, the sweep's identity) and built on an optimizer by ``build_scheduler``: the run's
optimizer in ``train.py``, a stand-in optimizer with the point's own settings for each grid point (``stand_in``;
``lit_momentum.sweep.schedules`` copies its values into the point's settings). The scheduler sets the optimizer's
``lr`` and, for ``OneCycleLR(cycle_momentum=True)``, its momentum (SGD) or beta1 (Adam), as PyTorch does.
``OneCycleLR`` without ``total_steps`` or ``epochs`` is given the run's length (steps, or epochs when stepped per
epoch). ``SequentialLR`` and ``Warmup`` take their schedulers as classes with options, so that a config can hold them.
"""

import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ConstantLR, LinearLR, LRScheduler, OneCycleLR, ReduceLROnPlateau

from lit_momentum.nets import net_config
from lit_momentum.optimizers import build_optimizer

SchedulerFactory = Callable[[Optimizer], LRScheduler]  # optimizer -> scheduler: a class with its options
Schedule = SchedulerFactory | Mapping[str, Any]  # or its config, {"class_path": ..., "init_args": {...}}
MAX_TRIAL = 10**6  # steps a check takes the scheduler through, at most
UNKNOWN = 10**9  # the length of a run without max_epochs (or max_steps)


def schedule_config(schedule: Schedule | None) -> dict[str, Any] | None:
    """The scheduler as ``{"class_path", "init_args"}`` (nested schedulers too), or None for none."""
    if schedule is None:
        return None
    config = net_config(schedule, "--lr_scheduler")
    for key, value in config["init_args"].items():
        if isinstance(value, list) and value and not isinstance(value[0], int | float | str):
            config["init_args"][key] = [schedule_config(v) for v in value]
        elif callable(value) or isinstance(value, Mapping) or hasattr(value, "class_path"):
            config["init_args"][key] = schedule_config(value)
    return config


def scheduler_class(config: Mapping[str, Any]) -> type[LRScheduler]:
    """The class of a scheduler config: a short name (``OneCycleLR``) is torch's or this module's."""
    path = config["class_path"]
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module) if module else torch.optim.lr_scheduler, name, None) or (
            getattr(importlib.import_module(__name__), name))
    except (ImportError, AttributeError) as err:
        raise ValueError(f"--lr_scheduler {path}: cannot import it: {err}") from None
    if cls is ReduceLROnPlateau or (isinstance(cls, type) and issubclass(cls, ReduceLROnPlateau)):
        raise ValueError(f"--lr_scheduler {name}: it steps on a metric, not on time; schedules here are functions of "
                         f"the step or epoch (OneCycleLR, CosineAnnealingLR, MultiStepLR, LinearLR, SequentialLR, ...)")
    if not (isinstance(cls, type) and issubclass(cls, LRScheduler)):
        raise ValueError(f"--lr_scheduler {path}: not a torch.optim.lr_scheduler.LRScheduler")
    return cls


def build_scheduler(schedule: Schedule, optimizer: Optimizer, length: int | None = None) -> LRScheduler:
    """The scheduler on ``optimizer``; ``length``: the run's steps or epochs (as it steps), OneCycleLR's
    ``total_steps`` when neither it nor ``epochs`` is given. (A plain function of the optimizer is called.)"""
    if callable(schedule) and not isinstance(schedule, type | functools.partial):
        return schedule(optimizer)
    config = schedule_config(schedule)
    cls, options = scheduler_class(config), dict(config["init_args"])
    if issubclass(cls, OneCycleLR) and options.get("total_steps") is None and options.get("epochs") is None:
        if length is None or length >= UNKNOWN:
            raise ValueError("it is laid over the run's length, and this run has none: give --max_epochs (stepped "
                             "per step: or --trainer.max_steps), or --lr_scheduler.total_steps")
        options["total_steps"] = length
    if "length" in inspect.signature(cls).parameters and options.get("length") is None:
        options["length"] = length  # (a schedule of schedules hands it on)
    return cls(optimizer, **options)


def group_values(optimizer: Optimizer, group: int = 0) -> tuple[float, float]:
    """The learning rate and momentum (Adam: beta1) the optimizer's next step uses (in its first param group, or
    ``group``), as Python numbers."""
    g = optimizer.param_groups[group]
    return g["lr"], g["momentum"] if "momentum" in g else g["betas"][0] if "betas" in g else 0.0  # (none: 0)


STAND_IN_SETTINGS = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "beta2", "eps")  # stand_in's own


def stand_in(optimizer: Any, lr: float, momentum: float, dampening: float = 0.0, nesterov: bool = False,
             weight_decay: float = 0.0, beta2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """The optimizer a run with these settings has (``torch.optim.SGD``, ``Adam``, ``AdamW`` or a class path's),
    over one unused parameter: a scheduler built on it sets, step by step, the values it would set on the run's."""
    param = [torch.zeros(1, requires_grad=True)]
    opt = build_optimizer(optimizer, param, lr, momentum, dampening if momentum else 0.0, nesterov, weight_decay,
                          beta2, eps)
    opt._opt_called = True  # it never steps: PyTorch's warning about a scheduler stepped first does not apply
    return opt


def stand_in_groups(optimizer: str, settings: list[dict[str, Any]]) -> Optimizer:
    """One stand-in whose param groups are those of ``settings``' own stand-ins, in order: one scheduler on it steps
    every group as it steps each group's own stand-in (see ``shares_groups``), for a fraction of the calls."""
    first, *rest = [stand_in(optimizer, **s) for s in settings]
    for other in rest:
        first.add_param_group(other.param_groups[0])
    return first


def shares_groups(schedule: Schedule) -> bool:
    """Whether one scheduler can step many param groups for the settings of a grid: PyTorch's schedulers and this
    module's compute each group apart (from its own lr, momentum and base values). A user's own class, or a plain
    function, might read the first group only: it gets a stand-in optimizer per setting."""
    if callable(schedule) and not isinstance(schedule, type | functools.partial):
        return False

    def known(config: Mapping[str, Any]) -> bool:
        nested = [v for value in config["init_args"].values() for v in (value if isinstance(value, list) else [value])
                  if isinstance(v, Mapping) and "class_path" in v]
        module = scheduler_class(config).__module__
        return module in (torch.optim.lr_scheduler.__name__, __name__) and all(known(n) for n in nested)

    try:
        return known(schedule_config(schedule))
    except (ValueError, TypeError):
        return False


def check_schedule(schedule: Schedule | None, optimizer: str, settings: list[dict[str, Any]], length: int,
                   state: dict[str, Any] | None = None) -> None:
    """Build the scheduler on a stand-in for each of ``settings`` (a run's, or a grid's points'): its options in
    one line if PyTorch refuses them; refused also when it overrides an axis the grid varies (OneCycleLR sets every
    point's lr from ``max_lr``, and its momentum when it cycles it), since those points would all be one run."""
    if schedule is None:
        return
    config = schedule_config(schedule)
    name = config["class_path"].rpartition(".")[2]
    scheduler_class(config)
    starts = []
    for s in settings:
        try:
            opt = stand_in(optimizer, **s)
            scheduler = build_scheduler(config, opt, length)
            starts.append((s, *group_values(opt)))
            if s is settings[0]:  # through the whole run (a few microseconds a step): a OneCycleLR too short for it
                if state is not None:  # stops it here, not mid-run
                    scheduler.load_state_dict(state)
                for _ in range(min(length - scheduler.last_epoch, MAX_TRIAL)):
                    scheduler.step()
        except (ValueError, TypeError, KeyError, ZeroDivisionError) as err:
            where = " (as continued from its checkpoint)" if state is not None else ""
            raise ValueError(f"--lr_scheduler {name}{where}: {' '.join(str(err).split())}") from None
    for axis, index, label in (("lr", 1, "learning rate"), ("momentum", 2, "momentum")):
        alike: dict[tuple, set] = {}  # points alike but for this axis -> the values the scheduler starts them at
        for s, *values in starts:
            alike.setdefault(tuple(v for k, v in s.items() if k != axis), set()).add(values[index - 1])
        given = sorted({s[axis] for s, *_ in starts})
        if len(given) > 1 and all(len(v) == 1 for v in alike.values()):
            raise ValueError(f"--{axis} {' '.join(f'{v:g}' for v in given)}: {name} sets every point's {label} "
                             f"itself, so these points would be one run; give one value and sweep the scheduler's "
                             f"option as an outer axis (--model.lr_scheduler.OPTION V V ...)")


def set_by(schedule: Schedule | None, optimizer: str, settings: dict[str, Any], length: int = 1000) -> dict[str, float]:
    """The settings a scheduler replaces from its start, with the value it starts each at (OneCycleLR: lr, and momentum
    when it cycles it): those it starts at the same value from two different typed values. A run's name leaves them
    out (``MomentumModule.run_name``), and ``train.py`` and the sweep say them once."""
    if schedule is None:
        return {}
    other = dict(settings, lr=settings["lr"] * 2 + 1e-3, momentum=0.5 if settings["momentum"] != 0.5 else 0.25)
    starts = []
    for s in (settings, other):
        opt = stand_in(optimizer, **s)
        build_scheduler(schedule, opt, length)
        starts.append((opt.param_groups[0].get("initial_lr", s["lr"]), group_values(opt)[1]))
    return {k: starts[0][i] for i, k in enumerate(("lr", "momentum")) if starts[0][i] == starts[1][i]}


def overridden(schedule: Schedule | None, optimizer: str, settings: dict[str, Any], length: int) -> list[str]:
    """``set_by`` as words: ``lr 1e-05 -> 0.004``."""
    return [f"{k} {settings[k]:g} -> {v:g}" for k, v in set_by(schedule, optimizer, settings, length).items()]


def schedule_label(schedule: Schedule | None) -> str:
    """The scheduler in a run's name: its class and the options that differ from its defaults (nested schedulers
    likewise), e.g. ``OneCycleLR-max_lr0.1``, ``Warmup-steps30-CosineAnnealingLR-T_max50``."""
    if schedule is None:
        return ""
    if callable(schedule) and not isinstance(schedule, type | functools.partial):  # a plain function
        return getattr(schedule, "__name__", "schedule")
    config = schedule_config(schedule)
    cls = scheduler_class(config)
    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
    parts = [cls.__name__]
    for key, value in config["init_args"].items():
        if key in ("optimizer", "length", "last_epoch", "verbose") or value is None or defaults.get(key) == value:
            continue
        if isinstance(value, Mapping):
            parts.append(schedule_label(value))
        elif isinstance(value, list) and value and isinstance(value[0], Mapping):
            parts += [schedule_label(v) for v in value]
        elif isinstance(value, list | tuple):
            parts.append(key + ",".join(f"{v:g}" for v in value))
        elif isinstance(value, bool):
            parts.append(key if value else f"no{key}")  # (as the grid names nesterov)
        else:
            parts.append(f"{key}{value:g}" if isinstance(value, int | float) else f"{key}{value}")
    return "-".join(parts)


class SequentialLR(torch.optim.lr_scheduler.SequentialLR):
    """PyTorch's ``SequentialLR`` with its schedulers given as classes with options (each built on this optimizer),
    so that a config or the command line can hold it::

        lr_scheduler:
          class_path: lit_momentum.schedules.SequentialLR   # (SequentialLR alone: torch's too)
          init_args:
            schedulers: [{class_path: LinearLR, init_args: {start_factor: 0.01, total_iters: 5}},
                         {class_path: CosineAnnealingLR, init_args: {T_max: 95}}]
            milestones: [5]
    """

    def __init__(self, optimizer: Optimizer, schedulers: list[SchedulerFactory], milestones: list[int],
                 last_epoch: int = -1, length: int | None = None) -> None:
        # length: the run's, as the scheduler steps (filled in by the run): each scheduler gets its stretch, from its
        # milestone to the next (a OneCycleLR among them is laid over that stretch)
        bounds = [0, *milestones, length]
        spans = [b - a if length is not None else None for a, b in zip(bounds, bounds[1:])]
        super().__init__(optimizer, [build_scheduler(s, optimizer, n) for s, n in zip(schedulers, spans)],
                         milestones, last_epoch)


class Warmup(torch.optim.lr_scheduler.SequentialLR):
    """A linear warmup over ``steps`` steps (or epochs, as the scheduler steps) from ``start_factor`` times the
    learning rate, then ``then`` (None: constant): PyTorch's ``LinearLR`` and ``SequentialLR``, with the warmup's
    length one option, so that a sweep can take it as an outer axis (``--model.lr_scheduler.steps 0 5 20``).
    ``steps`` 0: ``then`` alone."""

    def __init__(self, optimizer: Optimizer, steps: int, then: SchedulerFactory | None = None,
                 start_factor: float = 0.01, last_epoch: int = -1, length: int | None = None) -> None:
        # length: the run's, as the scheduler steps (filled in by the run): ``then`` gets what the warmup leaves
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        warmup = LinearLR(optimizer, start_factor=start_factor if steps else 1.0, total_iters=steps)
        rest = length - steps if length is not None else None
        after = (build_scheduler(then, optimizer, rest) if then is not None
                 else ConstantLR(optimizer, 1.0, total_iters=0))
        super().__init__(optimizer, [warmup, after], [steps], last_epoch)


class EffectiveStepOf(LRScheduler):
    """SGD's effective step ``lr (1 - dampening) / (1 - momentum)`` of another schedule, at this run's own constant
    momentum: ``schedule`` runs on a stand-in SGD (from this optimizer's settings), and each step this optimizer's lr
    is set so that its effective step is the stand-in's. E.g. a one-cycle's effective step (lr and momentum cycled
    together) with momentum held at 0.9, or 0 (plain SGD)::

        --lr_scheduler lit_momentum.schedules.EffectiveStepOf --lr_scheduler.schedule OneCycleLR
        --lr_scheduler.schedule.max_lr 0.1 --lr_scheduler_interval step
    """

    def __init__(self, optimizer: Optimizer, schedule: SchedulerFactory, length: int | None = None,
                 last_epoch: int = -1) -> None:
        if any("momentum" not in group for group in optimizer.param_groups):
            raise ValueError("it gives SGD's effective step; the optimizer is not SGD")
        self.inner_optimizer = stand_in_groups("sgd", [dict(lr=group["lr"], momentum=group["momentum"])
                                                       for group in optimizer.param_groups])  # (a group each)
        self.inner = build_scheduler(schedule, self.inner_optimizer, length)  # length: the run's, filled in
        super().__init__(optimizer, last_epoch)

    def step(self, epoch: int | None = None) -> None:
        if self._step_count > 0:  # (the first call is the constructor's, at the inner schedule's start)
            self.inner.step()
        super().step()

    def get_lr(self) -> list[float]:
        out = []
        for k, g in enumerate(self.optimizer.param_groups):
            lr, m = group_values(self.inner_optimizer, k)
            effective = lr * (1 - self.inner_optimizer.param_groups[k]["dampening"]) / (1 - m)
            out.append(effective * (1 - g["momentum"]) / (1 - g["dampening"]))
        return out

    def state_dict(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "inner", "inner_optimizer")}
        return {**state, "inner": self.inner.state_dict(), "inner_optimizer": self.inner_optimizer.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        self.inner.load_state_dict(state.pop("inner"))
        self.inner_optimizer.load_state_dict(state.pop("inner_optimizer"))
        self.__dict__.update(state)
