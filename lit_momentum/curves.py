"""What a loss curve says in a few numbers: final, best, when it first got below a threshold, how much it wobbled."""

import math
from collections.abc import Callable


def curve_stats(losses: list[float], threshold: float) -> dict[str, float]:
    """Final and best loss, first epoch below ``threshold``, ping-pong index and total variation / net decrease."""
    steps = [b - a for a, b in zip(losses, losses[1:])]
    net = losses[0] - losses[-1]
    below = next((i for i, v in enumerate(losses) if v < threshold), None)
    return dict(
        final_loss=losses[-1],
        best_loss=min(losses),
        epoch_below_threshold=below if below is not None else "",
        ping_pong=sum(d > 0 for d in steps) / max(len(steps), 1),  # share of epochs whose loss rose
        tv_over_net=sum(abs(d) for d in steps) / net if net > 0 else math.inf,  # 1.0 = a straight descent
    )


def running_best(best: list[float], new: list[float], pick: Callable[[float, float], float]) -> list[float]:
    """Each point's best so far after one more value (``pick`` is ``min`` or ``max``): the same as ``pick`` over its
    whole column, kept step by step (rescanning the history every epoch costs its square)."""
    return [pick(b, v) for b, v in zip(best, new)] if best else list(new)
