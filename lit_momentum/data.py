"""The article's random dataset as a LightningDataModule.

``X = randn(num_samples, dim)``, labels: first half 0, second half 1. Batches are cut from the tensor with index
batches (no per-sample ``__getitem__``, no collate), in an order that depends only on ``(seed, epoch)``: every
variant, every resumed run and every DDP world size sees the very same global batches.
"""

from collections.abc import Iterator

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler


class TensorBatches(Dataset):
    """``dataset[idx]`` with an index tensor returns a whole batch ``(X[idx], y[idx])``."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y = x, y

    def __getitem__(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        return self.x[idx], self.y[idx]  # (B, dim), (B,)

    def __len__(self) -> int:
        return len(self.x)


class EpochBatches(Sampler[Tensor]):
    """Yields this rank's share of each global batch of a permutation drawn from ``(seed, epoch)``.

    Lightning calls ``set_epoch`` before every epoch, after a resume too. Under DDP each global batch is split
    across the ranks, so the averaged gradient equals the single-process one. The permutation is moved to
    ``device`` once per epoch: the slices handed out per step need no host-device copy.
    """

    def __init__(
        self, num_samples: int, batch_size: int, seed: int, device: torch.device, rank: int = 0, world_size: int = 1
    ) -> None:
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.device, self.rank, self.world_size = device, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[Tensor]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(self.num_samples, generator=gen).to(self.device)
        for batch in perm.split(self.batch_size):
            yield batch.tensor_split(self.world_size)[self.rank]

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)


class RandomDataModule(L.LightningDataModule):
    """Random features with balanced binary labels, made once from their own seeded generator.

    Args:
        dim: features per sample (the MLP's input width; the CLI links it to ``model.dim``).
        num_samples: rows of ``X``; even, so the labels split in two equal halves.
        batch_size: samples per (global) batch; the last batch of an epoch may be smaller.
        seed: seeds the data and the batch order, independent of ``--seed_everything``.
        num_workers: DataLoader workers. At 0 (default) the data lives on the training device.
    """

    def __init__(
        self, dim: int = 1000, num_samples: int = 1000, batch_size: int = 64, seed: int = 0, num_workers: int = 0
    ) -> None:
        super().__init__()
        if dim < 2:
            raise ValueError(f"data.dim must be an integer >= 2, got {dim}")
        if num_samples < 2 or num_samples % 2:
            raise ValueError(f"data.num_samples must be an even integer >= 2, got {num_samples}")
        if batch_size <= 0:
            raise ValueError(f"data.batch_size must be an integer > 0, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be an integer >= 0, got {num_workers}")
        self.save_hyperparameters()
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(num_samples, dim, generator=gen)  # (N, dim) float32
        half = num_samples // 2
        self.y = torch.cat([torch.zeros(half), torch.ones(half)])  # (N,) float32: 0 then 1

    def train_dataloader(self) -> DataLoader:
        hp, trainer = self.hparams, self.trainer
        device = trainer.strategy.root_device if trainer is not None and hp.num_workers == 0 else torch.device("cpu")
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        sampler = EpochBatches(hp.num_samples, hp.batch_size, hp.seed, device, rank, world)
        return DataLoader(
            TensorBatches(self.x.to(device), self.y.to(device)),
            sampler=sampler,
            batch_size=None,  # the sampler yields whole batches of indices
            num_workers=hp.num_workers,
            pin_memory=hp.num_workers > 0 and torch.cuda.is_available(),
            persistent_workers=hp.num_workers > 0,
        )
