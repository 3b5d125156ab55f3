"""MNIST-1D: ten digit shapes as 1-D signals, shifted, scaled, sheared and noised (Greydanus & Kobak, "Scaling down
deep learning with MNIST-1D", ICML 2024). Small enough for a laptop, hard enough that models differ.

    python train.py --config configs/mnist1d.yaml                     # an MLP on it, with validation
    python train.py --data MNIST1DDataModule --data.iid_noise_scale 0.1

Made here by the ``mnist1d`` package's own generator (``mnist1d.data.make_dataset``; no download, about a second
for the default 5000 signals): with its defaults (seed 42) it is the paper's dataset, 4000 training and 1000 test
signals of length 40. A tenth of the training signals (``val_fraction``) is held out for validation; the test
signals are only for ``python train.py test``.
"""

import functools
import random

import numpy as np
import torch

from lit_momentum.data.tensors import TensorDataModule


@functools.lru_cache(maxsize=4)  # compare and the tests build several runs on the same data in one process
def generate(**settings: float | int | bool) -> dict[str, np.ndarray]:
    """The generator's output for these settings (its other settings at their defaults), global RNGs untouched."""
    from mnist1d.data import get_dataset_args, make_dataset  # imported here: it takes a second (matplotlib, scipy)

    args = get_dataset_args()
    for key, value in settings.items():
        setattr(args, key, value)
    states = random.getstate(), np.random.get_state()
    try:  # make_dataset seeds Python's and NumPy's global generators
        return make_dataset(args)
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])


class MNIST1DDataModule(TensorDataModule):
    """MNIST-1D from its generator: ``dim`` features, 10 classes; train / val / test splits.

    Args:
        num_samples: signals generated (a multiple of 10 is used); 80 % train (val included), 20 % test.
        dim: the signal's length (the generator's ``final_seq_length``; 40 in the paper).
        val_fraction: the share of the training signals held out for validation (the last ones; the generator
            shuffled them): 0.1 keeps 3600 for training and 400 for validation.
        batch_size: samples per (global) training batch.
        seed: the generator's seed (42: the paper's dataset) and the training batch order.
        iid_noise_scale, corr_noise_scale, shear_scale, scale_coeff, max_translation, shuffle_seq: the generator's
            transformations, at its defaults (``shuffle_seq`` permutes the positions: a test of spatial priors).
        eval_batch_size: samples per validation / test batch.
    """

    def __init__(self, num_samples: int = 5000, dim: int = 40, val_fraction: float = 0.1, batch_size: int = 64,
                 seed: int = 42, iid_noise_scale: float = 2e-2, corr_noise_scale: float = 0.25,
                 shear_scale: float = 0.75, scale_coeff: float = 0.4, max_translation: int = 48,
                 shuffle_seq: bool = False, eval_batch_size: int = 1000) -> None:
        super().__init__(batch_size, seed, eval_batch_size)
        if num_samples < 20:
            raise ValueError(f"data.num_samples must be an integer >= 20 (two of each digit), got {num_samples}")
        if dim < 2:
            raise ValueError(f"data.dim must be an integer >= 2, got {dim}")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        scales = dict(iid_noise_scale=iid_noise_scale, corr_noise_scale=corr_noise_scale, shear_scale=shear_scale,
                      scale_coeff=scale_coeff, max_translation=max_translation)
        for name, value in scales.items():
            if not value >= 0:
                raise ValueError(f"data.{name} must be >= 0, got {value}")
        self.save_hyperparameters()
        data = generate(num_samples=num_samples, final_seq_length=dim, seed=seed, shuffle_seq=shuffle_seq, **scales)
        x, y = torch.tensor(data["x"], dtype=torch.float32), torch.tensor(data["y"])  # (n, dim), (n,) int64
        keep = len(x) - round(val_fraction * len(x))
        test = torch.tensor(data["x_test"], dtype=torch.float32), torch.tensor(data["y_test"])
        self.set_splits((x[:keep], y[:keep]), (x[keep:], y[keep:]) if keep < len(x) else None, test)
        self.dim, self.num_classes = dim, 10
