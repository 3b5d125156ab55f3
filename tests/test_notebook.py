"""The article as a notebook (notebooks/momentum_made_easy.ipynb): it runs top to bottom in a fresh kernel, as a
learner runs it, and what its text says holds in what it computes.

Bugs these exist to catch: a cell broken by a change of the package's API (an import, a renamed option, a sweep
that refuses its command); a notebook whose text no longer matches its numbers (the ball that no longer stops at the
bump, the hand-written momentum no longer PyTorch's to the bit, a grid point that is not its run); outputs committed
to git; a harness that would let a failing cell pass.
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.conftest import ROOT

NOTEBOOK = ROOT / "notebooks" / "momentum_made_easy.ipynb"
SKIPPED = "tensorboard"  # the tag of the cell that starts a TensorBoard server: a learner's choice, not run here

# what the text says, in the notebook's own variables: run after its last cell, in its kernel
CHECKS = """
assert round(g[valley.BUMP - 1].item(), 3) == 0.098 and (g[: valley.BUMP - 1] < 0).all()  # "rises (+0.098)"
assert paths["plain"][-1] == valley.BUMP - 1 and paths["momentum 0.6"][-1] == 50  # stuck at the bump / rolls on
assert crossing == 0.5
assert 0.99 < sum(weights) < 1  # "add up to (almost) 1"
assert same and all(a == b for a, b in zip(by_hand[1], built_in[1]))  # to the last bit
final = {name: curve[-1] for name, (_, curve) in runs.items()}
assert len(runs["plain SGD"][1]) == EPOCHS
assert final["plain SGD"] > final["momentum 0.9, built in"] + 0.1  # "falls faster with momentum"
assert abs(final["plain SGD, lr / (1 - m)"] - final["momentum 0.9, built in"]) < 0.01  # "It does, nearly"
point = {(round(float(r["lr"]), 12), float(r["momentum"])): float(r["final_loss"]) for r in rows}
assert len(point) == 14
assert abs(point[(LR, 0.9)] - final["momentum 0.9, built in"]) < 1e-5  # each grid point its own run (to rounding)
assert abs(point[(round(LR / (1 - 0.9), 12), 0.0)] - final["plain SGD, lr / (1 - m)"]) < 1e-5
for (lr, m), loss in point.items():  # "falls on one curve": the same effective step, the same loss within 5 %
    twin = point.get((round(lr / (1 - m), 12), 0.0)) if m else None
    assert twin is None or abs(loss - twin) < 0.05 * twin, (lr, loss, twin)
"""


def execute(nb: nbformat.NotebookNode, where: Path) -> None:
    """Run every cell but the skipped one in a fresh kernel of this Python, in ``where``; a failing cell raises."""
    nb.cells = [c for c in nb.cells if SKIPPED not in c.metadata.get("tags", [])]
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(where)}}).execute()


def test_the_notebook_is_kept_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert [c for c in code if SKIPPED in c.metadata.get("tags", [])]  # the one cell the run below skips


def test_a_failing_cell_fails_the_run(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell("raise RuntimeError('a planted failure')"))
    with pytest.raises(CellExecutionError, match="a planted failure"):
        execute(nb, tmp_path)
    assert not (tmp_path / "lightning_logs").exists()  # it stopped there: nothing after it ran


@pytest.mark.slow
def test_the_notebook_runs_and_its_text_holds(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(CHECKS))
    execute(nb, tmp_path)
    shown = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "display_data"]
    assert sum("image/png" in o.data for o in shown) == 4  # every figure drawn inline (not swallowed by Agg)
    animation = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "execute_result"]
    assert any("<script" in o.data.get("text/html", "") for o in animation)  # the rolling ball, as HTML
    runs = sorted(p.name for p in (tmp_path / "lightning_logs").iterdir())
    assert runs == ["notebook_bigger_step", "notebook_built_in", "notebook_by_hand", "notebook_grid",
                    "notebook_plain"]
