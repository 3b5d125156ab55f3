"""The article's data: random features with balanced random labels, nothing to learn but to memorise.

    python train.py                                   # X = randn(1000, 1000), labels half 0 / half 1, batches of 64
    python train.py --data.val_samples 1000           # a held-out set of the same kind: accuracy stays at chance

With ``val_samples`` the memorisation becomes a number: training accuracy climbs towards 100 % while held-out
accuracy stays at 50 % (Zhang et al. 2017, "Understanding deep learning requires rethinking generalization").
"""

import torch
from torch import Tensor

from lit_momentum.data.tensors import TensorDataModule


def halves(n: int) -> Tensor:
    """Labels of the article: the first half 0, the second half 1, (n,) float32."""
    return torch.cat([torch.zeros(n // 2), torch.ones(n // 2)])


class RandomDataModule(TensorDataModule):
    """``X = randn(num_samples, dim)`` and labels 0 then 1, made once from their own seeded generator.

    Args:
        dim: features per sample (the model's input width).
        num_samples: training samples; even, so the labels split in two equal halves.
        batch_size: samples per (global) batch; the last batch of an epoch may be smaller.
        seed: seeds the data and the batch order, independent of ``--seed_everything``.
        val_samples: a held-out set drawn after the training set from the same generator (the training data does
            not change with it), even; 0 (the article's) for none.
        eval_batch_size: samples per validation batch.
    """

    def __init__(self, dim: int = 1000, num_samples: int = 1000, batch_size: int = 64, seed: int = 0,
                 val_samples: int = 0, eval_batch_size: int = 1000) -> None:
        super().__init__(batch_size, seed, eval_batch_size)
        if dim < 2:
            raise ValueError(f"data.dim must be an integer >= 2, got {dim}")
        for name, n, least in (("num_samples", num_samples, 2), ("val_samples", val_samples, 0)):
            if n < least or n % 2:
                raise ValueError(f"data.{name} must be an even integer >= {least}, got {n}")
        self.save_hyperparameters()
        self.dim, self.num_classes = dim, 2
        gen = torch.Generator().manual_seed(seed)
        train = torch.randn(num_samples, dim, generator=gen), halves(num_samples)  # (N, dim), (N,)
        val = (torch.randn(val_samples, dim, generator=gen), halves(val_samples)) if val_samples else None
        self.set_splits(train, val)
