"""Optimizers: SGD, Adam and AdamW by name, any other by class path, and one table of what ``--model.lr`` and
``--model.momentum`` set in each family.

    python train.py --model.optimizer RMSprop --model.lr 1e-3                 # torch.optim's, by its short name
    python train.py --optimizer NAdam --optimizer.momentum_decay 0.004        # its own options (--optimizer: alias)
    python train.py --model.optimizer my_pkg.Lion --model.lr 1e-4             # your own (importable)

    its constructor has      --model.lr   --model.momentum   e.g.
    momentum                 lr           momentum           SGD, RMSprop
    betas                    lr           betas[0]           Adam, AdamW, NAdam, RAdam, Adamax, a Lion
    neither                  lr           (none: refused)    Adagrad, Adadelta, Rprop

``sgd`` keeps the hand-written momentum (``--model.momentum_impl manual``) and SGD's flavours; a class's other options
are its own (``--model.optimizer.alpha 0.9``), and ``--model.weight_decay`` reaches a class that has it. A schedule
cycles the family's momentum as PyTorch's schedulers do (``momentum`` or ``betas[0]``).
"""

import importlib
import inspect
import json
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from lit_momentum.momentum import HandWrittenSGD
from lit_momentum.nets import net_config
from lit_momentum.settings import check_settings

OptimizerFactory = Callable[[Iterable], Optimizer]  # parameters -> optimizer: a class with its options
BUILT_IN = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
DEFAULT_MOMENTUM = 0.9  # --model.momentum's default: left alone, it is not a momentum typed for a family without one


def optimizer_config(optimizer: Any) -> str | dict[str, Any]:
    """``sgd``, ``adam``, ``adamw`` as they are; any other as ``{"class_path", "init_args"}`` (hparams, checkpoints)."""
    return optimizer if isinstance(optimizer, str) else net_config(optimizer, "--model.optimizer")


def optimizer_class(optimizer: Any) -> type[Optimizer]:
    """The class: a built-in name, a short name of ``torch.optim``, or an import path; a one-line error otherwise."""
    if isinstance(optimizer, str) and optimizer in BUILT_IN:
        return BUILT_IN[optimizer]
    path = optimizer if isinstance(optimizer, str) else optimizer_config(optimizer)["class_path"]
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module or "torch.optim"), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"--model.optimizer {path}: cannot import it: {err}") from None
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise ValueError(f"--model.optimizer {path}: not a torch.optim.Optimizer; give sgd, adam, adamw, a class of "
                         f"torch.optim (RMSprop, NAdam, ...) or an import path")
    return cls


def momentum_key(cls: type[Optimizer]) -> str | None:
    """Where the family keeps its momentum: ``momentum``, ``betas`` (its first) or nowhere (None)."""
    params = inspect.signature(cls).parameters
    return "momentum" if "momentum" in params else "betas" if "betas" in params else None


def class_options(optimizer: Any) -> tuple[type[Optimizer], dict[str, Any], dict[str, Any]]:
    """A class path's class, its options as given and its constructor's defaults."""
    cls = optimizer_class(optimizer)
    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()
                if p.default is not inspect.Parameter.empty}
    return cls, dict(optimizer_config(optimizer)["init_args"]), defaults


def check_class_optimizer(optimizer: Any, momentum_impl: str, lr: float, momentum: float, dampening: float,
                          nesterov: bool, weight_decay: float, beta2: float, eps: float) -> None:
    """A class path's options against the model's (each setting has one owner), then built once on a stand-in
    parameter, so that what its constructor refuses is one line before any work. A one-line ``ValueError``."""
    cls, given, defaults = class_options(optimizer)
    name = cls.__name__
    if momentum_impl != "builtin":
        raise ValueError(f"model.momentum_impl {momentum_impl} is SGD's hand-written momentum; --model.optimizer "
                         f"{name} takes builtin")
    for key, value, default in (("dampening", dampening, 0.0), ("nesterov", nesterov, False), ("beta2", beta2, 0.999),
                                ("eps", eps, 1e-8)):
        if value != default:
            raise ValueError(f"model.{key} is sgd's or adam's; {name} takes its own options as "
                             f"--model.optimizer.OPTION (python train.py --model.optimizer.help {name} lists them)")
    if given.get("lr", defaults.get("lr")) != defaults.get("lr"):
        raise ValueError("--model.optimizer.lr: the learning rate is --model.lr, for every optimizer")
    key = momentum_key(cls)
    if key == "momentum" and given.get("momentum", defaults["momentum"]) != defaults["momentum"]:
        raise ValueError(f"--model.optimizer.momentum: {name}'s momentum is --model.momentum, for every optimizer")
    if key == "betas" and given.get("betas") is not None and given["betas"][0] != defaults["betas"][0]:
        raise ValueError(f"--model.optimizer.betas: the first is {name}'s momentum, --model.momentum; give the "
                         f"second with it")
    if key is None and momentum not in (0, DEFAULT_MOMENTUM):
        raise ValueError(f"model.momentum {momentum:g}: {name} has no momentum (neither momentum nor betas); drop "
                         f"--model.momentum")
    if weight_decay and "weight_decay" not in defaults:
        raise ValueError(f"model.weight_decay {weight_decay:g}: {name} has no weight_decay option")
    if weight_decay and given.get("weight_decay", defaults.get("weight_decay")) != defaults.get("weight_decay"):
        raise ValueError("--model.optimizer.weight_decay: the weight decay is --model.weight_decay")
    try:
        build_optimizer(optimizer, [torch.zeros(1, requires_grad=True)], lr, momentum, weight_decay=weight_decay)
    except (ValueError, TypeError, RuntimeError) as err:
        raise ValueError(f"--model.optimizer {name}: {' '.join(str(err).split())}") from None


def check_run_settings(optimizer: Any, momentum_impl: str, lr: float, momentum: float, dampening: float,
                       nesterov: bool, weight_decay: float, beta2: float, eps: float) -> None:
    """A run's optimizer and settings, for any optimizer (``train.py``'s run, a grid's point): a one-line
    ``ValueError`` for the first bad one."""
    if isinstance(optimizer, str) and optimizer in BUILT_IN:
        check_settings(optimizer, momentum_impl, lr, momentum, dampening, nesterov, weight_decay, beta2, eps)
    else:  # a class path: its options against the model's, then the ranges every optimizer shares
        check_class_optimizer(optimizer, momentum_impl, lr, momentum, dampening, nesterov, weight_decay, beta2, eps)
        check_settings("adam", momentum_impl, lr, momentum, dampening, nesterov, weight_decay)


def build_optimizer(optimizer: Any, params: Iterable, lr: float, momentum: float, dampening: float = 0.0,
                    nesterov: bool = False, weight_decay: float = 0.0, beta2: float = 0.999, eps: float = 1e-8,
                    hand_written: bool = False) -> Optimizer:
    """The optimizer over ``params``: SGD (or ``HandWrittenSGD``), Adam, AdamW with the model's settings; a class
    path with its own options and the model's lr, momentum (its family's key) and weight decay."""
    if optimizer == "sgd":
        sgd = HandWrittenSGD if hand_written else torch.optim.SGD
        return sgd(params, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                   weight_decay=weight_decay)
    if optimizer in ("adam", "adamw"):
        return BUILT_IN[optimizer](params, lr=lr, betas=(momentum, beta2), eps=eps, weight_decay=weight_decay)
    cls, options, defaults = class_options(optimizer)
    options["lr"] = lr
    key = momentum_key(cls)
    if key == "momentum":
        options["momentum"] = momentum
    elif key == "betas":
        options["betas"] = (momentum, tuple(options.get("betas") or defaults["betas"])[1])
    if weight_decay:
        options["weight_decay"] = weight_decay
    return cls(params, **options)


def family_momentum(optimizer: Any) -> str | None:
    """Where ``--model.momentum`` goes in this optimizer: ``momentum``, ``betas`` (its first), or nowhere (None)."""
    return momentum_key(optimizer_class(optimizer))


def optimizer_label(optimizer: Any) -> str:
    """A class path in a run's name: the class and the options given that differ from its defaults
    (``RMSprop-alpha0.95``); the model's lr and momentum are named apart."""
    cls, given, defaults = class_options(optimizer)
    parts = [cls.__name__]
    for key, value in given.items():
        if key in ("lr", "momentum", "weight_decay") or value == defaults.get(key) or value is None:
            continue
        if key == "betas":
            value = tuple(value)[1]
            if value == tuple(defaults["betas"])[1]:
                continue
            key = "beta2_"
        parts.append(f"{key}{value:g}" if isinstance(value, int | float) and not isinstance(value, bool)
                     else key if value is True else f"no{key}" if value is False else f"{key}{value}")
    return "-".join(parts)


def same_optimizer(a: Any, b: Any) -> bool:
    """Whether two optimizers are one (from the command line, from a checkpoint: tuples and lists alike)."""
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    options = [json.dumps(optimizer_config(x)["init_args"], sort_keys=True, default=list) for x in (a, b)]
    return optimizer_class(a) is optimizer_class(b) and options[0] == options[1]  # (torch.optim.RMSprop: the same)
