"""What ``python train.py --help`` shows: the project's own options first, then where Lightning's full list is.

The rows come from the parser itself: the model's options with their docstring help and the code's defaults, the
short aliases with the defaults this project sets, the configs with their first comment line. ``--help-all`` is
jsonargparse's complete help (every Trainer and checkpoint option).
"""

import re
import textwrap
from argparse import Action, ArgumentParser
from pathlib import Path

from lit_momentum.arguments import ALIASES, CLASSES

CONFIGS = Path(__file__).resolve().parents[1] / "configs"  # a clone's configs (absent in an installed package)
OPTIMIZER = ("optimizer", "momentum_impl", "lr", "momentum", "dampening", "nesterov", "weight_decay", "beta2", "eps")
ALIAS_HELP = {  # shown as, what it does
    "--max_epochs": ("--max_epochs N", "epochs to train"),
    "--accelerator": ("--accelerator NAME", "cpu, gpu, mps or auto"),
    "--devices": ("--devices N", "how many devices (or which); several train data-parallel (DDP)"),
    "--precision": ("--precision P", "64-true, 32-true (Lightning's default), 16-mixed, bf16-mixed, 16-true or "
                    "bf16-true"),
}
WIDTH, COLUMN = 112, 38

HEAD = """usage: python train.py [fit] [OPTIONS]               train a run, or continue one (--ckpt_path)
       python train.py test --ckpt_path CKPT [OPTIONS]  test/loss and test/acc of a checkpoint (writes nothing)

Trains a network with plain SGD, momentum (torch.optim.SGD's or written by hand) or Adam, and logs every step to
TensorBoard (lightning_logs/). Ctrl-C stops after the epoch, with a checkpoint and the command that continues it.
A config file or a flag sets any option; later ones win. See README.md and docs/."""

TAIL = """Every option (Lightning's Trainer, the checkpoint callback, loggers): python train.py --help-all
A network's or data module's own options: python train.py --model.net.help ConvNet1D, --data.help MNIST1DDataModule
A grid of runs as one batched model: python -m lit_momentum.sweep --help"""


def row(option: str, text: str) -> str:
    """One option: its name in the first column, its description wrapped beside it."""
    body = textwrap.wrap(" ".join(text.split()), WIDTH - COLUMN) or [""]
    first = f"  {option:<{COLUMN - 3}} {body[0]}" if len(option) < COLUMN - 3 else f"  {option}\n{'':{COLUMN}}{body[0]}"
    return "\n".join([first, *(f"{'':{COLUMN}}{line}" for line in body[1:])])


def invocation(action: Action, name: str) -> str:
    """``--model.optimizer {sgd,adam,adamw}``, ``--model.lr LR``: as the full help writes them."""
    metavar = action.metavar or name.rpartition(".")[2].lstrip("-").upper()
    return f"{name} {metavar}"


def default(value: object) -> str:
    """`` (default X)`` as a user would type X; nothing where there is none."""
    if isinstance(value, dict) and "class_path" in value:  # a class by path: its name
        value = value["class_path"].rpartition(".")[2]
    if value is None:
        return ""
    return f" (default {str(value).lower() if isinstance(value, bool) else value})"


def clean(text: str | None) -> str:
    """A docstring's help as plain text (no reST quotes)."""
    return re.sub(r"``(.*?)``", r"\1", text or "").strip().rstrip(".")


def config_rows() -> list[str]:
    """configs/*.yaml for train.py (the sweep's have their own help), each with its first comment line's first
    sentence."""
    rows = []
    for path in sorted(CONFIGS.glob("*.yaml")):
        if path.name.startswith("sweep"):
            continue
        first = path.read_text().splitlines()[0].lstrip("# ")
        first = re.split(r"\. | \(python |: |$", first, maxsplit=1)[0].rstrip(".")
        rows.append(row(f"configs/{path.name}", first))
    return rows


def usage(parser: ArgumentParser) -> str:
    """The short help: how to run, configs, optimizer, network, data, training, continuing; where the rest is."""
    actions = parser._option_string_actions  # argparse keeps each option's action here

    def option(name: str, text: str | None = None, shown: str | None = None) -> str:
        action = actions[name]
        return row(shown or invocation(action, name), clean(text or action.help) + default(action.default))

    out = [HEAD, "", "configs (--config FILE, several stack: later ones win; --print_config shows the result):",
           *config_rows(), "", "optimizer:"]
    out += [option(f"--model.{name}") for name in OPTIMIZER]
    out += ["", "network (built as net(dim, num_classes), the data's width and classes):",
            option("--model.net", f"{CLASSES['model.net'][1]} (MLP: the article's, --model.net.hidden [500], "
                   "--model.net.activation sigmoid; hidden [] is a linear model)", "--model.net CLASS"),
            row("--model.net.OPTION V", "the network's own options (--model.net.help CLASS lists them)"),
            "", "data:",
            row("--data CLASS", f"{CLASSES['data'][1]} (default RandomDataModule: the article's random labels)"),
            row("--data.OPTION V", "the data module's own options, e.g. --data.batch_size 64 (--data.help CLASS lists "
                "them)"),
            "", "schedule (the lr over the run, and a one-cycle's momentum; train/lr and train/momentum curves):",
            row("--lr_scheduler CLASS", f"{CLASSES['model.lr_scheduler'][1]} (default none: a constant lr)"),
            row("--lr_scheduler.OPTION V", "the scheduler's own options (--lr_scheduler.help CLASS lists them)"),
            option("--model.lr_scheduler_interval", shown="--lr_scheduler_interval {epoch,step}"),
            "", "training (short aliases of --trainer.*):"]
    out += [option(ALIASES[alias], text, shown) for alias, (shown, text) in ALIAS_HELP.items()]
    out += [option("--seed_everything", "the seed of the network: its initial weights and random layers (the "
                   "batch order is the data's: --data.seed)",
                   "--seed_everything S"),
            option("--ckpt_path", "continue this checkpoint's run bit for bit (fit), or test it (test)",
                   "--ckpt_path PATH"),
            row("--checkpoint.OPTION V", "when checkpoints are written (default: last.ckpt every 100 epochs and at "
                "the end)"),
            "", TAIL]
    return "\n".join(out)
