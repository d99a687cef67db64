"""Paired (pix2pix layout) and unpaired (CycleGAN layout) image folders, a paired task on a
folder of images, exact resume of the item streams through a Lightning checkpoint, and the
data configs."""

import re
from pathlib import Path

import hydra
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.data.images import Digits, ImageFolder
from ganlab.data.lightning import LightningData
from ganlab.data.paired import PairedFolder
from ganlab.data.paired_tasks import Edges
from ganlab.data.unpaired import UnpairedFolder, UnpairedImages
from ganlab.errors import UserError
from ganlab.train import compose_config
from test_translation_data import paired, resume_matches

# ---------------------------------------------------------------- pix2pix folders


def write_pairs(root: Path, split: str, n: int, size=(24, 12)) -> list[tuple]:
    """n A|B files of two flat colours each; returns their (A, B) colours in file order."""
    (root / split).mkdir(parents=True, exist_ok=True)
    colours = []
    for i in range(n):
        a, b = (10 * i, 0, 200), (250, 5 * i, 0)
        image = np.zeros((size[1], size[0], 3), np.uint8)
        image[:, : size[0] // 2], image[:, size[0] // 2 :] = a, b
        Image.fromarray(image).save(root / split / f"{i:03d}.png")
        colours.append((a, b))
    return colours


def colour(x: torch.Tensor) -> tuple:
    """The flat colour of a [-1, 1] image (C, H, W)."""
    values = ((x + 1) * 127.5).round().flatten(1)
    assert (values == values[:, :1]).all()
    return tuple(int(v) for v in values[:, 0])


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_paired_folder_splits_the_halves_by_direction(tmp_path, direction):
    pairs = write_pairs(tmp_path, "train", 5)
    write_pairs(tmp_path, "val", 3)
    dm = PairedFolder(str(tmp_path), direction, batch_size=2, image_size=8, num_workers=0).serve(4)
    dm.setup()
    assert dm.spec.kind == "pairs" and dm.spec.shapes["input"] == (3, 8, 8)
    val = dm.val_items(3)
    assert val["input"].shape == val["target"].shape == (3, 3, 8, 8)
    for i, (a, b) in enumerate(pairs[:3]):
        want = (a, b) if direction == "AtoB" else (b, a)
        assert (colour(val["input"][i]), colour(val["target"][i])) == want
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"input", "target"} and batch["target"].shape == (1, 2, 3, 8, 8)


def test_paired_folder_resumes_exactly(tmp_path):
    write_pairs(tmp_path, "train", 7)
    write_pairs(tmp_path, "val", 2)

    def make():
        return PairedFolder(str(tmp_path), batch_size=3, image_size=8, num_workers=0).serve(5)

    resume_matches(make, 2)


def test_paired_folder_errors_are_one_line(tmp_path):
    dm = PairedFolder(str(tmp_path / "facades"), image_size=8, num_workers=0)
    with pytest.raises(UserError) as err:
        dm.setup()
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'facades' / 'train'} does not")
    assert "pix2pix layout" in message and "facades" in message
    write_pairs(tmp_path, "train", 2)
    with pytest.raises(UserError, match=re.escape(f"{tmp_path / 'val'} does not exist")):
        PairedFolder(str(tmp_path), image_size=8).setup()
    with pytest.raises(ValueError, match="direction must be one of AtoB, BtoA, got 'AB'"):
        PairedFolder(str(tmp_path), direction="AB")


def test_paired_folder_unreadable_file(tmp_path, caplog):
    write_pairs(tmp_path, "train", 3)
    write_pairs(tmp_path, "val", 1)
    (tmp_path / "train" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot read image .*broken.png"):
        PairedFolder(str(tmp_path), image_size=8).setup()
    dm = PairedFolder(str(tmp_path), image_size=8, on_error="skip")
    dm.setup()
    assert len(dm.files("train")) == 3 and "skipped 1 unreadable" in caplog.text


# ---------------------------------------------------------------- CycleGAN folders


def write_domains(root: Path, sizes: dict[str, int]) -> None:
    """Flat images per folder: domain A red-ish, B blue-ish, value 10·i in the other channel."""
    for folder, n in sizes.items():
        (root / folder).mkdir(parents=True)
        for i in range(n):
            rgb = (200, 10 * i, 0) if folder.endswith("A") else (0, 10 * i, 200)
            Image.new("RGB", (12, 10), rgb).save(root / folder / f"{i:02d}.png")


@pytest.mark.parametrize("workers", [0, 2])
def test_unpaired_folder(tmp_path, workers):
    write_domains(tmp_path, {"trainA": 5, "trainB": 7, "testA": 2, "testB": 3})

    def make():
        return UnpairedFolder(str(tmp_path), batch_size=2, image_size=8, num_workers=workers).serve(
            6
        )

    dm = make()
    dm.setup()
    batches = list(dm.train_dataloader())
    assert set(batches[0]) == {"a", "b"} and batches[0]["a"].shape == (1, 2, 3, 8, 8)
    a = [colour(x) for b in batches for x in b["a"][0]]
    b = [colour(x) for b in batches for x in b["b"][0]]
    assert all(c[0] == 200 for c in a) and all(c[2] == 200 for c in b)
    assert sorted(c[1] for c in a[:5]) == [0, 10, 20, 30, 40]  # an epoch of A: each once
    assert sorted(c[1] for c in b[:7]) == [0, 10, 20, 30, 40, 50, 60]
    if workers == 0:
        resume_matches(make, 3)
    x, y = dm.real_images("test", domain="a")
    assert y is None and [colour(i) for i in x] == [(200, 0, 0), (200, 10, 0)]
    assert dm.val_items(2)["b"].shape == (2, 3, 8, 8)


def test_unpaired_folder_missing_domain_is_one_line(tmp_path):
    write_domains(tmp_path, {"trainA": 2, "trainB": 2, "testA": 1})
    with pytest.raises(UserError) as err:
        UnpairedFolder(str(tmp_path), image_size=8).setup()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'testB'} does not exist: put the test images")
    assert "trainA/, trainB/, testA/ and testB/" in message


# ---------------------------------------------------------------- through Lightning


class Recorder(pl.LightningModule):
    """Records a checksum of every batch dict Lightning hands to ``training_step``."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[float] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(
            sum(float(v.double().sum() * (i + 1)) for i, v in enumerate(batch.values()))
        )
        self.optimizers().step()  # counts as a step for max_steps

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(make, steps: int, root: Path, ckpt: Path | None = None) -> list[float]:
    trainer = pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )
    module = Recorder()
    trainer.fit(module, datamodule=LightningData(make()), ckpt_path=ckpt)
    trainer.save_checkpoint(root / "last.ckpt")
    return module.seen


def test_lightning_checkpoint_resumes_the_item_stream_exactly(tmp_path):
    def make():
        return UnpairedImages(Digits(image_size=8), Digits(image_size=8), batch_size=4).serve(5)

    full = fit(make, 5, tmp_path / "full")
    head = fit(make, 2, tmp_path / "split")
    ckpt = torch.load(tmp_path / "split" / "last.ckpt", weights_only=True)
    assert ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"position": 2}]
    tail = fit(make, 5, tmp_path / "split", ckpt=tmp_path / "split" / "last.ckpt")
    assert len(full) == 5 and head + tail == full


def test_paired_task_from_a_folder_of_images(tmp_path):
    write_domains(tmp_path, {"faces": 4})
    dm = paired(Edges(), base=ImageFolder(str(tmp_path / "faces"), image_size=8, channels=3))
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"input", "target"}  # unlabelled base: no label
    assert batch["input"].shape == (1, 8, 1, 8, 8) and batch["target"].shape == (1, 8, 3, 8, 8)
    assert dm.spec.classifier is None and dm.spec.num_classes == 0


# ---------------------------------------------------------------- configs


@pytest.mark.parametrize(
    "name, kind, classifier",
    [
        ("edges", "pairs", "digits"),
        ("super_resolution", "pairs", "mnist"),
        ("inpainting", "pairs", "mnist"),
        ("colorization", "pairs", "digits"),
        ("paired_folder", "pairs", None),
        ("digits2mnist", "domains", None),
        ("unpaired_folder", "domains", None),
    ],
)
def test_config_builds_what_it_declares(name, kind, classifier):
    overrides = [f"data={name}", "seed=7"] + (["data.path=/no/such"] if "folder" in name else [])
    cfg = compose_config(overrides)
    dm = hydra.utils.instantiate(cfg.data).serve(steps=3, per_step=2)  # as train.py does
    assert (dm.spec.kind, dm.spec.classifier, dm.steps, dm.per_step, dm.seed) == (
        kind, classifier, 3, 2, 7,
    )  # fmt: skip
    if name == "digits2mnist":
        assert dm.spec.classifiers == {"a": "digits", "b": "mnist"}


def test_paired_folder_refuses_plain_images(tmp_path):
    """Files that are not A|B pairs were split in halves and trained on silently."""
    write_pairs(tmp_path, "train", 2)
    write_pairs(tmp_path, "val", 2)
    Image.new("RGB", (16, 16)).save(tmp_path / "train" / "plain.png")
    with pytest.raises(UserError) as err:
        PairedFolder(str(tmp_path), image_size=8).setup()
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'train' / 'plain.png'} is 16x16, not an A|B pair")
    assert "twice as wide as high" in message and "\n" not in message
