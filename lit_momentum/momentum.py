"""Momentum written by hand: the article's velocity rule, with every flavour of ``torch.optim.SGD``.

The article keeps a velocity per parameter, ``v = m v + g``, and hands it to plain SGD in place of the gradient.
PyTorch generalises that rule; this module reproduces it exactly, quirks included:

    d = g + weight_decay * p             # weight decay enters the buffer
    v = d                   (first step: the buffer starts as the gradient, no dampening)
    v = m v + (1 - dampening) d          (every later step)
    step direction = d + m v if nesterov else v

Plain SGD then applies ``p -= lr * direction``. One function, ``velocity_step``, applies the rule for a single run
(settings as Python numbers, one tensor at a time on a CPU and over ``torch._foreach_*`` elsewhere, as
``torch.optim.SGD`` chooses) and for a grid of runs stacked
along a leading dimension (settings as tensors with one value per grid point). Both round exactly as
``torch.optim.SGD`` does: ``x.addcmul_(y, s)`` with a per-point ``s`` is the same fused multiply-add as
``x.add_(y, alpha=s)``. That holds in float32 and float64; for float16 and bfloat16 parameters (``--precision
bf16-true``) a per-point tensor setting would be rounded to the parameter's dtype (momentum 0.99 to 0.98828, an
effective step of 85 instead of 100) where ``torch.optim`` hands PyTorch a Python number, so ``GridSGD`` applies the
rule to those point by point with Python numbers, exactly as a single run does.
"""

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.sgd import sgd

BUFFER_KEY = "velocity"  # where the buffers live in the optimizer's state
LOW = (torch.float16, torch.bfloat16)  # dtypes a per-point tensor setting would round: their grids go point by point

Setting = float | bool | Tensor  # a number for one run; a tensor (N,) for N runs stacked along dim 0


def per_point(s: Tensor, x: Tensor) -> Tensor:
    """View a (N,) setting so that it broadcasts over a stacked tensor (N, ...)."""
    return s.view(-1, *[1] * (x.dim() - 1)).to(x.dtype)


def scale_(xs: list[Tensor], s: Setting) -> None:
    """``x *= s`` for every x."""
    if not xs:
        return
    if isinstance(s, Tensor):
        for x in xs:
            x.mul_(per_point(s, x))
    elif xs[0].device.type == "cpu":  # torch.optim's choice: one tensor at a time on a CPU (the _foreach ops
        for x in xs:  # round a number to bfloat16 / float16 first, 0.99 to 0.98828), _foreach elsewhere
            x.mul_(s)
    else:
        torch._foreach_mul_(xs, s)


def add_scaled_(ys: list[Tensor], xs: Sequence[Tensor], s: Setting) -> None:
    """``y += s * x`` for every pair, rounded once, as ``torch.optim.SGD`` rounds it."""
    if not ys:
        return
    if isinstance(s, Tensor):
        for y, x in zip(ys, xs):
            y.addcmul_(x, per_point(s, y))
    elif ys[0].device.type == "cpu":  # as scale_
        for y, x in zip(ys, xs):
            y.add_(x, alpha=s)
    else:
        torch._foreach_add_(ys, list(xs), alpha=s)


def closure_loss(closure: Any) -> Any:
    """An optimizer's closure, run with gradients on (``torch.optim``'s convention); None without one."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def is_off(s: Setting) -> bool:
    """True for a number that switches its term off (0 or False). A tensor is never off: the grid decides once,
    when it is built, which terms any of its points needs (no host sync inside a step)."""
    return not isinstance(s, Tensor) and s == 0


@torch.no_grad()
def velocity_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    buffers: Sequence[Tensor | None],
    momentum: Setting,
    dampening: Setting = 0.0,
    nesterov: Setting = False,
    weight_decay: Setting = 0.0,
) -> tuple[list[Tensor], list[Tensor | None]]:
    """Apply the rule once: returns SGD's step directions and the updated velocity buffers.

    ``grads`` are changed in place (they become ``d``). ``buffers`` holds ``None`` for a parameter on its first step
    (and stays ``None`` at momentum 0). The directions are the buffers themselves without nesterov (no copy): a caller
    that hands them on as gradients must copy them, so that zeroing a gradient can never touch the velocity.
    A tensor setting has one value per grid point; a grid point with momentum 0 must have dampening 0 and nesterov
    off (``torch.optim.SGD`` ignores both at momentum 0).
    """
    grads = list(grads)
    if not is_off(weight_decay):
        add_scaled_(grads, params, weight_decay)
    if is_off(momentum):  # plain SGD: no buffers, dampening and nesterov do not apply (as in torch.optim.SGD)
        return grads, list(buffers)
    if all(b is not None for b in buffers):
        buffers = list(buffers)
        scale_(buffers, momentum)
        add_scaled_(buffers, grads, 1 - dampening)
    else:  # first step (for some parameters): the buffer is a copy of the gradient, undamped
        started = [(b, g) for g, b in zip(grads, buffers) if b is not None]
        scale_([b for b, _ in started], momentum)
        add_scaled_([b for b, _ in started], [g for _, g in started], 1 - dampening)
        buffers = [g.clone() if b is None else b for g, b in zip(grads, buffers)]
    if isinstance(nesterov, Tensor):  # some points look ahead, some not: direction = n d + (n ? m : 1) v
        scale_(grads, nesterov)
        add_scaled_(grads, buffers, torch.where(nesterov.bool(), momentum, 1.0))
        return grads, buffers
    if nesterov:
        add_scaled_(grads, buffers, momentum)
        return grads, buffers
    return list(buffers), buffers


class HandWrittenSGD(torch.optim.SGD):
    """``torch.optim.SGD`` with its momentum written by hand: the velocity rule above makes each step's direction,
    which PyTorch's momentum-free SGD (``torch.optim.sgd.sgd``, momentum 0) applies in place of the gradient.

    Its param groups are ``torch.optim.SGD``'s (lr, momentum, dampening, nesterov, weight_decay), read at every step:
    a learning-rate scheduler drives it as it drives the built-in one (``OneCycleLR`` cycles its momentum). It runs
    inside ``optimizer.step()``, so it sees unscaled gradients under mixed precision and does not run on a step the
    gradient scaler skips. The buffers live in ``optimizer.state``: checkpoints save and restore them.
    """

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = closure_loss(closure)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            states = [self.state[p] for p in params]
            directions, buffers = velocity_step(params, [p.grad for p in params],
                                                [s.get(BUFFER_KEY) for s in states], group["momentum"],
                                                group["dampening"], group["nesterov"], group["weight_decay"])
            for state, buf in zip(states, buffers):
                if buf is not None:
                    state[BUFFER_KEY] = buf
            sgd(params, directions, [None] * len(params), foreach=group["foreach"],
                                fused=group["fused"], weight_decay=0.0, momentum=0.0, lr=group["lr"], dampening=0.0,
                                nesterov=False, maximize=group["maximize"])  # p -= lr * direction
        return loss


def to_device(values: list[float], device: torch.device) -> Tensor:
    """(N,) float64 on ``device`` without a host sync: from pinned memory, asynchronously, on a GPU."""
    t = torch.tensor(values, dtype=torch.float64)
    return t.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else t


class GridSGD(Optimizer):
    """SGD for N runs stacked along dim 0 of every parameter, each with its own settings, by ``velocity_step``.

    ``settings`` maps ``lr``, ``momentum``, ``dampening``, ``nesterov`` and ``weight_decay`` to (N,) tensors (read at
    every step; after changing one in place, e.g. to freeze a point, call ``refresh``) or to numbers that hold for
    every point. Buffers live in ``self.state`` (checkpointed). Point k's update is the update ``torch.optim.SGD``
    would make with point k's settings, to the last bit, in every dtype.
    """

    def __init__(self, params: Sequence[Tensor], settings: dict[str, Setting]) -> None:
        super().__init__(params, defaults={})
        self.settings = settings
        self.refresh()

    def refresh(self) -> None:
        """The settings as Python numbers per point (one sync), for float16 and bfloat16 parameters."""
        values = {k: v.tolist() if isinstance(v, Tensor) else v for k, v in self.settings.items()}
        n = next((len(v) for v in values.values() if isinstance(v, list)), 1)
        self.host = [{k: v[i] if isinstance(v, list) else v for k, v in values.items()} for i in range(n)]

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = closure_loss(closure)
        s = self.settings
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        low = [p for p in params if p.dtype in LOW]
        params = [p for p in params if p.dtype not in LOW]
        states = [self.state[p] for p in params]
        directions, buffers = velocity_step(params, [p.grad for p in params], [st.get(BUFFER_KEY) for st in states],
                                            s["momentum"], s["dampening"], s["nesterov"], s["weight_decay"])
        for state, buf in zip(states, buffers):
            if buf is not None:
                state[BUFFER_KEY] = buf
        add_scaled_(params, directions, -s["lr"])  # p -= lr * direction
        if low:
            self.step_points(low)
        return loss

    def set_points(self, name: str, values: list[float]) -> None:
        """One value per point for one setting (a schedule's, at this step): its tensor in place (no host sync), its
        host copies. A setting handed over as a number stays one while every point has the same value."""
        s = self.settings[name]
        if isinstance(s, Tensor):
            s.copy_(to_device(values, s.device))
        elif any(v != values[0] for v in values):
            raise RuntimeError(f"GridSGD: {name} was one number for every point; a schedule made it differ")
        else:
            self.settings[name] = values[0]
        for host, v in zip(self.host, values):
            host[name] = v

    def step_points(self, params: list[Tensor]) -> None:
        """Point by point, each with its settings as Python numbers: a single run's arithmetic on its slices."""
        states = [self.state[p] for p in params]
        started = [BUFFER_KEY in st for st in states]
        for k, s in enumerate(self.host):
            bufs = [st[BUFFER_KEY][k] if on else None for st, on in zip(states, started)]
            directions, new = velocity_step([p[k] for p in params], [p.grad[k] for p in params], bufs,
                                            s["momentum"], s["dampening"], bool(s["nesterov"]), s["weight_decay"])
            for p, st, on, buf in zip(params, states, started, new):
                if not on and buf is not None:  # its first step: the stacked buffer, made once, gets its slice
                    st.setdefault(BUFFER_KEY, torch.zeros_like(p))[k].copy_(buf)
            add_scaled_([p[k] for p in params], directions, -s["lr"])

    def state_tensors(self) -> list[Tensor]:
        """The optimizer's per-point state: the velocity buffers (none before the first step, or at momentum 0)."""
        return [state[BUFFER_KEY] for state in self.state.values() if BUFFER_KEY in state]
