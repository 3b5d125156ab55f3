"""The grid's axes, defined once: the parser, the points and their names, the plan, the columns of summary.csv, the
HParams settings, the optimizers' per-point settings and the help all read this table (``tests/test_sweep.py`` walks
it through every one of them). Adding an axis is one entry here, one argument of ``GridModule``, and its use in the
update rule.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SGD, ADAM, CLASS = ("sgd",), ("adam", "adamw"), ("class",)  # class: any other optimizer (its lr, momentum, wd)


def num(v: float) -> str:
    """A short exact spelling of a number for run names: 1e-05, 0.9, 0."""
    return f"{v:g}" if float(f"{v:g}") == v else repr(v)


def sort_key(value: Any) -> tuple:
    """The order of names (``GridPoint``, a plan's units): numbers and booleans in numeric order, before anything
    else (lists, text) in the order given (a stable sort)."""
    return (0, float(value)) if isinstance(value, int | float) else (1, 0.0)


@dataclass(frozen=True)
class Axis:
    name: str  # the option (--lr, model.lr) and GridModule's argument
    field: str  # GridPoint's field, summary.csv's column, the HParams setting
    default: Any  # GridModule's default (seeds: --seed_everything)
    optimizers: tuple[str, ...]  # the optimizers that have it
    part: Callable[[Any], str] | None  # its part of a setting's name (None: not named; see ALWAYS_NAMED)
    help: str


AXES_TABLE = (
    Axis("lr", "lr", 1e-5, SGD + ADAM + CLASS, lambda v: f"lr{num(v)}", "learning rates"),
    Axis("momentum", "momentum", 0.9, SGD + ADAM + CLASS, lambda v: f"m{num(v)}",
         "momentum factors in [0, 1) (Adam's beta1; any optimizer's, docs/optimizers.md)"),
    Axis("dampening", "dampening", 0.0, SGD, lambda v: f"damp{num(v)}",
         "dampening (momentum: each point's is its momentum, the article's v = m v + (1 - m) g)"),
    Axis("nesterov", "nesterov", False, SGD, lambda v: "nesterov" if v else "nonesterov",
         "Nesterov momentum, true / false"),
    Axis("weight_decay", "weight_decay", 0.0, SGD + ADAM + CLASS, lambda v: f"wd{num(v)}",
         "L2 penalty (AdamW: decoupled weight decay)"),
    Axis("beta2", "beta2", 0.999, ADAM, lambda v: f"b2_{num(v)}", "Adam's second-moment decay (--momentum is beta1)"),
    Axis("eps", "eps", 1e-8, ADAM, lambda v: f"eps{num(v)}", "Adam's denominator term"),
    Axis("seeds", "seed", None, SGD + ADAM + CLASS, None, "initial-weight seeds"),
)
ALWAYS_NAMED = ("lr", "momentum")  # in every name; another axis is named where it varies or is not its default
AXES = tuple(a.name for a in AXES_TABLE)  # the options, in GridPoint's order
SETTINGS = tuple(a.field for a in AXES_TABLE if a.part is not None)  # what a setting is (its seeds aside)


def kind(optimizer: Any) -> str:
    """``sgd``, ``adam``, ``adamw``, or ``class`` for any other (a class path)."""
    return optimizer if isinstance(optimizer, str) and optimizer in SGD + ADAM else CLASS[0]


def optimizer_axes(optimizer: Any) -> tuple[str, ...]:
    """The per-point settings an optimizer reads (SGD: lr, momentum, dampening, nesterov, weight_decay; a class
    path: lr, momentum, weight_decay)."""
    return tuple(a.field for a in AXES_TABLE if kind(optimizer) in a.optimizers and a.field in SETTINGS)


def shown(adam: bool) -> list[str]:
    """The axes a summary or the HParams table shows, seed last: SGD's, then Adam's where the sweep has Adam."""
    return [a.field for a in AXES_TABLE if a.field in SETTINGS and ("sgd" in a.optimizers or adam)] + ["seed"]


def help_lines() -> str:
    """The axes as ``--help`` lists them: option, what, default."""
    lines = []
    for a in AXES_TABLE:
        default = ("--seed_everything" if a.default is None else str(a.default).lower()
                   if isinstance(a.default, bool) else num(a.default))
        lines.append(f"  {f'--{a.name} V [V ...]':<28}{a.help} (default {default})")
    return "\n".join(lines) + "\n"
