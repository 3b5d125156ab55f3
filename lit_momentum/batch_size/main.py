"""The command ``python -m lit_momentum.batch_size``: steps to a target against the batch size, measured with the grid
engine on MNIST-1D and the article's random labels, and computed for the noisy quadratic model.

    python -m lit_momentum.batch_size --out runs/bs                   # the whole study (about 8 minutes)
    python -m lit_momentum.batch_size --out runs/bs-quick --quick     # a first look (about 25 s)
    python -m lit_momentum.batch_size --out runs/bs --sources nqm     # one part only (the same --out continues)
"""

import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from lit_momentum import nqm
from lit_momentum.arguments import study_args
from lit_momentum.batch_size.figures import lines, plot_best_lr, plot_steps
from lit_momentum.batch_size.steps import best_lr, critical_batch_size, steps_to_target
from lit_momentum.sweep.main import main as sweep_main
from lit_momentum.terminal import quiet

COLUMNS = ["source", "optimizer", "momentum", "batch_size", "best_lr", "steps", "steps_min", "steps_max", "target",
           "best_effective_lr", "best_lr_at_edge", "seeds"]
MNIST1D = ["--data", "MNIST1DDataModule", "--model.net.hidden", "[100,100]", "--model.net.activation", "relu"]
LADDER = [2 ** k for k in range(4, 12)]  # 16 ... 2048
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "full": {  # 8 min 14 s on a 2-core CPU (docs/batch_size.md)
        "mnist1d": dict(data=MNIST1D, batch=[*LADDER, 3600], lr=[0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0],
                        adam_lr=[1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1], seeds=[0, 1, 2], max_steps=3000,
                        target=0.5, metric="val_acc"),
        "random": dict(data=["--data.dim", "64", "--data.num_samples", "512"], batch=[8, 16, 32, 64, 128, 256, 512],
                       lr=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0], seeds=[0, 1, 2], max_steps=4000, target=0.3,
                       metric="train_loss"),
        "nqm": dict(dim=1000, batch=[2 ** k for k in range(0, 17)], lr=list(np.geomspace(1e-5, 4.0, 61)),
                    target=0.01),
    },
    "quick": {  # a first look, and the tests
        "mnist1d": dict(data=[*MNIST1D, "--data.num_samples", "600", "--model.net.hidden", "[32]"], batch=[16, 64, 256],
                        lr=[0.03, 0.3, 3.0], adam_lr=[1e-3, 1e-2, 0.1], seeds=[0, 1, 2], max_steps=150, target=0.3,
                        metric="val_acc"),
        "random": dict(data=["--data.dim", "16", "--data.num_samples", "64"], batch=[8, 16, 32, 64],
                       lr=[0.1, 1.0, 10.0], seeds=[0, 1, 2], max_steps=300, target=0.5, metric="train_loss"),
        "nqm": dict(dim=1000, batch=[4 ** k for k in range(0, 9)], lr=list(np.geomspace(1e-5, 4.0, 31)),
                    target=0.01),  # every other batch size and lr of the full preset's: 4 s instead of 11
    },
}
VAL_EVERY = 0.1  # of an epoch (and at least every step): a count good to a tenth of an epoch, or to the step
MOMENTA = [0.0, 0.9, 0.99]
ADAM_BETA1 = 0.9  # Adam's measured curve (MNIST-1D) and its NQM model
ADAM_P = 0.5  # the NQM's Adam: momentum preconditioned by H^-1/2 (lit_momentum/nqm.py says why)


def measure(source: str, p: dict[str, Any], out: Path, extra: list[str], argv: list[str]) -> list[dict[str, Any]]:
    """One sweep per optimizer family (SGD with each momentum; Adam where the preset has an Adam lr range): the batch
    sizes an outer axis, lr x momentum x seeds each one batched grid; then steps to target."""
    families = [("sgd", p["lr"], MOMENTA, source)]
    if "adam_lr" in p:
        families.append(("adam", p["adam_lr"], [ADAM_BETA1], f"{source}_adam"))
    rows = []
    for optimizer, lrs, momenta, where in families:
        args = [*p["data"], "--model.optimizer", optimizer, "--lr", *map(str, lrs), "--momentum", *map(str, momenta),
                "--seeds", *map(str, p["seeds"]), "--data.batch_size", *map(str, p["batch"]), "--trainer.max_steps",
                str(p["max_steps"]), "--max_epochs", "-1", "--checkpoint.every_n_epochs", "50",
                "--trainer.enable_model_summary", "false", "--out", str(out / where),
                "--trainer.callbacks+=lit_momentum.batch_size.stop.StopWhenDecided",  # ends a grid once decided
                f"--trainer.callbacks.target={p['target']}", f"--trainer.callbacks.metric={p['metric']}", *extra]
        if p["metric"] == "val_acc":  # evaluate ten times an epoch (at least every step): counts good to 10 %
            args += ["--trainer.val_check_interval", str(VAL_EVERY)]
        try:
            sweep_main(args)
        except SystemExit as stop:
            if stop.code not in (0, None):
                if stop.code in (130, 143):
                    print(f"the study stopped; continue it with: python -m lit_momentum.batch_size {' '.join(argv)}",
                          file=sys.stderr)
                raise
        results = [json.loads(f.read_text()) for f in sorted((out / where).glob("units/*/result.json"))]
        by: dict[tuple[float, int], dict[float, list[int | None]]] = {}
        for result in results:
            for r in result["rows"]:
                reached = steps_to_target(result["curves"][r["run"]], p["metric"], p["target"])
                by.setdefault((r["momentum"], r["data.batch_size"]), {}).setdefault(r["lr"], []).append(reached)
        rows += [row(source, m, b, best_lr(lrs), p["target"], len(p["seeds"]), optimizer)
                 for (m, b), lrs in sorted(by.items())]
    return rows


def row(source: str, m: float, batch: int, best: Any, target: float, seeds: int, optimizer: str = "sgd"
        ) -> dict[str, Any]:
    blank = best.lr is None
    kind = "adam" if optimizer == "adam" else "sgd" if m == 0 else "momentum"
    return dict(source=source, optimizer=kind, momentum=m, batch_size=batch,
                best_lr="" if blank else best.lr, steps="" if blank else best.steps,
                steps_min="" if blank else best.low, steps_max="" if blank else best.high, target=target,
                best_effective_lr="" if blank or kind == "adam" else best.lr / (1 - m),
                best_lr_at_edge="" if blank else best.at_edge,
                seeds=seeds)


def theory(p: dict[str, Any]) -> list[dict[str, Any]]:
    """The NQM: steps to ``target`` x its initial loss at the best of ``p['lr']``, for every batch size."""
    h = nqm.spectrum(p["dim"])
    target = p["target"] * 0.5 * h.sum()
    lrs = np.array(p["lr"])
    rows = []
    for optimizer, m, precondition in [*(("sgd", m, 0.0) for m in MOMENTA), ("adam", ADAM_BETA1, ADAM_P)]:
        for b in p["batch"]:
            steps = nqm.steps_to_target(h, lrs, np.full_like(lrs, m), b, target, precondition=precondition)
            best = best_lr({float(lr): [None if not np.isfinite(s) else int(s)] for lr, s in zip(lrs, steps)})
            rows.append(row("nqm", m, b, best, p["target"], 1, optimizer))
    return rows


def computed(p: dict[str, Any], out: Path) -> list[dict[str, Any]]:
    """``theory``'s rows, kept in ``out/nqm.json`` with what they were computed from: a continued study (or one run
    again to redraw its figures) reads them back instead of computing them again (11 s on 2 cores, 4 s quick)."""
    path, made_of = out / "nqm.json", json.loads(json.dumps({**p, "momenta": MOMENTA, "adam": [ADAM_BETA1, ADAM_P]}))
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved["made_of"] == made_of:
            return saved["rows"]
    rows = theory(p)
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"made_of": made_of, "rows": rows}))
    return rows


def main(argv: list[str] | None = None) -> None:
    quiet()
    argv = sys.argv[1:] if argv is None else argv
    own, extra = study_args("python -m lit_momentum.batch_size", __doc__, "about 25 s", ["mnist1d", "random", "nqm"],
                            "what to study: mnist1d and random (measured: sweeps with the grid engine), nqm "
                            "(computed: the noisy quadratic model) (default: all three)", argv)
    preset = PRESETS["quick" if own.quick else "full"]
    rows = []
    for source in own.sources:
        rows += computed(preset[source], own.out) if source == "nqm" else measure(source, preset[source], own.out,
                                                                                  extra, argv)
    own.out.mkdir(parents=True, exist_ok=True)
    with open(own.out / "batch_size.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    critical = {}
    for source in own.sources:
        for name, rs in lines(rows, source).items():
            critical[source, name] = critical_batch_size([r["batch_size"] for r in rs],
                                                         [r["steps"] if r["steps"] != "" else None for r in rs])
    plot_steps(rows, critical, own.out / "steps_vs_batch.png")
    plot_best_lr(rows, own.out / "best_lr_vs_batch.png")
    for source in own.sources:
        batches = sorted({r["batch_size"] for r in rows if r["source"] == source})
        print(f"\nsteps to target, {source}, batch size:\n{'':<24}" + "".join(f"{b:>8}" for b in batches))
        for name, rs in lines(rows, source).items():
            by_batch = {r["batch_size"]: r for r in rs}
            cells = "".join(f"{by_batch[b]['steps']:>8.0f}" if b in by_batch and by_batch[b]["steps"] != ""
                            else f"{'-':>8}" for b in batches)
            crit = critical.get((source, name))
            print(f"{name:<24}{cells}   critical batch size {f'{crit:.0f}' if crit else '-'}")
    print(f"\nbatch_size.csv, steps_vs_batch.png and best_lr_vs_batch.png in {own.out}")
