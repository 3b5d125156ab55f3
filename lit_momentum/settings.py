"""What an optimizer's settings may be: one check for a single run (``train.py``) and for every grid point.

    sgd      lr, momentum, dampening, nesterov, weight_decay      (torch.optim.SGD; momentum_impl builtin or manual)
    adam     lr, momentum (its beta1), beta2, eps, weight_decay   (torch.optim.Adam: weight decay as L2)
    adamw    lr, momentum (its beta1), beta2, eps, weight_decay   (torch.optim.AdamW: decoupled weight decay)
"""

OPTIMIZERS = ("sgd", "adam", "adamw")
ADAM_DEFAULTS = {"beta2": 0.999, "eps": 1e-8}  # PyTorch's; an SGD run must leave them so


def check_optimizer(optimizer: str, momentum_impl: str) -> None:
    """The optimizer and how SGD's momentum is applied: a one-line ``ValueError`` if either is unknown."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"model.optimizer must be one of {', '.join(OPTIMIZERS)}; got {optimizer!r}")
    if momentum_impl not in ("builtin", "manual"):
        raise ValueError(f"model.momentum_impl must be one of builtin, manual; got {momentum_impl!r}")


def check_settings(optimizer: str, momentum_impl: str, lr: float, momentum: float, dampening: float,
                   nesterov: bool, weight_decay: float, beta2: float = 0.999, eps: float = 1e-8) -> None:
    """Raise a one-line ``ValueError`` naming the first bad option and what is allowed."""
    check_optimizer(optimizer, momentum_impl)
    if not 0 < lr < 1e30:  # a larger step overflows float32 parameters
        raise ValueError(f"model.lr must be > 0 and < 1e30, got {lr}")
    if not 0 <= momentum < 1:
        raise ValueError(f"model.momentum must be in [0, 1), got {momentum}")
    if not 0 <= dampening <= 1:
        raise ValueError(f"model.dampening must be in [0, 1], got {dampening}")
    if nesterov and (momentum == 0 or dampening != 0):
        raise ValueError(f"model.nesterov needs momentum > 0 and dampening 0, got momentum {momentum}, "
                         f"dampening {dampening}")
    if not weight_decay >= 0:
        raise ValueError(f"model.weight_decay must be >= 0, got {weight_decay}")
    if not 0 <= beta2 < 1:
        raise ValueError(f"model.beta2 must be in [0, 1), got {beta2}")
    if not eps > 0:
        raise ValueError(f"model.eps must be > 0, got {eps}")
    if optimizer == "sgd":
        given = [f"{k} {v:g}" for k, v in (("beta2", beta2), ("eps", eps)) if v != ADAM_DEFAULTS[k]]
        if given:
            raise ValueError(f"model.{given[0].split()[0]} ({given[0].split()[1]}) is Adam's; model.optimizer sgd has "
                             f"none: choose --model.optimizer adam or adamw, or drop it")
    elif momentum_impl == "manual" or nesterov or dampening != 0:
        raise ValueError(f"model.optimizer {optimizer} takes momentum (as beta1), beta2, eps, lr and weight_decay "
                         f"only: momentum_impl must be builtin, nesterov false and dampening 0")
