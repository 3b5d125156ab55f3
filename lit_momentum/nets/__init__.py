"""Networks: any ``torch.nn.Module`` built as ``Net(dim, num_classes, **options)`` that maps inputs ``(B, dim)`` to
logits ``(B, 1)`` for two classes (binary labels) and ``(B, num_classes)`` otherwise.

    python train.py                                                  # MLP, the article's network (the default)
    python train.py --config configs/cnn.yaml                        # ConvNet1D on MNIST-1D
    python train.py --model.net my_pkg.MyNet --model.net.width 64    # your own, by class path
    python train.py --model.net.help ConvNet1D                       # a network's options

The LightningModule and the grid engine take a network *factory* (the class with its options, jsonargparse's
``Callable[[int, int], nn.Module]``): ``dim`` and ``num_classes`` come from the data module. Checkpoints record the
network as ``{"class_path", "init_args"}`` (``net_config``), so a continued or tested run rebuilds it.
"""

import copy
import functools
import importlib
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from lit_momentum.loss import outputs
from lit_momentum.nets.conv import ConvNet1D
from lit_momentum.nets.gru import GRU1D
from lit_momentum.nets.mlp import MLP

__all__ = ["BUILT_IN", "MLP", "ConvNet1D", "GRU1D", "NetFactory", "build_net", "check_output", "net_config",
           "net_label", "net_name", "same_net"]

NetFactory = Callable[[int, int], nn.Module]  # (dim, num_classes) -> network
BUILT_IN = (MLP, ConvNet1D, GRU1D)  # given by their short names (--model.net GRU1D); the help and errors list them


def net_config(net: NetFactory | Mapping[str, Any], option: str = "model.net") -> dict[str, Any]:
    """The network (or any class with options: ``option`` names it in an error) as ``{"class_path": ...,
    "init_args": {...}}``: from a config (as LightningCLI gives it), a class, or a class with options bound
    (``functools.partial``, jsonargparse's callable)."""
    if isinstance(net, Mapping) or hasattr(net, "class_path"):  # a dict or jsonargparse's Namespace
        get = net.get if isinstance(net, Mapping) else functools.partial(getattr, net)
        init = get("init_args", None) or {}
        init = dict(init.as_dict() if hasattr(init, "as_dict") else init)
        return {"class_path": str(get("class_path")), "init_args": init}
    if isinstance(net, type):
        return {"class_path": f"{net.__module__}.{net.__qualname__}", "init_args": {}}
    if isinstance(net, functools.partial):
        cls = net.func if isinstance(net.func, type) else next((a for a in net.args if isinstance(a, type)), None)
        if cls is not None:
            return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": dict(net.keywords)}
    raise ValueError(f"{option} must be a class with its options (class_path and init_args), got {net!r}")


def net_class(config: Mapping[str, Any]) -> type[nn.Module]:
    path = config["class_path"]
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module or "lit_momentum.nets"), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"--model.net {path}: cannot import it: {err}") from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"--model.net {path}: not a torch.nn.Module")
    return cls


def same_net(a: NetFactory | Mapping[str, Any], b: NetFactory | Mapping[str, Any]) -> bool:
    """Whether two networks are the same class with the same options (defaults filled in, however spelled)."""
    def resolved(net: NetFactory | Mapping[str, Any]) -> tuple[type, dict[str, Any]]:
        config = net_config(net)
        cls = net_class(config)
        defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()
                    if p.default is not inspect.Parameter.empty}
        return cls, {**defaults, **config["init_args"]}
    return resolved(a) == resolved(b)


def net_name(net: NetFactory | Mapping[str, Any]) -> str:
    """The network's class name: ``MLP``, ``ConvNet1D``, ``MyNet``."""
    return net_config(net)["class_path"].rpartition(".")[2]


def net_label(net: NetFactory | Mapping[str, Any]) -> str:
    """The network in a run's name: "" for the article's MLP (its default hidden layer and sigmoid), ``linear`` for
    an MLP without hidden layers, ``MLP100-100`` for other widths, then the activation where it is not the article's
    (``MLP100-100relu``, ``MLPgelu``), the class name for any other network."""
    config = net_config(net)
    if net_class(config) is not MLP:  # (a user's own class called MLP is named, not taken for the article's)
        return net_name(net)
    hidden = config["init_args"].get("hidden")
    activation = config["init_args"].get("activation", "sigmoid")
    activation = "" if activation == "sigmoid" else activation
    if hidden is None:
        return f"MLP{activation}" if activation else ""
    hidden = [hidden] if isinstance(hidden, int) else list(hidden)
    return "MLP" + "-".join(map(str, hidden)) + activation if hidden else "linear"


def build_net(net: NetFactory | Mapping[str, Any], dim: int, num_classes: int) -> nn.Module:
    """``Net(dim, num_classes, **options)``, from a factory or a config; a one-line ``ValueError`` if it is no
    ``nn.Module``. Its initial weights come from the global generator, as in a single run."""
    config = net_config(net)
    check_signature(factory_class(net), config["init_args"])
    if isinstance(net, Mapping) or hasattr(net, "class_path"):
        module = net_class(config)(dim, num_classes, **config["init_args"])
    else:
        module = net(dim, num_classes)
    if not isinstance(module, nn.Module):
        raise ValueError(f"--model.net {net_name(net)}: not a torch.nn.Module (it built a {type(module).__name__})")
    materialize(module, dim)
    return module


def factory_class(net: NetFactory | Mapping[str, Any]) -> type[nn.Module]:
    """The network class behind a factory: the class itself, a class with options bound, or a config's class."""
    if isinstance(net, type):
        return net
    if isinstance(net, functools.partial) and isinstance(net.func, type):
        return net.func
    return net_class(net_config(net))


def check_signature(cls: type[nn.Module], options: Mapping[str, Any]) -> None:
    """A one-line ``ValueError`` unless ``cls(dim, num_classes, **options)`` is a call its constructor takes."""
    name = cls.__name__
    try:
        inspect.signature(cls).bind(0, 0, **options)
    except TypeError as err:
        missing = re.search(r"missing a required (?:keyword-only )?argument: '(\w+)'", str(err))
        if missing:
            raise ValueError(f"--model.net {name}: its option {missing.group(1)} has no default: give it, "
                             f"--model.net.{missing.group(1)} VALUE") from None
        raise ValueError(f"--model.net {name}: a network is built as {name}(dim, num_classes, **options), the data's "
                         f"input width and number of classes first; its constructor is {name}"
                         f"{inspect.signature(cls)}") from None


def materialize(net: nn.Module, dim: int) -> None:
    """Give a network with lazy modules (``nn.LazyLinear``, ...) its shapes and initial weights now, by a forward of
    two zero inputs in evaluation mode: its weights are drawn right after the others, under the same seed, in a
    single run and in a grid alike (else a run would draw them at its first step, after the data's draws)."""
    if not any(isinstance(m, nn.modules.lazy.LazyModuleMixin) for m in net.modules()):
        return
    training = net.training
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(2, dim))
    except Exception as err:  # noqa: BLE001 (any failure of the user's forward is reported as one line)
        raise ValueError(f"--model.net {type(net).__name__}: its lazy modules cannot be set up by a batch of shape "
                         f"(2, {dim}): {' '.join(str(err).split())}") from None
    finally:
        net.train(training)


def check_output(net: nn.Module, dim: int, num_classes: int) -> None:
    """Run a copy of the network on a batch of two zero inputs (the global generator untouched): its logits must be
    ``(2, 1)`` for two classes, ``(2, num_classes)`` otherwise; else a one-line ``ValueError``."""
    name, want = type(net).__name__, (2, outputs(num_classes))
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        try:
            out = copy.deepcopy(net)(torch.zeros(2, dim))
        except Exception as err:  # noqa: BLE001 (any failure of the user's forward is reported as one line)
            message = " ".join(str(err).split())
            raise ValueError(f"--model.net {name}: a batch of shape (2, {dim}) fails in its forward: {message}"
                             ) from None
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != want:
        raise ValueError(f"--model.net {name}: gives logits {shape} for a batch (2, {dim}); the data has "
                         f"{num_classes} classes, so it must give {want} (one logit for two classes, binary labels)")
