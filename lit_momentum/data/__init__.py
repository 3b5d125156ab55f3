"""Data modules: the article's random labels, MNIST-1D, and the contract a user's own data module meets.

    python train.py --data RandomDataModule           # the default: the article's random data
    python train.py --data MNIST1DDataModule          # a real dataset, with validation and test splits
    python train.py --data my_pkg.MyDataModule        # any LightningDataModule with dim and num_classes
"""

import inspect
import re
from collections.abc import Mapping
from typing import Any

from lit_momentum.data.contract import check_batches, check_contract
from lit_momentum.data.mnist1d import MNIST1DDataModule
from lit_momentum.data.random_labels import RandomDataModule
from lit_momentum.data.tensors import EpochBatches, TensorBatches, TensorDataModule

__all__ = ["BUILT_IN", "EpochBatches", "MNIST1DDataModule", "RandomDataModule", "TensorBatches", "TensorDataModule",
           "check_batches", "check_contract", "data_name"]

BUILT_IN = (RandomDataModule, MNIST1DDataModule)  # given by their short names (--data MNIST1DDataModule)


def nameable(value: Any) -> bool:
    """A number, a boolean or a short word: what a directory name can carry (not a path, a list, a mapping)."""
    word = isinstance(value, str) and re.fullmatch(r"[\w.+-]{1,24}", value) is not None
    return isinstance(value, int | float | bool) or word


NOT_TRAINED = ("eval_batch_size", "workers", "num_workers", "persistent", "persistent_workers", "pin_memory")


def data_name(datamodule: object, options: Mapping[str, Any] | None = None) -> str:
    """The data in a run's name: the class without ``DataModule`` (``MNIST1D``, ``MyData``; "" for the article's random
    data), then each option given that differs from its default and changes what is trained (``options``: the data
    module's options as configured), so that runs on other data differ in name: ``MNIST1D-num_samples256-dim64``,
    ``Random-dim64-num_samples256`` (the article's data shrunk by ``configs/debug.yaml``)."""
    name = type(datamodule).__name__.removesuffix("DataModule")
    defaults = {k: p.default for k, p in inspect.signature(type(datamodule)).parameters.items()}
    changed = [f"{k}{v:g}" if isinstance(v, int | float) and not isinstance(v, bool) else f"{k}{v}"
               for k, v in (options or {}).items()
               if k in defaults and k not in NOT_TRAINED and v != defaults[k] and nameable(v)]
    if isinstance(datamodule, RandomDataModule) and not changed:
        return ""
    return "-".join([name, *changed])
