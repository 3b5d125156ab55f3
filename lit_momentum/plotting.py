"""Where figures go: into files from the commands (matplotlib's Agg backend: no window, no display needed), into
the cell in a notebook (its own backend, inline or a widget, is left alone: importing the package in Jupyter must not
turn its plots off). Every module that draws imports ``plt`` from here."""

import sys

import matplotlib

if "ipykernel" not in sys.modules:  # a Jupyter kernel has chosen its backend already
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt"]
