"""``python -m lit_momentum.batch_size``: see ``lit_momentum/batch_size/__init__.py``."""

from lit_momentum.batch_size.main import main

if __name__ == "__main__":
    main()
