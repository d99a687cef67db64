"""A user's own data set, from outside ganlab: one subclass of the in-memory base and one
YAML on ``hydra.searchpath`` (the recipe of ``ganlab.data.image_base.InMemoryImageData``)."""

import json
import os

import torch

from conftest import run_cli

BARS = '''
import torch

from ganlab.data.image_base import InMemoryImageData, TensorSource


class Bars(InMemoryImageData):
    """A bright bar in one of 4 row bands (the class) on black."""

    def __init__(self, batch_size: int = 32, seed: int = 0, image_size: int = 16) -> None:
        super().__init__(batch_size, seed, image_size, channels=1, num_classes=4)

    def load(self, split: str) -> TensorSource:
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        n, band = (512 if split == "train" else 128), self.image_size // 4
        labels = torch.randint(4, (n,), generator=g)
        rows = labels * band + torch.randint(band, (n,), generator=g)
        images = torch.zeros(n, 1, self.image_size, self.image_size, dtype=torch.uint8)
        images[torch.arange(n), 0, rows] = 255
        return TensorSource(images, labels)
'''

YAML = """# @package _global_
data:
  _target_: mydata.Bars
  image_size: 16
  batch_size: 8
  seed: ${seed}
optimized_metric: null
"""


def test_a_users_data_set_trains_from_its_own_package(tmp_path, monkeypatch):
    (tmp_path / "mydata").mkdir()
    (tmp_path / "mydata" / "__init__.py").write_text(BARS)
    (tmp_path / "conf" / "data").mkdir(parents=True)
    (tmp_path / "conf" / "data" / "bars.yaml").write_text(YAML)
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path)
    run = tmp_path / "run"
    result = run_cli(
        "model=dcgan", "data=bars", f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
        "steps=4", "n_critic=2", "threads=1", "trainer=cpu", "logger=csv", "eval_every=100",
        "sample_every=100", "~callbacks.metrics", "model.generator.width=8",
        "model.discriminator.width=8", f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 4
    spec = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["ganlab"]["spec"]
    assert spec["kind"] == "images" and spec["shapes"] == {"x": [1, 16, 16]}
    assert spec["num_classes"] == 4 and spec["modes"] == 4
