"""A grid's points: the Cartesian product of its axes, each point checked as ``train.py`` checks a run, and named
for its settings (the seeds of one setting form a band); the grid's other options checked too."""

import dataclasses
import functools
import itertools
import math
from typing import Any

from lit_momentum.optimizers import check_run_settings, family_momentum, optimizer_class, optimizer_label
from lit_momentum.schedules import STAND_IN_SETTINGS, set_by
from lit_momentum.settings import check_optimizer
from lit_momentum.sweep.axes import ALWAYS_NAMED, AXES, AXES_TABLE, num, sort_key
from lit_momentum.sweep.point_optimizers import check_point_optimizer, takes_point_optimizers

__all__ = ["AXES", "GridPoint", "check_options", "make_grid", "num"]

ARTICLE = "momentum"  # --dampening momentum: dampening = m, the article's v = m v + (1 - m) g


class Named:
    """The names of a grid point, from the axes' parts (``lit_momentum.sweep.axes``). Names sort as text in numeric
    order (TensorBoard lists runs by name): a setting starts with its place in the grid's numeric order when there
    are several (``03_``), its varying parts come first, seeds are zero-padded to the widest."""

    prefix: str
    optimizer: str  # sgd, adam, adamw, or a class path's label (``RMSprop-alpha0.95``)
    place: str  # "03_": the setting's place among the grid's settings in numeric order; "" for a single setting
    varying: tuple[str, ...]  # the fields with several values in the grid, named first
    seed_width: int
    unnamed: tuple[str, ...]  # lr, momentum: what the grid's scheduler sets from its start (not named, as in a run);
    # momentum in a family that has none (Adagrad)

    @functools.cached_property  # (asked for every point at every logged step: made once)
    def setting(self) -> str:
        """Everything but the seed, e.g. ``03_lr1e-05_m0.9_nesterov``: the seeds of one setting form a band."""
        named = [a for a in AXES_TABLE if a.part is not None]
        named = [a for a in named if a.field in self.varying] + [a for a in named if a.field not in self.varying]
        parts = [a.part(getattr(self, a.field)) for a in named  # (wd0 where wd varies: a filter selects it)
                 if a.field in self.varying or (a.name in ALWAYS_NAMED and a.field not in self.unnamed)
                 or (getattr(self, a.field) != a.default and a.field not in self.unnamed)]
        parts += [self.optimizer if self.optimizer != "sgd" else ""]
        body = "_".join(p for p in parts if p)  # ("" when a schedule sets all that would be named)
        return self.prefix + self.place + body if body else (self.prefix + self.place).rstrip("_")

    @functools.cached_property
    def name(self) -> str:
        """The point's TensorBoard run directory, e.g. ``03_lr1e-05_m0.9_seed0``."""
        seed = f"seed{self.seed:0{self.seed_width}d}"  # type: ignore[attr-defined]
        return f"{self.setting}_{seed}" if self.setting else seed


# one field per axis, in the table's order (lr, momentum, ..., seed), then the grid's outer values
# (``prefix``, e.g. ``0_batch_size32_``), optimizer (sgd, adam, adamw or a class's label) and the naming (``Named``)
GridPoint = dataclasses.make_dataclass(
    "GridPoint", [(a.field, Any) for a in AXES_TABLE] + [("prefix", str, ""), ("optimizer", str, "sgd"),
                                                         ("place", str, ""), ("varying", tuple, ()),
                                                         ("seed_width", int, 1), ("unnamed", tuple, ())],
    bases=(Named,), frozen=True, namespace={"__module__": __name__})


def make_grid(prefix: str = "", only: list[str] | None = None, optimizer: Any = "sgd", schedule: Any = None,
              **axes: Any) -> list[GridPoint]:
    """The Cartesian product of the axes (each a value or a list), every point checked as ``train.py`` checks a run
    of ``optimizer`` (sgd, adam, adamw or any class: ``lit_momentum.optimizers``); with ``only``, the points of those
    settings (a part of the grid, for one process of several). A setting ``schedule`` replaces from its start
    (``set_by``: OneCycleLR's lr) is left out of the names where the grid does not vary it (it cannot:
    ``check_schedule`` refuses that)."""
    values = {}
    for axis in AXES:
        vals = list(axes[axis]) if isinstance(axes[axis], list | tuple) else [axes[axis]]
        if not vals:
            raise ValueError(f"model.{axis} (--{axis}) needs at least one value")
        repeats = sorted({str(v) for v in vals if vals.count(v) > 1})
        if repeats:
            raise ValueError(f"model.{axis} (--{axis}) lists {', '.join(repeats)} more than once: each value once")
        values[axis] = vals
    for seed in values["seeds"]:
        if not 0 <= seed < 2**32:
            raise ValueError(f"model.seeds (--seeds) must be integers in [0, 2**32), got {seed}")
    if values["dampening"] == ["momentum"]:  # the article's formula: each point's dampening is its momentum
        values["dampening"] = [ARTICLE]
    elif ARTICLE in values["dampening"]:
        raise ValueError("model.dampening (--dampening): momentum (the article's formula) stands alone, not in a list")
    label, no_momentum = optimizer, False
    if takes_point_optimizers(optimizer):
        label, no_momentum = optimizer_label(optimizer), family_momentum(optimizer) is None
        if no_momentum and len(values["momentum"]) > 1:
            raise ValueError(f"model.momentum (--momentum): {label} has no momentum (neither momentum nor betas); "
                             f"drop --momentum")
    points = [GridPoint(*combo, prefix=prefix, optimizer=label) for combo in itertools.product(*values.values())]
    points = [dataclasses.replace(p, dampening=p.momentum) if p.dampening == ARTICLE else p for p in points]
    unnamed = scheduled(schedule, optimizer, points[0]) + (("momentum",) if no_momentum else ())
    points = [dataclasses.replace(p, unnamed=unnamed) for p in points]
    points = named(points, [a for a in values if a != "seeds" and len(values[a]) > 1], max(values["seeds"]))
    if only is not None:  # settings named without the outer values' prefix
        unknown = sorted(set(only) - {p.setting.removeprefix(prefix) for p in points})
        if unknown:
            raise ValueError(f"model.only names settings the grid does not have: {', '.join(unknown)}")
        points = [p for p in points if p.setting.removeprefix(prefix) in only]
    checked = set()
    for p in points:
        setting = tuple(getattr(p, k) for k in STAND_IN_SETTINGS)
        if setting in checked:  # (the seeds of a setting: checked once)
            continue
        checked.add(setting)
        try:
            check_run_settings(optimizer, "manual" if optimizer == "sgd" else "builtin", *setting)
        except ValueError as err:
            raise ValueError(f"grid point {p.name}: {err}") from None
    return points


def scheduled(schedule: Any, optimizer: Any, point: GridPoint) -> tuple[str, ...]:
    """The settings ``schedule`` replaces from its start, for this grid's points (none where it cannot be built:
    ``check_schedule`` says why, in one line, before anything trains)."""
    if schedule is None:
        return ()
    try:
        return tuple(set_by(schedule, optimizer, {k: getattr(point, k) for k in STAND_IN_SETTINGS}))
    except Exception:  # noqa: BLE001
        return ()


def named(points: list[GridPoint], varying: list[str], max_seed: int) -> list[GridPoint]:
    """The points with their names' order: each setting's place in the numeric order of its varying values."""
    fields = [a.field for a in AXES_TABLE if a.name in varying]
    settings = sorted({tuple(getattr(p, f) for f in fields) for p in points}, key=lambda s: [sort_key(v) for v in s])
    width = len(str(len(settings) - 1))
    place = {s: f"{i:0{width}d}_" if len(settings) > 1 else "" for i, s in enumerate(settings)}
    return [dataclasses.replace(p, place=place[tuple(getattr(p, f) for f in fields)], varying=tuple(fields),
                                seed_width=len(str(max_seed))) for p in points]


def check_options(optimizer: Any, momentum_impl: str, bound: float) -> None:
    """The grid's options besides its axes, checked (also by the sweep before anything is built)."""
    if takes_point_optimizers(optimizer):
        optimizer_class(optimizer)  # (importable, an optimizer: one line otherwise)
        check_point_optimizer(optimizer)
        optimizer = "sgd"  # (momentum_impl: accepted either way, as for sgd)
    check_optimizer(optimizer, momentum_impl)
    if not 0 < bound < math.inf:
        raise ValueError(f"model.bound (--bound) must be > 0 and finite, got {bound}")
