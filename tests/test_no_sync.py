"""No host sync in a training step: between logging intervals, nothing in ganlab (the
runner, the families, the nets, the callbacks) reads a tensor back to the host: no
.item(), .tolist(), float(), int() or bool() of a tensor. On a GPU each of these waits
for the device; on the CPU this test catches them. (PyTorch's own reads of CPU-side
counters, such as Adam's step, are not syncs and are not counted.)"""

from __future__ import annotations

import os
import sys

import lightning.pytorch as pl
import pytest
import torch

from ganlab.train import build, compose_config
from test_families import write_domains

LOG_EVERY, STEPS = 4, 9
TINY = ["model.generator.width=8", "model.discriminator.width=8", "threads=1",
        "sample_every=100", "eval_every=100", "ckpt_every=100"]  # fmt: skip
CASES = {
    "toy": [],
    "conditional_dcgan_ema": ["model=dcgan", "model.conditional=true", "data.image_size=16",
                              "n_critic=2", "ema=0.9"],
    "wgan_gp_layernorm": ["model=dcgan", "data.image_size=16", "loss=wgan_gp", "n_critic=2",
                          "model.discriminator.norm=layer"],
    "pix2pix": ["family=pix2pix"],
    "cyclegan": ["family=cyclegan", "data=unpaired_folder", "data.image_size=16",
                 "data.num_workers=0", "family.pool_size=3", "data.batch_size=2"],
}  # fmt: skip
READS = ("item", "tolist", "__float__", "__bool__", "__int__", "__index__")


class Watch(pl.Callback):
    """Records ganlab's tensor reads during steps that do not log (added last, so its
    on_train_batch_end ends the window after every other callback's)."""

    def __init__(self, monkeypatch) -> None:
        self.monkeypatch, self.reads, self.watching = monkeypatch, [], False
        for name in READS:
            original = getattr(torch.Tensor, name)

            def read(tensor, *a, _name=name, _original=original, **k):
                caller = sys._getframe(1).f_code.co_filename
                if self.watching and f"{os.sep}ganlab{os.sep}" in caller:
                    self.reads.append((self.step, _name, caller))
                return _original(tensor, *a, **k)

            monkeypatch.setattr(torch.Tensor, name, read)

    def on_train_batch_start(self, trainer, module, *args) -> None:
        self.step = module.g_step + 1  # the step this batch makes
        self.watching = self.step % LOG_EVERY != 0 and self.step != STEPS

    def on_train_batch_end(self, trainer, module, *args) -> None:
        self.watching = False


@pytest.mark.parametrize("case", list(CASES))
def test_steps_between_logging_intervals_read_nothing_back(case, tmp_path, monkeypatch):
    extra = CASES[case]
    if "data=unpaired_folder" in extra:
        extra = [*extra, f"data.path={write_domains(tmp_path / 'domains')}"]
    cfg = compose_config(["logger=csv", "trainer=cpu", f"steps={STEPS}", f"log_every={LOG_EVERY}",
                          *TINY, *extra], tmp_path / "run")  # fmt: skip
    trainer, module, datamodule = build(cfg)
    watch = Watch(monkeypatch)
    trainer.callbacks.append(watch)
    trainer.fit(module, datamodule=datamodule)
    assert module.g_step == STEPS and module.status == "running"
    assert watch.reads == []
