"""Steps to a target: when a curve first reaches it, the best learning rate per batch size, and where perfect
scaling ends (the critical batch size)."""

import math
from collections.abc import Sequence
from dataclasses import dataclass


def first_reached(steps: Sequence[int], values: Sequence[float], target: float, higher: bool) -> int | None:
    """The step of the first value at or past ``target`` (``higher``: an accuracy, else a loss), or None."""
    for step, value in zip(steps, values):
        if (value >= target) if higher else (value <= target):
            return int(step)
    return None


def steps_to_target(curve: dict[str, list], metric: str, target: float) -> int | None:
    """The training steps one grid point took to reach ``target``, from its curves as the sweep keeps them
    (``lit_momentum.sweep.merge.curves``: nothing from the epoch it diverged in on): ``val_acc`` (the step each
    validation was made at) or ``train_loss`` (the step at each epoch's end). The study's count, and the early
    stop's."""
    if metric == "val_acc":
        return first_reached(curve["val_step"], curve["val_acc"], target, higher=True)
    return first_reached(curve["train_step"], curve["train_loss"], target, higher=False)


@dataclass
class Best:
    """The best lr of one (optimizer, batch size): the mean steps over seeds there, and their range."""

    lr: float | None
    steps: float | None
    low: float | None
    high: float | None
    at_edge: bool  # the best lr is the smallest or largest tried: the range may not hold the true best


def best_lr(by_lr: dict[float, list[int | None]]) -> Best:
    """The lr whose seeds reach the target in the fewest steps on average; an lr counts only if every seed reaches
    it (a seed that never does makes the mean undefined, not small)."""
    done = {lr: s for lr, s in by_lr.items() if s and all(v is not None for v in s)}
    if not done:
        return Best(None, None, None, None, False)
    lr = min(done, key=lambda k: (sum(done[k]) / len(done[k]), k))
    lrs = sorted(by_lr)
    return Best(lr, sum(done[lr]) / len(done[lr]), min(done[lr]), max(done[lr]), lr in (lrs[0], lrs[-1]))


def critical_batch_size(batches: Sequence[int], steps: Sequence[float | None], factor: float = 2.0) -> float | None:
    """Where the curve leaves perfect scaling: the batch size at which the steps to target are ``factor`` times what
    halving them at every doubling from the smallest batch size would give (interpolated in log-log between the
    ladder's points). None where the curve never leaves it within the ladder (or has no point to start from)."""
    pts = [(b, s) for b, s in zip(batches, steps) if s is not None]
    if len(pts) < 2:
        return None
    b0, s0 = pts[0]
    ratio = [(b, s * b / (s0 * b0)) for b, s in pts]  # 1: perfect scaling
    for (b1, r1), (b2, r2) in zip(ratio, ratio[1:]):
        if r2 >= factor:
            if r1 >= factor:
                return b1
            w = (math.log(factor) - math.log(r1)) / (math.log(r2) - math.log(r1))
            return math.exp(math.log(b1) + w * (math.log(b2) - math.log(b1)))
    return None
