"""A callback the DDP test adds through the CLI (``--trainer.callbacks+=tests.ddp_probe.RankAgreement``).

At the end of training every rank contributes its weights and velocity buffers; rank 0 writes how far apart they
are to ``<default_root_dir>/ddp_probe.json``.
"""

import json
import os

import lightning as L
import torch


class RankAgreement(L.Callback):
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        opt = trainer.optimizers[0]
        buffers = torch.cat([state["velocity"].flatten() for state in opt.state.values()])
        weights = torch.cat([p.detach().flatten() for p in pl_module.parameters()])
        gathered = {name: pl_module.all_gather(vec) for name, vec in (("buffers", buffers), ("weights", weights))}
        if trainer.is_global_zero:
            report = {name: (g - g[0]).abs().max().item() for name, g in gathered.items()}
            report["world_size"] = trainer.world_size
            with open(os.path.join(trainer.default_root_dir, "ddp_probe.json"), "w") as f:
                json.dump(report, f)
