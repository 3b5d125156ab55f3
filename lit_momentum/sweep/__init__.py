"""The grid engine: grids of runs as one batched model in one Trainer. Is momentum just a bigger step?

    python -m lit_momentum.sweep --lr 1e-5 1e-4 1e-3 1e-2 1e-1 --momentum 0 0.5 0.9 0.99 --seeds 0 1 2 --out runs/grid
    python -m lit_momentum.sweep ... --out runs/grid --ckpt_path runs/grid/last.ckpt      # continue a stopped sweep
    python -m lit_momentum.sweep --config configs/debug.yaml --lr 1e-3 1e-2 --max_epochs 30   # any train.py option

Grid axes, each one value or a list (the grid is their product): ``--lr``, ``--momentum``, ``--dampening`` (0),
``--nesterov`` (false), ``--weight_decay`` (0), ``--seeds`` (initial-weight seeds; ``--seed_everything`` when not
given). ``--bound`` (100): an epoch loss above it, or inf/nan, marks a point diverged. ``--threshold`` (0.69): the
loss for the ``epoch_below_threshold`` column. ``--metric``: what the figures show (``final_loss``, ``best_loss``,
``val_loss`` or ``best_val_acc``; default: ``best_val_acc`` where there is validation data). ``--out DIR``: where
everything goes (default: a new ``lightning_logs/sweep/version_<n>``). Every other option is ``train.py``'s and means
the same: ``--data MNIST1DDataModule``, ``--model.net ConvNet1D``, ``--config configs/mnist1d.yaml``, ...

Writes to ``--out``: ``summary.csv`` (a row per grid point), ``phase.png`` and ``effective_lr.png``, one TensorBoard
run per point (``tensorboard --logdir OUT``: Scalars, HParams, and the seed bands under Custom Scalars),
``config.yaml`` and ``last.ckpt`` (the whole grid: weights, velocities, which points diverged, the curves so far).

Modules: ``points`` (the product of the axes), ``grid`` (GridModule: N runs as one module), ``batched`` (N copies
of any network under torch.func), ``logger`` (a TensorBoard run per point), ``memory`` (what a grid needs), ``plan``
(outer axes, units, shares), ``cli``, ``merge``, ``figures``, ``main`` (the command).
"""

from lit_momentum.sweep.main import main

__all__ = ["main"]
