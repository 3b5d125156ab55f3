"""What the model needs to know of any data module, checked before training starts.

A data module fits the template when it has ``dim`` (input features per sample, an int >= 1), ``num_classes``
(an int >= 2: 2 means binary labels, trained with one logit and BCE, as in the article; k > 2 means k logits and
cross-entropy) and a ``train_dataloader``; ``val_dataloader`` and ``test_dataloader`` are optional. Its batches are
``(x, y)``: ``x`` (B, dim) float, ``y`` (B,) class indices (0/1 for binary labels, as floats or ints).
"""

import lightning as L


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
