"""How losses and accuracies are averaged, for single runs (``train.py``, ``test``, ``compare``) and grids alike.

    train/loss             the mean of the epoch's batch losses (the article's curve): ``epoch_mean``
    val/*, test/*          means over samples, whatever the batch sizes (64 + 36 weigh 64 : 36): ``SampleMean``

Both add up in float64 whatever ``--precision`` (float32 on Apple's MPS, which has no float64): a bf16 run's
``val/loss`` is the mean of its bf16 per-sample losses, not a bf16 number, and a grid point's equals its run's. Each
value (a grid point's) is summed on its own, contiguous, so it does not depend on its neighbours in the grid.
"""

from collections.abc import Callable

import torch
from torch import Tensor


def accumulation_dtype(device: torch.device) -> torch.dtype:
    """float64, where the device has it."""
    return torch.float32 if device.type == "mps" else torch.float64


def stacked(step_losses: list[Tensor] | tuple[Tensor, ...]) -> Tensor:
    """An epoch's step losses (each a number, or (N,) for a grid) as one (S, ...) tensor in the accumulation dtype:
    a bf16 loss is exact in it, and a DDP mean over ranks is not rounded to bf16."""
    values = torch.stack(list(step_losses))
    return values.to(accumulation_dtype(values.device))


def epoch_mean(step_losses: Tensor) -> Tensor:
    """The epoch's mean batch loss: (S, ...) step losses -> (...), each column summed on its own."""
    values = step_losses.to(accumulation_dtype(step_losses.device))
    return values.movedim(0, -1).contiguous().sum(-1) / len(values)


class SampleMean:
    """An evaluation's loss and accuracy as means over its samples: per-sample losses and hits summed over the
    batches (on the device; read once at the end, one sync), every rank's share added before dividing.

        mean = SampleMean()
        mean.update(losses, correct)        # per batch: (..., B) each; a grid's (N, B) gives each point its own
        loss, acc = mean.compute(reduce)    # (...) each; reduce: the strategy's sum over DDP ranks
    """

    def __init__(self) -> None:
        self.sums: list[Tensor] = []  # per batch (3, ...): loss sum, hits, samples

    def update(self, losses: Tensor, correct: Tensor) -> None:
        dtype = accumulation_dtype(losses.device)
        count = torch.full_like(losses[..., 0], losses.shape[-1], dtype=dtype)  # exact: no bf16 rounding of 257
        self.sums.append(torch.stack([losses.to(dtype).sum(-1), correct.to(dtype).sum(-1), count]))

    def compute(self, reduce: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """``(loss, accuracy)``, and start afresh. ``reduce(sums)`` adds every rank's sums (DDP)."""
        sums = torch.stack(self.sums).movedim(0, -1).contiguous().sum(-1)  # (V, 3, ...) -> (3, ...)
        self.sums.clear()
        if reduce is not None:
            sums = reduce(sums)
        return sums[0] / sums[2], sums[1] / sums[2]
