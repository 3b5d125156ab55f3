"""Momentum written by hand: the article's velocity rule, with every flavour of ``torch.optim.SGD``.

The article keeps a velocity per parameter, ``v = m v + g``, and hands it to plain SGD in place of the gradient.
PyTorch generalises that rule; this module reproduces it exactly, quirks included:

    d = g + weight_decay * p             # weight decay enters the buffer
    v = d                   (first step: the buffer starts as the gradient, no dampening)
    v = m v + (1 - dampening) d          (every later step)
    step direction = d + m v if nesterov else v

Plain SGD then applies ``p -= lr * direction``. All updates run over lists of tensors with ``torch._foreach_*``.
"""

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

BUFFER_KEY = "velocity"  # where the buffers live in the (momentum-free) optimizer's state


@torch.no_grad()
def velocity_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    buffers: Sequence[Tensor | None],
    momentum: float,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> list[Tensor]:
    """Turn ``grads`` (in place) into SGD's step direction and return the updated velocity buffers.

    ``buffers`` holds ``None`` for a parameter on its first step (and stays ``None`` at momentum 0). ``grads``
    and the buffers never share memory, so zeroing or accumulating gradients cannot touch the velocity.
    """
    grads = list(grads)
    if weight_decay != 0:
        torch._foreach_add_(grads, list(params), alpha=weight_decay)
    if momentum == 0:  # plain SGD: no buffers, dampening and nesterov do not apply (as in torch.optim.SGD)
        return list(buffers)
    if all(b is not None for b in buffers):
        buffers = list(buffers)
        torch._foreach_mul_(buffers, momentum)
        torch._foreach_add_(buffers, grads, alpha=1 - dampening)
    else:  # first step (for some parameters): the buffer is a copy of the gradient, undamped
        buffers = [g.clone() if b is None else b.mul_(momentum).add_(g, alpha=1 - dampening)
                   for g, b in zip(grads, buffers)]
    if nesterov:
        torch._foreach_add_(grads, buffers, alpha=momentum)
    else:
        torch._foreach_copy_(grads, buffers)
    return buffers


class HandWrittenMomentum:
    """A step pre-hook that makes a momentum-free SGD apply momentum: ``sgd.register_step_pre_hook(hook)``.

    It runs inside ``optimizer.step()``, so it sees unscaled gradients under mixed precision and does not run on a
    step the gradient scaler skips. The buffers live in ``optimizer.state``: checkpoints save and restore them.
    """

    def __init__(self, momentum: float, dampening: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        self.settings = dict(momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay)

    def __call__(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        for group in optimizer.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            states = [optimizer.state[p] for p in params]
            buffers = velocity_step(
                params, [p.grad for p in params], [s.get(BUFFER_KEY) for s in states], **self.settings
            )
            for state, buf in zip(states, buffers):
                if buf is not None:
                    state[BUFFER_KEY] = buf
