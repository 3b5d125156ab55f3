"""A data module written the way most are: a ``Dataset`` that adds random noise to each sample as it is read, served
by a plain ``DataLoader(shuffle=True)`` (both draw from PyTorch's global generator), and a held-out set; and the
package's data with a batch-transfer hook of the data module's own."""

from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lit_momentum.data import RandomDataModule


class Noisy(Dataset):
    """``(x + noise * randn, y)``: a random augmentation drawn from the global generator at every read."""

    def __init__(self, x: Tensor, y: Tensor, noise: float) -> None:
        self.x, self.y, self.noise = x, y, noise

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.x[i] + self.noise * torch.randn(self.x.shape[1]), self.y[i]


class ShuffledBlobs(L.LightningDataModule):
    """Four Gaussian blobs in 8 dimensions: 240 training samples (shuffled, noised), 80 held out."""

    def __init__(self, batch_size: int = 32, noise: float = 0.3, seed: int = 0) -> None:
        super().__init__()
        self.dim, self.num_classes, self.batch_size, self.noise = 8, 4, batch_size, noise
        self.seed = seed  # the data's stream (its loader's order and noise): the module uses it for nothing else
        gen = torch.Generator().manual_seed(0)
        self.y = torch.arange(320) % 4
        self.x = torch.randn(320, 8, generator=gen) + 2 * torch.nn.functional.one_hot(self.y, 8).float()

    def train_dataloader(self) -> DataLoader:
        return DataLoader(Noisy(self.x[:240], self.y[:240], self.noise), batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.x[240:], self.y[240:]), batch_size=40)


class DrawnAtStart(L.LightningDataModule):
    """The usual quick experiment: inputs drawn from the global generator in ``__init__``, noisy labels in ``setup``,
    a shuffling loader with noise as it reads (in ``workers`` processes, ``persistent`` or not), and 64 validation
    samples in batches of 40 and 24."""

    def __init__(self, batch_size: int = 32, workers: int = 0, persistent: bool = False) -> None:
        super().__init__()
        self.dim, self.num_classes, self.batch_size = 8, 2, batch_size
        self.workers, self.persistent = workers, persistent
        self.x, self.w = torch.randn(200, 8), torch.randn(8)

    def setup(self, stage: str) -> None:
        y = (self.x @ self.w + 0.5 * torch.randn(200) > 0).float()
        self.train, self.val = Noisy(self.x[:136], y[:136], 0.1), TensorDataset(self.x[136:], y[136:])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True, num_workers=self.workers,
                          persistent_workers=self.persistent and self.workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=40)


def doubled(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    x, y = batch
    return 2 * x, y  # a change every step's loss shows


class DoubledBefore(RandomDataModule):
    """The package's random data, each batch's inputs doubled by a batch-transfer hook: the one before the
    transfer (``DoubledInTransfer``, ``DoubledAfter``: the transfer itself, the one after it)."""

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return doubled(batch)


class DoubledInTransfer(RandomDataModule):
    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        return doubled(super().transfer_batch_to_device(batch, device, dataloader_idx))


class DoubledAfter(RandomDataModule):
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return doubled(batch)
