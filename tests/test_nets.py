"""``--model.net``: the shipped networks, a user's own, checkpoints that rebuild them, the grid of any network (each
point its own train.py run), what the grid refuses, and bad input.

MNIST-1D runs are shrunk to 500 signals (360 training, 40 validation: six steps an epoch).

Bugs these exist to catch: a grid point of a network other than the MLP that is not its own train.py run (initial
weights, batches, buffers, evaluation mode); buffers shared between points; a checkpoint that does not rebuild its
network; a network class that only works inside the package; the default network changed (its weights, so the
article's numbers); a network the grid cannot train trained silently wrong; bad input that trains, writes or prints
a traceback. (Random layers, nn.GRU and branches on a point's values: tests/test_faithful.py.)
"""

import re
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from lit_momentum.command import main as train_main
from lit_momentum.data import MNIST1DDataModule
from lit_momentum.model import MomentumModule
from lit_momentum.nets import ConvNet1D
from lit_momentum.sweep import main as sweep_main
from tests.conftest import (
    CONFIGS,
    ROOT,
    TINY_DATA,
    by_run,
    docs_code,
    grid_run,
    load_ckpt,
    refusal,
    run_dirs,
    run_sweep,
    run_train,
    scalars,
    spelled,
)

SMALL_MNIST1D = ["--config", str(CONFIGS / "mnist1d.yaml"), "--data.num_samples", "500"]


def test_the_default_network_is_the_articles_mlp_with_the_same_weights() -> None:
    """MomentumModule's default network, under seed s, is nn.Sequential(Linear(1000, 500), Sigmoid, Linear(500, 1))
    built under seed s: the same layers, names and initial weights as before networks were an option."""
    torch.manual_seed(3)
    ours = MomentumModule().net
    torch.manual_seed(3)
    article = nn.Sequential(nn.Linear(1000, 500), nn.Sigmoid(), nn.Linear(500, 1))
    assert [type(m) for m in ours] == [type(m) for m in article]
    assert ours.state_dict().keys() == article.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), article.state_dict().values()))


def test_the_cnn_trains_validates_and_its_checkpoint_is_tested_without_naming_it(tiny: list[str], tmp_path: Path,
                                                                                 capsys: pytest.CaptureFixture
                                                                                 ) -> None:
    train_main([*tiny, "--config", str(CONFIGS / "cnn.yaml"), "--data.num_samples", "500", "--model.net.channels",
                "8", "--max_epochs", "4"])
    (run,) = run_dirs(tmp_path)
    assert run.parent.name.startswith("MNIST1D-num_samples500-dim64_ConvNet1D_")
    ckpt = load_ckpt(run / "checkpoints" / "last.ckpt")
    assert ckpt["hyper_parameters"]["net"] == {"class_path": "lit_momentum.nets.ConvNet1D",
                                               "init_args": {"channels": 8}}
    assert ckpt["state_dict"]["net.conv1.weight"].shape == (8, 1, 5)
    logged = scalars(run)
    assert len(logged["val/acc"]) == 4 and logged["train/loss"][-1][1] < logged["train/loss"][0][1]
    capsys.readouterr()
    train_main(["test", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--trainer.enable_progress_bar",
                "false"])  # neither the config nor the network named: the checkpoint's
    acc = re.search(r"test/acc\s+([\d.]+)", capsys.readouterr().out)
    net = ConvNet1D(64, 10, channels=8)  # the trained network, rebuilt here by hand: the test's number is its own
    net.load_state_dict({k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")})
    x, y = MNIST1DDataModule(num_samples=500, dim=64).splits["test"]
    with torch.no_grad():
        assert acc and float(acc.group(1)) == pytest.approx((net(x).argmax(1) == y).float().mean().item(), rel=5e-4)
    message = refusal(train_main, [*tiny, "--config", str(CONFIGS / "cnn.yaml"), "--data.num_samples", "500",
                                   "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])
    assert "model.net" in message and "channels" in message and "drop the option" in message


def test_run_names_say_the_network_and_a_users_mlp_is_not_the_articles(tiny: list[str], tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's own class called MLP is named in its run (in a process of its own: an imported second MLP makes
    jsonargparse's short name ambiguous for every later parse in the process)."""
    from lit_momentum.nets import MLP, net_label

    assert [net_label(MLP), net_label(ConvNet1D)] == ["", "ConvNet1D"]
    assert [net_label({"class_path": "lit_momentum.nets.MLP", "init_args": {"hidden": h}}) for h in ([], [100, 100])
            ] == ["linear", "MLP100-100"]
    assert [net_label({"class_path": "lit_momentum.nets.MLP", "init_args": options}) for options in (
        {"hidden": [100, 100], "activation": "relu"}, {"activation": "gelu"}, {"hidden": [], "activation": "tanh"})
            ] == ["MLP100-100relu", "MLPgelu", "linear"]  # the activation where it is not the article's
    (tmp_path / "my_nets.py").write_text(
        "from torch import nn\n\n\nclass MLP(nn.Sequential):\n    def __init__(self, dim, num_classes):\n"
        "        super().__init__(nn.Linear(dim, 1 if num_classes == 2 else num_classes))\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the user's module, importable as they would make it
    run_train(*tiny, "--model.net", "my_nets.MLP", "--max_epochs", "1", cwd=tmp_path)
    assert [p.parent.name for p in run_dirs(tmp_path)] == [f"{TINY_DATA}_MLP_builtin_m0.9_lr1e-05"]


def test_a_linear_model_has_no_hidden_layer(tiny: list[str], tmp_path: Path) -> None:
    train_main([*tiny, *SMALL_MNIST1D, "--model.net.hidden", "[]", "--max_epochs", "2"])
    (run,) = run_dirs(tmp_path)
    assert run.parent.name == "MNIST1D-num_samples500-dim64_linear_builtin_m0.9_lr0.01"  # data and network named
    state = load_ckpt(run / "checkpoints" / "last.ckpt")["state_dict"]
    assert [k for k in state if k.startswith("net.")] == ["net.0.weight", "net.0.bias"]
    assert state["net.0.weight"].shape == (10, 64)  # debug.yaml: signals of 64


def parity(tiny: list[str], tmp_path: Path, grid: list[str], compared: list[str], base: list[str],
           epochs: int = 6, tol: float = 1e-5) -> None:
    """Every ``compared`` point of the sweep equals its own ``train.py --model.momentum_impl manual`` run: train
    loss, val loss and val accuracy at every epoch, within ``tol``; and it trained."""
    rows = by_run(run_sweep([*tiny, *base], tmp_path / "grid", *grid, "--max_epochs", str(epochs)))
    for name in compared:
        r = rows[spelled(name)]
        root = tmp_path / "single" / name
        train_main([*tiny, *base, "--trainer.default_root_dir", str(root), "--max_epochs", str(epochs),
                    "--model.momentum_impl", "manual", "--seed_everything", r["seed"], "--model.lr", r["lr"],
                    "--model.momentum", r["momentum"]])
        single, point = scalars(run_dirs(root)[0]), scalars(grid_run(tmp_path / "grid", name))
        for tag in ("train/loss", "val/loss", "val/acc"):
            assert [s for s, _ in single[tag]] == [s for s, _ in point[tag]] and len(point[tag]) == epochs
            assert max(abs(a - b) for (_, a), (_, b) in zip(single[tag], point[tag])) <= tol, (name, tag)
        assert point["train/loss"][0][1] - point["train/loss"][-1][1] > 1e-2, f"{name} did not train"


def test_each_cnn_grid_point_equals_its_own_train_py_run(tiny: list[str], tmp_path: Path) -> None:
    parity(tiny, tmp_path, ["--lr", "0.1", "0.3", "--momentum", "0", "0.9", "--seeds", "0", "1"],
           ["lr0.1_m0.9_seed1", "lr0.3_m0_seed0"],
           [*SMALL_MNIST1D, "--model.net", "ConvNet1D", "--model.net.channels", "6"])


def test_batchnorm_points_keep_their_own_running_statistics_and_equal_their_runs(tiny: list[str],
                                                                                  tmp_path: Path) -> None:
    """BatchNorm updates its running mean and variance in place in every training forward; in the grid they are
    stacked per point, and validation (evaluation mode: the running statistics) matches each point's single run."""
    parity(tiny, tmp_path, ["--lr", "0.05", "0.2", "--momentum", "0.9", "--seeds", "0", "1"],
           ["lr0.2_m0.9_seed0", "lr0.05_m0.9_seed1"], [*SMALL_MNIST1D, "--model.net", "tests.probe_nets.BatchNormMLP"])
    state = load_ckpt(tmp_path / "grid" / "last.ckpt")["state_dict"]
    means = [t for k, t in state.items() if k.startswith("net.buffer") and t.is_floating_point()][0]  # (N, width)
    assert means.shape[0] == 4 and len({tuple(m.tolist()) for m in means}) == 4  # four points, four statistics


@pytest.mark.slow
def test_the_docs_own_network_trains_and_sweeps_outside_the_package(tiny: list[str], tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/networks.md's module and commands as written, shrunk: train.py in a fresh process (the module found
    on the user's PYTHONPATH), then a sweep whose points equal their single runs."""
    module, commands = docs_code("networks.md")
    (tmp_path / "my_nets.py").write_text(module)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.syspath_prepend(str(tmp_path))
    train, sweep = commands
    args = train.split()[2:]  # python train.py ...
    run_train(*tiny, *[a.replace("configs/", f"{CONFIGS}/") for a in args], "--data.num_samples", "500",
              "--max_epochs", "2", cwd=tmp_path)
    (run,) = run_dirs(tmp_path)
    ckpt = load_ckpt(run / "checkpoints" / "last.ckpt")
    assert ckpt["hyper_parameters"]["net"] == {"class_path": "my_nets.ResidualMLP", "init_args": {"width": 64}}
    assert ckpt["state_dict"]["net.mid.weight"].shape == (64, 64)
    grid = sweep.split()[3:]  # python -m lit_momentum.sweep ...
    assert grid[:4] == ["--config", "configs/mnist1d.yaml", "--model.net", "my_nets.ResidualMLP"]
    parity(tiny, tmp_path, grid[4:], ["lr0.1_m0.9_seed0", "lr0.01_m0_seed0"],
           [*SMALL_MNIST1D, "--model.net", "my_nets.ResidualMLP", "--model.net.width", "16"], epochs=4)


REFUSED = [
    (["--model.net", "tests.probe_nets.HeldWeight"], "train.py", ["the grid cannot train it", "'lin.weight' gets no "
                                                                  "gradient in the grid"]),
]


@pytest.mark.parametrize("args, single, words", REFUSED, ids=["held-weight"])
def test_what_the_grid_cannot_train_at_all_is_refused_in_one_line_before_training(tiny: list[str], tmp_path: Path,
                                                                                  args: list[str], single: str,
                                                                                  words: list[str]) -> None:
    """A network that fails on vmap and point by point alike (it computes with a weight functional_call cannot
    replace: every point would train point 0's initial weight, silently) trains in train.py (where it is one run)
    and is refused by the sweep, naming the parameter and why."""
    message = refusal(sweep_main, [*tiny, "--out", str(tmp_path / "out"), "--lr", "0.1", "0.2", *args])
    assert all(w in message for w in words), message
    assert not (tmp_path / "out").exists()
    train_main([*tiny, *args, "--max_epochs", "1"])
    assert len(scalars(run_dirs(tmp_path)[0])["train/loss"]) == 1


BAD_NETS = [
    (["--model.net", "nosuch_pkg.Net"], "--model.net nosuch_pkg.Net: cannot import it"),
    (["--model.net", "lit_momentum.nets.Nope"], "no such network"),
    (["--model.net", "tests.probe_nets.NotANetwork"], "not a torch.nn.Module"),
    (["--model.net", "lit_momentum.data.RandomDataModule"], "not a torch.nn.Module"),
    (["--model.net", "ConvNet1D", "--model.net.width", "3"], "--model.net.width: lit_momentum.nets.ConvNet1D has no "
                                                             "such option"),
    (["--model.net", "ConvNet1D", "--model.net.channels", "x"], "--model.net.channels x: must be int"),
    (["--model.net", "tests.probe_nets.TwoLogits"], "gives logits (2, 2) for a batch (2, 64); the data has 2 classes"),
    (["--model.hidden", "[8]"], "--model.hidden is now --model.net.hidden"),
    (["--model.net", "ConvNet1D", "--model.net.channels", "30000", "--lr", "0.1", "0.2"], "points fit"),
]


@pytest.mark.parametrize("args, words", BAD_NETS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
@pytest.mark.parametrize("entry", ["train.py", "sweep"])
def test_a_bad_network_is_one_line_and_writes_nothing(tiny: list[str], tmp_path: Path, args: list[str], words: str,
                                                      entry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if "--lr" in args and entry == "train.py":
        pytest.skip("the grid's memory check")
    monkeypatch.chdir(tmp_path)
    args = [a for a in args if entry == "sweep" or a not in ("--lr", "0.1", "0.2")]
    main, out = (sweep_main, ["--out", str(tmp_path / "out")]) if entry == "sweep" else (train_main, [])
    message = refusal(main, [*tiny, *out, *args])
    assert words in message, message
    assert not list(tmp_path.iterdir())


def test_the_readme_and_docs_name_no_model_option_that_moved() -> None:
    """The MLP's options moved under --model.net: no page or config may still give --model.hidden / activation."""
    pages = [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("configs/*.yaml")]
    stale = [p.name for p in pages if re.search(r"--model\.(hidden|activation)|^  (hidden|activation):",
                                                p.read_text(), re.M)]
    assert not stale, stale


def test_a_users_module_builds_in_process_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``MomentumModule(net=...)`` with a class or a class with options bound records the network as data."""
    import functools

    model = MomentumModule(dim=40, num_classes=10, net=functools.partial(ConvNet1D, channels=3))
    assert model.hparams.net == {"class_path": "lit_momentum.nets.conv.ConvNet1D", "init_args": {"channels": 3}}
    assert model(torch.zeros(5, 40)).shape == (5, 10)
    module, _ = docs_code("networks.md")
    namespace: dict = {}
    exec(textwrap.dedent(module), namespace)  # noqa: S102 (the docs' own example)
    assert MomentumModule(dim=8, num_classes=2, net=namespace["ResidualMLP"])(torch.zeros(3, 8)).shape == (3, 1)


def test_networks_as_an_outer_axis_on_the_command_line_and_in_a_config(tiny: list[str], tmp_path: Path) -> None:
    """``--model.net MLP ConvNet1D``: one grid per network, each row the network's own run (equal to the sweep of
    that network alone); a list of lists under ``model.net.init_args`` in a config is an outer axis too."""
    from lit_momentum.sweep.plan import split_config

    rows = run_sweep([*tiny, *SMALL_MNIST1D], tmp_path / "both", "--model.net", "MLP", "ConvNet1D", "--lr", "0.1",
                     "--max_epochs", "2")
    alone = run_sweep([*tiny, *SMALL_MNIST1D], tmp_path / "cnn", "--model.net", "ConvNet1D", "--lr", "0.1",
                      "--max_epochs", "2")
    assert [r["run"] for r in rows] == ["0_netMLP_lr0.1_m0.9_seed0", "1_netConvNet1D_lr0.1_m0.9_seed0"]  # as typed
    assert rows[1]["final_loss"] == alone[0]["final_loss"] and rows[0]["final_loss"] != rows[1]["final_loss"]
    text = ("model:\n  net:\n    class_path: MLP\n    init_args:\n      hidden: [[64], [100, 100]]\n"
            "      activation: relu\n")
    axes, rest = split_config(text, "config")
    assert axes == {"model.net.hidden": [[64], [100, 100]]} and "hidden" not in rest and "relu" in rest


def test_a_grid_of_any_network_continues_bit_for_bit(tiny: list[str], tmp_path: Path) -> None:
    """A vmap grid with buffers (BatchNorm's running statistics) trained for 2 epochs, then continued to 4 from its
    checkpoint, ends where a straight 4-epoch grid ends: weights, buffers, velocities and curves to the bit."""
    from tests.conftest import assert_same_state

    grid = [*SMALL_MNIST1D, "--model.net", "tests.probe_nets.BatchNormMLP", "--lr", "0.05", "0.2", "--momentum",
            "0.9", "--checkpoint.every_n_epochs", "1"]
    run_sweep([*tiny, *grid], tmp_path / "straight", "--max_epochs", "4")
    run_sweep([*tiny, *grid], tmp_path / "stopped", "--max_epochs", "2")
    rows = run_sweep([*tiny, *grid], tmp_path / "stopped", "--max_epochs", "4", "--ckpt_path",
                     str(tmp_path / "stopped" / "last.ckpt"))
    a, b = load_ckpt(tmp_path / "straight" / "last.ckpt"), load_ckpt(tmp_path / "stopped" / "last.ckpt")
    assert_same_state(a, b)
    assert any(k.startswith("net.buffer") for k in a["state_dict"]) and b["epoch"] == 3
    assert (tmp_path / "stopped" / "summary.csv").read_text() == (tmp_path / "straight" / "summary.csv").read_text()
    assert len(rows) == 2
