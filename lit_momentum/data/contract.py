"""What the model needs to know of any data module, checked before anything is written or trained.

A data module fits the template when it has ``dim`` (input features per sample, an int >= 1), ``num_classes``
(an int >= 2: 2 means binary labels, trained with one logit and BCE, as in the article; k > 2 means k logits and
cross-entropy) and a ``train_dataloader``; ``val_dataloader`` and ``test_dataloader`` are optional. Its batches are
pairs ``(x, y)``: ``x`` (B, dim) floating point (float32; float64 under ``--precision 64-true``), ``y`` (B,) class
indices: integer-valued, in ``0 .. num_classes - 1`` (0 or 1 for binary labels), as floats or ints. One real batch of
every split the run uses is checked (after the module's ``setup``): a wrong one ends in one line naming the data
module, the split and what was found, not in a traceback after the run's files are written, nor (binary labels of
-1 and 1, or 0..9 for two classes) in a silently negative loss, nor (an empty validation or test set) in a run whose
held-out metrics are silently missing.
"""

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities.model_helpers import is_overridden

LOADERS = {"train": "train_dataloader", "val": "val_dataloader", "test": "test_dataloader"}


def check_contract(dm: L.LightningDataModule) -> L.LightningDataModule:
    """Return ``dm`` if it meets the contract; else raise a one-line ``ValueError`` naming what is missing."""
    name = type(dm).__name__
    for attr, least in (("dim", 1), ("num_classes", 2)):
        value = getattr(dm, attr, None)
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ValueError(f"--data {name}: a data module needs an attribute {attr} (an int >= {least}) set in "
                             f"its __init__, got {value!r}; see lit_momentum/data/contract.py")
    if type(dm).train_dataloader is L.LightningDataModule.train_dataloader:
        raise ValueError(f"--data {name}: a data module needs a train_dataloader method")
    return dm


def check_batches(dm: L.LightningDataModule, stage: str, float64: bool = False) -> None:
    """Set ``dm`` up for ``stage`` (``fit`` or ``test``) and check one real batch of each split that stage uses:
    train (and val where there is one) to fit, test to test. ``float64``: the run computes in float64. The global
    random generators are left as they were (a shuffling loader draws from them): the network built next gets the
    initial weights it gets without the check."""
    states = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            check_splits(dm, stage, float64)
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])


def check_splits(dm: L.LightningDataModule, stage: str, float64: bool) -> None:
    name = type(dm).__name__
    try:
        dm.setup(stage)
    except Exception as err:  # noqa: BLE001 (the module's own message, as one line)
        raise ValueError(f"--data {name}: its setup('{stage}') failed: {one_line_of(err)}") from None
    splits = ["train", "val"] if stage == "fit" else ["test"]
    for split in splits:
        if split != "train" and not is_overridden(LOADERS[split], dm, L.LightningDataModule):
            continue
        try:
            batch = next(iter(getattr(dm, LOADERS[split])()), None)
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"--data {name}: its {LOADERS[split]}() failed: {one_line_of(err)}") from None
        where = f"--data {name}: the {split} batches"
        if batch is None:  # (an empty held-out set would train with no validation, its columns and figures blank)
            sets = {"train": "training set", "val": "validation set", "test": "test set"}
            fix = "" if split == "train" else f" or no {LOADERS[split]} (then the run has no {sets[split]})"
            raise ValueError(f"--data {name}: the {sets[split]} is empty ({LOADERS[split]}() gives no batch): "
                             f"give it samples{fix}")
        check_batch(batch, dm.dim, dm.num_classes, float64, where)


def check_batch(batch: Any, dim: int, num_classes: int, float64: bool, where: str) -> None:
    """One batch against the contract (see the module); a one-line ``ValueError`` starting with ``where``."""
    if not (isinstance(batch, list | tuple) and len(batch) == 2 and all(isinstance(t, torch.Tensor) for t in batch)):
        kind = type(batch).__name__ + (f" of {len(batch)}" if isinstance(batch, list | tuple) else "")
        raise ValueError(f"{where} must be pairs (x, y) of tensors; got a {kind}")
    x, y = batch
    if x.dim() != 2 or x.shape[1] != dim:
        raise ValueError(f"{where} have inputs x of shape {tuple(x.shape)}; the data module says dim {dim}, so x "
                         f"must be (B, {dim}) (flatten other shapes in the data module; a network may reshape them)")
    if not x.is_floating_point() or (x.dtype == torch.float64 and not float64):
        raise ValueError(f"{where} have inputs of dtype {x.dtype}; the model computes in float32: give float32 "
                         f"inputs (x.float()), or train in float64 with --precision 64-true")
    if y.shape != (x.shape[0],):
        raise ValueError(f"{where} have labels y of shape {tuple(y.shape)} for {x.shape[0]} inputs; y must be "
                         f"({x.shape[0]},), one class index per sample")
    values = y.detach().double()
    if y.is_complex() or not torch.isfinite(values).all() or not torch.equal(values, values.round()):
        raise ValueError(f"{where} have labels that are not whole numbers ({y.flatten()[:4].tolist()} ...); y "
                         f"must be class indices")
    low, high = values.min().item(), values.max().item()
    if low < 0 or high > num_classes - 1:
        binary = " (binary labels: 0 and 1, not -1 and 1)" if num_classes == 2 else ""
        raise ValueError(f"{where} have labels from {low:g} to {high:g}; with num_classes {num_classes} they must "
                         f"be in 0 .. {num_classes - 1}{binary}")


def one_line_of(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
