"""In-memory data cut into batches by index, on the training device: the base of the package's data modules.

A batch is ``(X[idx], y[idx])`` for an index tensor (no per-sample ``__getitem__``, no collate). Training batches
come in an order that depends only on ``(seed, epoch)``: every variant, every resumed run and every DDP world size
sees the very same global batches. Validation and test batches come in a fixed order.
"""

import functools
from collections.abc import Iterator

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

Split = tuple[Tensor, Tensor]  # features (n, dim), labels (n,)


class TensorBatches(Dataset):
    """``dataset[idx]`` with an index tensor returns a whole batch ``(X[idx], y[idx])``."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y = x, y

    def __getitem__(self, idx: Tensor) -> Split:
        return self.x[idx], self.y[idx]  # (B, dim), (B,)

    def __len__(self) -> int:
        return len(self.x)


class EpochBatches(Sampler[Tensor]):
    """Yields this rank's share of each global batch: of a permutation drawn from ``(seed, epoch)``, or in order.

    Lightning calls ``set_epoch`` before every epoch, after a resume too. Under DDP each global batch is split
    across the ranks, so the averaged gradient equals the single-process one. The indices are moved to ``device``
    once per epoch: the slices handed out per step need no host-device copy.
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int, device: torch.device, rank: int = 0,
                 world_size: int = 1, shuffle: bool = True) -> None:
        self.num_samples, self.batch_size, self.seed, self.shuffle = num_samples, batch_size, seed, shuffle
        self.device, self.rank, self.world_size = device, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[Tensor]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.num_samples, generator=gen)
        else:
            order = torch.arange(self.num_samples)
        for batch in order.to(self.device).split(self.batch_size):
            yield batch.tensor_split(self.world_size)[self.rank]

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)


def check_positive(**values: int) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"data.{name} must be an integer > 0, got {value}")


class TensorDataModule(L.LightningDataModule):
    """Splits held as tensors (``self.splits``: ``train``, and ``val`` / ``test`` where there are any), served on
    the training device. A subclass calls ``set_splits`` and sets ``dim`` (features) and ``num_classes`` (2: binary
    labels, one logit) in its ``__init__``: the contract of every data module (``lit_momentum.data.contract``).

    Args:
        batch_size: samples per (global) training batch; the last batch of an epoch may be smaller.
        seed: the training batch order (and the subclass's data).
        eval_batch_size: samples per validation / test batch (evaluation does not depend on the training batch).
    """

    shards_batches = True  # each global batch is split across DDP ranks here, not by Lightning's sampler
    dim: int
    num_classes: int

    def __init__(self, batch_size: int, seed: int, eval_batch_size: int) -> None:
        super().__init__()
        check_positive(batch_size=batch_size, eval_batch_size=eval_batch_size)
        self.batch_size, self.seed, self.eval_batch_size = batch_size, seed, eval_batch_size
        self.splits: dict[str, Split] = {}

    def loader(self, split: str) -> DataLoader:
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        x, y = self.splits[split]
        train = split == "train"
        sampler = EpochBatches(len(x), self.batch_size if train else self.eval_batch_size, self.seed, device, rank,
                               world, shuffle=train)
        # batch_size=None: the sampler yields whole batches of indices. No workers: the data is on the device
        # already, and a worker would copy every batch between processes.
        return DataLoader(TensorBatches(x.to(device), y.to(device)), sampler=sampler, batch_size=None)

    def set_splits(self, train: Split, val: Split | None = None, test: Split | None = None) -> None:
        """Hold the splits; ``val_dataloader`` / ``test_dataloader`` exist only for the splits there are, so that
        Lightning runs no validation (not even its sanity check) where there is no validation set."""
        self.splits = {name: split for name, split in (("train", train), ("val", val), ("test", test)) if split}
        for name, hook in (("val", "val_dataloader"), ("test", "test_dataloader")):
            if name in self.splits:  # as LightningDataModule.from_datasets does
                setattr(self, hook, functools.partial(self.loader, name))

    def train_dataloader(self) -> DataLoader:
        return self.loader("train")
