"""``python -m lit_momentum.sweep``: see ``lit_momentum/sweep/__init__.py``."""

from lit_momentum.sweep.main import main

if __name__ == "__main__":
    main()
