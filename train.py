"""Train the article's MLP (or any network) with or without momentum: ``python train.py --help`` lists the options.

    python train.py                                   # built-in momentum 0.9, 2000 epochs (the article's run)
    python train.py --config configs/manual.yaml      # momentum written by hand
    python train.py --config configs/sgd.yaml --config configs/debug.yaml --accelerator gpu
"""

from lit_momentum.command import main

if __name__ == "__main__":
    main()
