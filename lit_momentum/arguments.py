"""The command line as text: short aliases, finding an option, the command that continues a run, and parse errors
turned into one line that names the option and what is allowed."""

import argparse
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from lit_momentum import data, nets
from lit_momentum.runs import check_place

ALIASES = {f"--{k}": f"--trainer.{k}" for k in ("accelerator", "devices", "precision", "max_epochs")}
PRECISIONS = ("32-true", "64-true", "bf16-mixed", "bf16-true", "16-mixed", "16-true")  # what --precision lists
SHORT_PREFIXES = ("--lr_scheduler", "--optimizer")  # --lr_scheduler(.*), --lr_scheduler_interval, --optimizer(.*)


def aliased(name: str) -> str:
    """An option's full name: ``--accelerator`` -> ``--trainer.accelerator``, ``--lr_scheduler.max_lr`` ->
    ``--model.lr_scheduler.max_lr``."""
    if name in ALIASES:
        return ALIASES[name]
    return "--model." + name[2:] if name.startswith(SHORT_PREFIXES) else name
CLASSES = {  # what a class path names: (the kind, what to give, a name for it)
    "data": ("LightningDataModule", f"{', '.join(c.__name__ for c in data.BUILT_IN)}, or an import path such as "
             "my_pkg.MyDataModule", "data module"),
    "model.net": ("torch.nn.Module", f"{', '.join(c.__name__ for c in nets.BUILT_IN)}, or an import path such as "
                  "my_pkg.MyNet", "network"),
    "model.optimizer": ("torch.optim.Optimizer", "sgd, adam, adamw, a class of torch.optim (RMSprop, NAdam, ...), or "
                        "an import path such as my_pkg.Lion", "optimizer"),
    "model.lr_scheduler": ("torch.optim.lr_scheduler.LRScheduler", "OneCycleLR, CosineAnnealingLR, MultiStepLR, "
                           "LinearLR, lit_momentum.schedules.Warmup, lit_momentum.schedules.SequentialLR, or an "
                           "import path", "scheduler"),
}


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line, ``error: ...``, without the usage block (``--help`` shows it);
    its help keeps the description's lines (the module docstring's examples) as written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.exit(f"error: {message}")


def study_args(prog: str, description: str | None, quick: str, sources: list[str], sources_help: str,
               argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The options of a study that runs sweeps (``batch_size``, ``families``): ``--out`` (checked before anything
    runs), ``--quick``, ``--sources``; every other option goes to each sweep. Bad input: one line."""
    parser = OneLineParser(prog=prog, description=description,
                           epilog="Other options go to every sweep (e.g. --accelerator gpu).")
    parser.add_argument("--out", type=Path, required=True, help="where everything goes (the same again continues)")
    parser.add_argument("--quick", action="store_true", help=f"a small preset: {quick} here, for a first look")
    parser.add_argument("--sources", nargs="+", default=sources, choices=sources, help=sources_help)
    own, extra = parser.parse_known_args(argv)
    try:
        check_place(own.out, "--out")
    except ValueError as err:
        sys.exit(f"error: {err}")
    return own, extra


def print_help(text: str) -> None:
    """Print a help page; piped into ``head``, the pipe may close first: no traceback then."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to write at exit either


def normalized(argv: list[str]) -> list[str]:
    """The command line as the parser reads it: ``--accelerator gpu`` / ``--accelerator=gpu`` rewritten to
    ``--trainer.accelerator`` (and the other ``aliased`` names), and every config file (``--config``, ``-c``, in any
    spelling the parser takes) moved to the front, in its own order. So a flag typed on the command line wins over
    every config wherever it stands (``--lr 0.1 -c x.yaml``: 0.1), and a later config over an earlier one; the one
    rule of ``train.py``, the sweep, ``compare`` and the studies."""
    configs, flags, i = [], [], 0
    while i < len(argv):
        name, eq, value = argv[i].partition("=")
        attached = argv[i][2:] if name.startswith("-c") and not name.startswith("--") and len(name) > 2 else None
        if attached is not None or is_config(name):  # -cFILE, -c=FILE, -c FILE, --config[=]FILE, --conf FILE
            if attached is not None or eq:
                configs.append(f"--config={value if eq else attached}")
            elif i + 1 < len(argv):
                configs += ["--config", argv[i + 1]]
                i += 1
            else:
                configs.append("--config")  # (the parser says what is missing)
            i += 1
            continue
        flags.append(aliased(name) + eq + value)
        i += 1
    return configs + flags


def is_config(name: str) -> bool:
    """Whether an option names the config file, in any spelling the parser takes: ``-c``, ``--config`` and its
    abbreviations (``--conf``; argparse takes any unambiguous prefix)."""
    return name == "-c" or (len(name) >= 5 and "--config".startswith(name))


def self_contained(argv: list[str], drop: tuple[str, ...]) -> list[str]:
    """The command line as a plan keeps it, to be run again from anywhere: ``normalized``, config files inlined (as
    YAML text, which ``--config`` takes as well as a path), the single-valued options in ``drop`` left out."""
    args, kept, i = normalized(argv), [], 0
    while i < len(args):
        name, eq, value = args[i].partition("=")
        step = 1 if eq or i + 1 == len(args) else 2  # (for --config and the dropped options: one value each)
        if name == "--config":
            given = value if eq else args[i + 1]
            kept.append(f"--config={Path(given).read_text() if Path(given).is_file() else given}")
        elif name in drop:
            pass
        else:
            kept.append(args[i])
            step = 1
        i += step
    return kept


def find_option(argv: list[str], name: str) -> str | None:
    """The value of the last ``name`` (``--ckpt_path``, say) on the command line, if any."""
    value = None
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(name + "="):
            value = arg.partition("=")[2]
    return value


def resume_command(command: str, argv: list[str], ckpt: str) -> str:
    """The user's command again, with ``--ckpt_path ckpt`` in place of any it had."""
    args, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--ckpt_path="):
            skip = False
        elif arg == "--ckpt_path":
            skip = True
        else:
            args.append(arg)
    return " ".join([command, shlex.join([*args, "--ckpt_path", ckpt])])


def one_line(err: BaseException) -> str:
    """An error of parsing or building as one line. jsonargparse explains a bad class path over a dozen lines (every
    type of a union it tried); the cause that matters is picked out here, and a ``ValueError`` raised while linking
    the data to the model (``compute_fn``) is reported as itself."""
    cause = err.__cause__
    if isinstance(cause, ValueError) and "compute_fn" in str(err):
        err = cause
    text = str(err)
    missing = re.match(r"""Parser key "config": File does not exist: '(.*)'""", text)
    if missing:
        return f"--config {missing.group(1)}: no such file"
    top = re.match(r'Parser key "([\w.]+)":\s*Expected a typing\.Literal\[(.*?)\]\.\s*Got value: (\S+)', text)
    if top:  # a choice among names alone (the sweep's --model.optimizer)
        return f"--{top.group(1)} {top.group(3)}: must be one of {top.group(2)}"
    key = re.match(r'Parser key "(data|model\.net|model\.lr_scheduler|model\.optimizer)"', text)
    if key:
        return class_path_error(key.group(1), text)
    failed = re.match(r"Does not validate against any of the Union subtypes.*?Errors:\s*- (.*?)\n\s*- .*"
                      r"Given value: Namespace\(class_path='([\w.]+)'", text, re.S)
    if failed:  # the data module's __init__ raised: its own message
        return f"--data {failed.group(2).rpartition('.')[2]}: it failed to start: {' '.join(failed.group(1).split())}"
    choice = re.search(r'Parser key "([\w.]+)":\s*Expected a typing\.Literal\[(.*?)\]\.\s*Got value: (\S+)', text)
    if choice:
        return f"--{choice.group(1)} {choice.group(3)}: must be one of {choice.group(2)}"
    flat = " ".join(text.split())
    union = re.match(r'Parser key "([\w.]+)": Does not validate against any of the Union subtypes .*?Errors: (.*?) '
                     r'Given value type: .*Given value: (.*)$', flat)
    if union and union.group(1) == "trainer.precision":  # the ones to pick from, not Lightning's 13 spellings
        return (f"--trainer.precision {union.group(3)}: must be one of {', '.join(PRECISIONS)} "
                f"(transformer-engine: NVIDIA GPUs with its package)")
    if union:  # a value none of an option's types takes (int or null; one of several literals): what they take
        allowed, literals = [], False
        for expected in re.findall(r"- Expected an? (.*?)(?= - |$)", union.group(2)):
            literal = re.match(r"typing\.Literal\[(.*)\]", expected)
            kind = re.match(r"<class '([\w.]+)'>", expected)
            literals |= bool(literal)
            items = literal.group(1).replace("'", "").split(", ") if literal else [
                kind.group(1).replace("NoneType", "null") if kind else expected]
            allowed += [v for v in items if v not in allowed]
        return f"--{union.group(1)} {union.group(3)}: must be " + (
            f"one of {', '.join(allowed)}" if literals else " or ".join(allowed))
    typed = re.match(r'Parser key "([\w.]+)": Expected an? <class \'(\w+)\'>\. Got value: (.*)$', flat)
    if typed:
        return f"--{typed.group(1)} {typed.group(3)}: must be {typed.group(2)}"
    moved = re.search(r"unrecognized arguments: --model\.(hidden|activation)\b", text)
    if moved:
        return f"--model.{moved.group(1)} is now --model.net.{moved.group(1)} (an option of the MLP network)"
    return " ".join(text.split())


def class_path_error(group: str, text: str) -> str:
    """jsonargparse's error for a class given by path (``--data CLASS``, ``--model.net CLASS``) as one line: the
    option and value at fault, and what is allowed."""
    given = (re.search(r"Given value: (.*)", text) or re.search(r"Expected a path but (\S+)", text)
             or re.search(r"Got value: (\S+)$", text))
    value = re.split(r"\.? Got value:", given.group(1))[0].strip() if given else ""  # (a nested class: its own)
    cls = re.search(r"class_path[ =]'([\w.]+)'", text)
    name = cls.group(1) if cls else value
    kind, valid, noun = CLASSES[group]
    keys = re.findall(r'Parser key "([\w.]+)"', text)[1:]  # a class inside the class (Warmup's then): its keys
    at, within = ".".join([group, *keys[:-1]]), ".".join([group, *keys])  # (a refused value's key is its option)
    inner = re.search(r'Parser key "(\w+)":\s*Expected (a typing\.Literal\[(.*?)\]|.*?)\.\s*'
                      r'Got value: (\S+?)\.?(?:\s|$)', text)
    if inner:
        expected = re.sub(r"^an? <class '(\w+)'>$", r"\1", inner.group(2))  # "a <class 'int'>" -> "int"
        allowed = f"must be one of {inner.group(3)}" if inner.group(3) else f"must be {expected}"
        return f"--{at}.{inner.group(1)} {inner.group(4)}: {allowed}"
    flat = " ".join(text.split())
    union = re.search(r'Parser key "(\w+)": Does not validate against any of the Union subtypes Subtypes: \[(.*?)\] '
                      r'.*?Given value: (\S+?)\.? Got value', flat)
    if union:  # an option of the class with a value none of its types takes
        allowed = re.sub(r"<class '(\w+)'>", r"\1", union.group(2)).replace(", ", " or ")
        return f"--{at}.{union.group(1)} {union.group(3)}: must be {allowed}"
    option = re.search(r"Option '(\w+)' is not accepted", text)
    if option:
        return f"--{within}.{option.group(1)}: {name} has no such option (python train.py --{within}.help {name} " \
               f"lists them)"
    required = re.search(r"the following arguments are required: ([\w, ]+)", text)
    if required:  # a network or data option without a default, not given
        first = required.group(1).split(",")[0].strip()
        return f"--{within} {name.rpartition('.')[2]}: its option {first} has no default: give it, " \
               f"--{within}.{first} VALUE (python train.py --{within}.help {name} lists them)"
    several = re.search(r"Multiple subclasses with name (\w+)\. Give the full class path to avoid ambiguity: "
                        r"([\w.]+), ([\w.]+)", text)
    if several:
        return (f"--{group} {several.group(1)}: two classes have this name; give {several.group(2)} or "
                f"{several.group(3)}")
    module = re.search(r"No module named '([\w.]+)'", text)
    if module:
        return f"--{group} {value}: cannot import it: no module named {module.group(1)!r}"
    if "does not correspond to a subclass" in text or "to be a subclass of" in text:
        return f"--{group} {name}: not a {kind}; give {valid}"
    if "dot import path" in text or "not accessible or invalid" in text or "has no attribute" in text:
        return f"--{group} {value}: no such {noun}; give {valid}"
    return " ".join(text.split())
