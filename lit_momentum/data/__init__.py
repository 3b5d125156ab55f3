"""Data modules: the article's random labels, MNIST-1D, and the contract a user's own data module meets.

    python train.py --data RandomDataModule           # the default: the article's random data
    python train.py --data MNIST1DDataModule          # a real dataset, with validation and test splits
    python train.py --data my_pkg.MyDataModule        # any LightningDataModule with dim and num_classes
"""

from lit_momentum.data.contract import check_batches, check_contract
from lit_momentum.data.mnist1d import MNIST1DDataModule
from lit_momentum.data.random_labels import RandomDataModule
from lit_momentum.data.tensors import EpochBatches, TensorBatches, TensorDataModule

__all__ = ["BUILT_IN", "EpochBatches", "MNIST1DDataModule", "RandomDataModule", "TensorBatches", "TensorDataModule",
           "check_batches", "check_contract", "data_name"]

BUILT_IN = (RandomDataModule, MNIST1DDataModule)  # given by their short names (--data MNIST1DDataModule)


def data_name(datamodule: object) -> str:
    """The data in a run's name: "" for the article's random data, else the class without ``DataModule``
    (``MNIST1D``, ``MyData``)."""
    return "" if isinstance(datamodule, RandomDataModule) else type(datamodule).__name__.removesuffix("DataModule")
