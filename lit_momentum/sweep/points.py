"""A grid's points: the Cartesian product of its axes, each point checked as ``train.py`` checks a run, and named
for its settings (the seeds of one setting form a band); the grid's other options checked too."""

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any

from lit_momentum.settings import ADAM_DEFAULTS, OPTIMIZERS, check_settings

AXES = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "beta2", "eps", "seeds")  # GridPoint's order
ARTICLE = "momentum"  # --dampening momentum: dampening = m, the article's v = m v + (1 - m) g


def num(v: float) -> str:
    """A short exact spelling of a number for run names: 1e-05, 0.9, 0."""
    return f"{v:g}" if float(f"{v:g}") == v else repr(v)


@dataclass(frozen=True)
class GridPoint:
    lr: float
    momentum: float
    dampening: float
    nesterov: bool
    weight_decay: float
    beta2: float  # Adam's and AdamW's (the momentum is their beta1)
    eps: float
    seed: int
    prefix: str = ""  # the outer values of the grid it belongs to, e.g. ``batch_size32_``
    optimizer: str = "sgd"  # the grid's: sgd, adam or adamw

    @property
    def setting(self) -> str:
        """Everything but the seed, e.g. ``lr1e-05_m0.9_nesterov``: the seeds of one setting form a band."""
        parts = [self.optimizer if self.optimizer != "sgd" else "", f"lr{num(self.lr)}", f"m{num(self.momentum)}",
                 f"damp{num(self.dampening)}" if self.dampening else "", "nesterov" if self.nesterov else "",
                 f"wd{num(self.weight_decay)}" if self.weight_decay else "",
                 f"b2_{num(self.beta2)}" if self.beta2 != ADAM_DEFAULTS["beta2"] else "",
                 f"eps{num(self.eps)}" if self.eps != ADAM_DEFAULTS["eps"] else ""]
        return self.prefix + "_".join(p for p in parts if p)

    @property
    def name(self) -> str:
        """The point's TensorBoard run directory, e.g. ``lr1e-05_m0.9_seed0``."""
        return f"{self.setting}_seed{self.seed}"


def make_grid(prefix: str = "", only: list[str] | None = None, optimizer: str = "sgd", **axes: Any) -> list[GridPoint]:
    """The Cartesian product of the axes (each a value or a list), every point checked as ``train.py`` checks a run
    of ``optimizer``; with ``only``, the points of those settings (a part of the grid, for one process of
    several)."""
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
    points = [GridPoint(*combo, prefix=prefix, optimizer=optimizer) for combo in itertools.product(*values.values())]
    points = [dataclasses.replace(p, dampening=p.momentum) if p.dampening == ARTICLE else p for p in points]
    if only is not None:
        unknown = sorted(set(only) - {p.setting for p in points})
        if unknown:
            raise ValueError(f"model.only names settings the grid does not have: {', '.join(unknown)}")
        points = [p for p in points if p.setting in only]
    for p in points:
        try:
            check_settings(optimizer, "manual" if optimizer == "sgd" else "builtin", p.lr, p.momentum, p.dampening,
                           p.nesterov, p.weight_decay, p.beta2, p.eps)
        except ValueError as err:
            raise ValueError(f"grid point {p.name}: {err}") from None
    return points


def check_options(optimizer: str, momentum_impl: str, bound: float) -> None:
    """The grid's options besides its axes, checked (also by the sweep before anything is built)."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"model.optimizer must be one of {', '.join(OPTIMIZERS)}; got {optimizer!r}")
    if momentum_impl not in ("builtin", "manual"):
        raise ValueError(f"model.momentum_impl must be one of builtin, manual; got {momentum_impl!r}")
    if not 0 < bound < math.inf:
        raise ValueError(f"model.bound (--bound) must be > 0 and finite, got {bound}")
