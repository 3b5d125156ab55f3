"""When is momentum more than a bigger step? Steps to a target against the batch size (Shallue et al. 2019), measured
and from the noisy quadratic model (Zhang et al. 2019).

    python -m lit_momentum.batch_size --out runs/batch_size            # the whole study (about 8 minutes, 2 cores)
    python -m lit_momentum.batch_size --out runs/bs_quick --quick      # a small preset: about 25 s
    python -m lit_momentum.batch_size --out runs/batch_size            # again, after a stop: it continues

For each batch size of a ladder (powers of 2 up to the full batch), plain SGD and momentum 0.9 and 0.99 are trained
over a log-spaced range of learning rates and 3 seeds, all as one batched grid per batch size
(``python -m lit_momentum.sweep`` with the batch size as an outer axis); the figure of merit is the number of steps
to reach a target (a validation accuracy on MNIST-1D, evaluated every few steps; the epoch-mean training loss on
the article's random labels), at the best lr for that batch size. The NQM's expected loss follows from an exact
recursion, so its curves need no sampling.

Writes to ``--out``: ``batch_size.csv`` (source, optimizer, momentum, batch_size, best_lr, steps, steps_min,
steps_max, ...), ``steps_vs_batch.png``, ``best_lr_vs_batch.png``, and each measured source's sweep (``mnist1d/``,
``random/``: summary.csv, TensorBoard runs, checkpoints).
"""
