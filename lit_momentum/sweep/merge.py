"""A sweep's results: a row per grid point from each unit's model, and the combined outputs built from every unit's
rows: ``summary.csv``, the figures per combination of outer values and over an outer axis, TensorBoard's HParams
experiment, and the table printed at the end."""

import csv
import json
import os
import sys
from pathlib import Path
from typing import Any

from lit_momentum.curves import curve_stats
from lit_momentum.sweep.axes import ADAM, shown
from lit_momentum.sweep.figures import METRICS, plot_effective_lr, plot_outer, plot_phase
from lit_momentum.sweep.grid import GridModule
from lit_momentum.sweep.logger import HPARAMS_METRICS, VAL_METRICS, columns, write_experiment
from lit_momentum.sweep.plan import locked, unit_dir, value_name

COLUMNS = ["run", *shown(adam=False), "final_loss", "best_loss", "epoch_below_threshold", "ping_pong",
           "tv_over_net", "diverged_epoch", "val_loss", "best_val_acc", "epoch_best_val_acc", "optimizer",
           *(a for a in shown(adam=True) if a not in shown(adam=False))]  # then one per outer axis
RESULT = "result.json"  # a finished unit's rows, in its directory
Row = dict[str, Any]


def summarize(model: GridModule, threshold: float, outer: dict[str, Any]) -> list[Row]:
    """One row per grid point: its settings and the statistics of its epoch-loss curve (as ``compare`` defines them).
    A diverged point's statistics cover the epochs before it diverged; its final loss is the one that tripped it."""
    rows = []
    for k, p in enumerate(model.points):
        losses = [h[k] for h in model.history]
        diverged = int(model.diverged_epoch[k])
        good = losses[:diverged] if diverged >= 0 else losses
        stats = curve_stats(good, threshold) if len(good) > 1 else dict(
            final_loss=good[0] if good else "", best_loss=good[0] if good else "",
            epoch_below_threshold="", ping_pong="", tv_over_net="")
        if diverged >= 0:
            stats["final_loss"] = losses[diverged]
        val = [(epoch, loss[k], acc[k]) for epoch, _, loss, acc in model.val_history
               if diverged < 0 or epoch < diverged]
        best = max(val, key=lambda v: v[2]) if val else None  # the first epoch of the best accuracy
        rows.append(dict(run=p.name, **{a: getattr(p, a) for a in shown(adam=True)}, **stats,
                         diverged_epoch=diverged if diverged >= 0 else "", val_loss=val[-1][1] if val else "",
                         best_val_acc=best[2] if best else "", epoch_best_val_acc=best[0] if best else "",
                         optimizer=p.optimizer, **outer))
    return rows


def curves(model: GridModule) -> dict[str, dict[str, list[float]]]:
    """Every point's curves against training steps, up to where it diverged: the epoch-mean training loss
    (``train_step``, ``train_loss``) and the validation accuracy (``val_step``, ``val_acc``); for studies that count
    the steps to a target (``python -m lit_momentum.batch_size``)."""
    out, diverged_at = {}, model.diverged_epoch.tolist()  # one host sync
    for k, p in enumerate(model.points):
        diverged = diverged_at[k]
        keep = len(model.history) if diverged < 0 else diverged
        val = [(step, acc[k]) for epoch, step, _, acc in model.val_history if diverged < 0 or epoch < diverged]
        out[p.name] = {"train_step": model.history_steps[:keep], "train_loss": [h[k] for h in model.history[:keep]],
                       "val_step": [v[0] for v in val], "val_acc": [v[1] for v in val]}
    return out


def save_result(home: Path, rows: list[Row]) -> None:
    """A unit's rows, written whole or not at all: their presence marks the unit finished."""
    tmp = home / f".{RESULT}.tmp"
    tmp.write_text(json.dumps(rows))
    os.replace(tmp, home / RESULT)


def load_result(home: Path) -> list[Row] | None:
    path = home / RESULT
    return json.loads(path.read_text()) if path.is_file() else None


def write_outputs(out: Path, rows: list[Row], outer: list[str], metric: str, experiment: bool) -> list[str]:
    """summary.csv, the figures and (for several units) the root's HParams experiment; the names of the figures."""
    tmp = out / ".summary.csv.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS + outer)
        writer.writeheader()
        writer.writerows({k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()} for r in rows)
    os.replace(tmp, out / "summary.csv")
    has_val = any(r["best_val_acc"] != "" for r in rows)
    figures = []
    for combo, rs in combinations(rows, outer).items():
        suffix = f"_{combo}" if combo else ""
        plot_phase(rs, out / f"phase{suffix}.png", metric)
        plot_effective_lr(rs, out / f"effective_lr{suffix}.png", metric)
        figures += [f"phase{suffix}.png", f"effective_lr{suffix}.png"]
    if len(outer) == 1 and all(isinstance(r[outer[0]], int | float) for r in rows):
        plot_outer(rows, outer[0], out / "outer.png", metric)
        figures.append("outer.png")
    if experiment:
        names = [*shown(adam=any(r["optimizer"] in ADAM for r in rows)), *outer]
        write_experiment(out / rows[0]["run"], columns(names, rows), HPARAMS_METRICS + (VAL_METRICS if has_val else ()),
                         len({r["seed"] for r in rows}) > 1, rows)
    return figures


def combinations(rows: list[Row], outer: list[str]) -> dict[str, list[Row]]:
    """Rows grouped by their outer values, keyed by those values (``batch_size32``, the figures' suffix; "" without)."""
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault("_".join(f"{k.rsplit('.', 1)[-1]}{value_name(r[k])}" for k in outer), []).append(r)
    return groups


def chosen_metric(rows: list[Row], metric: str | None) -> str:
    """The column the figures and the table show: ``--metric``, else the best validation accuracy where there is
    validation, else the final training loss."""
    return metric or ("best_val_acc" if any(r["best_val_acc"] != "" for r in rows) else "final_loss")


def print_table(rows: list[Row], metric: str) -> None:
    """Per setting (seeds together): mean, min and max of the metric over the points that did not diverge."""
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(r["run"].rsplit("_seed", 1)[0], []).append(r)
    width = max(36, max(len(s) for s in groups) + 2)
    print(f"\n{METRICS[metric][0]} ({metric}) over the seeds of each setting:")
    print(f"{'setting':<{width}}{'seeds':>6}{'mean':>12}{'min':>10}{'max':>10}{'diverged':>10}")
    for setting, rs in groups.items():
        ok = [r[metric] for r in rs if r["diverged_epoch"] == "" and r[metric] != ""]
        cells = f"{sum(ok) / len(ok):>12.4g}{min(ok):>10.4g}{max(ok):>10.4g}" if ok else f"{'-':>12}{'-':>10}{'-':>10}"
        print(f"{setting:<{width}}{len(rs):>6}{cells}{len(rs) - len(ok):>10}")


def spelled(budget: list[int]) -> str:
    """A budget ``[max_epochs, max_steps]`` in words: ``10 epochs``, ``10 epochs or 300 steps`` (-1 or None: none)."""
    limits = [f"{n} {unit}" for n, unit in zip(budget, ("epochs", "steps")) if n is not None and n >= 0]
    return " or ".join(limits) or "no limit"


def missing_units(out: Path, units: list[str], shares: int, budget: list[int] | None) -> list[str]:
    """The unfinished units, each with the share that tries it first: no result, or one trained to another budget
    than the sweep's (``[max_epochs, max_steps]``; None: any)."""
    missing = []
    for k, name in enumerate(units):
        done = load_result(unit_dir(out, name, units))
        if done is None or (budget is not None and done["budget"] != budget):
            why = "" if done is None else f", trained to {spelled(done['budget'])}, the sweep to {spelled(budget)}"
            missing.append(f"{name} (share {k % shares + 1}/{shares}{why})")
    return missing


def merge(out: Path, plan: dict[str, Any], metric: str | None, quiet_if_missing: bool = False) -> bool:
    """Build the combined outputs if every unit has finished, to the sweep's budget; say what is missing otherwise
    (never a summary that mixes budgets)."""
    names, outer = [u["name"] for u in plan["units"]], list(plan["outer"])
    missing = missing_units(out, names, plan["shares"], plan.get("budget"))
    if missing:
        if not quiet_if_missing:
            sys.exit(f"error: --merge: {len(missing)} of {len(names)} units have not finished: {', '.join(missing)}; "
                     f"run the sweep's command for them (with --share I/K, or its array task), then --merge again")
        print(f"\nthis process's units are done; {len(names) - len(missing)} of {len(names)} finished. The last "
              f"process to finish, or --merge, builds summary.csv and the figures in {out}")
        return False
    with locked(out / ".merge.lock", wait=True):  # two processes finishing at once merge in turn
        rows = [r for name in names for r in load_result(unit_dir(out, name, names))["rows"]]
        metric = chosen_metric(rows, metric)
        figures = write_outputs(out, rows, outer, metric, experiment=len(names) > 1)
    print_table(rows, metric)
    n_div = sum(r["diverged_epoch"] != "" for r in rows)
    print(f"\n{len(rows)} grid points, {n_div} diverged. summary.csv, {', '.join(figures)} and the checkpoints in "
          f"{out}\nview with: tensorboard --logdir {out}")
    return True
