"""Image data served by DataLoader workers (any folder of images), checked against the
in-memory path; exact resume through Lightning checkpoints for both paths."""

from collections import Counter
from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from ganlab.data.archives import ArrayImages
from ganlab.data.image_base import TensorSource
from ganlab.data.images import Digits, ImageFolder
from ganlab.data.lightning import LightningData
from ganlab.data.sampling import Collate, IndexStream, LoaderBatches, MemoryBatches
from ganlab.errors import UserError


def image_bytes(x: torch.Tensor) -> Counter:
    """Multiset of images (N, ...), for comparing sets of samples regardless of order."""
    return Counter(row.numpy().tobytes() for row in x.flatten(1))


# ---------------------------------------------------------------- both loaders agree


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_path_equals_in_memory_path_and_resumes(workers):
    images = torch.randint(0, 256, (23, 3, 6, 6), dtype=torch.uint8)
    labels = torch.randint(0, 10, (23,))

    def loader():
        stream = IndexStream(23, 2 * 5, seed=11, device="cpu")
        data = ArrayImages(images.permute(0, 2, 3, 1).numpy(), labels.tolist(), size=6)
        return LoaderBatches(data, stream, Collate(True, 2), 9, workers, pin_memory=False)

    stream = IndexStream(23, 2 * 5, seed=11, device="cpu")
    source = TensorSource(images, labels)
    memory = list(MemoryBatches(partial(source.batch, per_step=2), stream, 9))
    first = loader()
    it = iter(first)
    head = [next(it) for _ in range(4)]
    assert first.state_dict() == {"position": 4}  # handed out, not prefetched by workers
    resumed = loader()
    resumed.load_state_dict(first.state_dict())
    got = head + list(resumed)
    assert len(got) == 9
    for (xa, ya), (xb, yb) in zip(memory, got, strict=True):
        assert xa.shape == (2, 5, 3, 6, 6) and ya.shape == (2, 5)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


class Recorder(pl.LightningModule):
    """Records a checksum of every real batch Lightning hands to ``training_step``."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[float] = []

    def training_step(self, batch, batch_idx):
        x = batch[0] if isinstance(batch, tuple | list) else batch
        self.seen.append(float(x.double().mul(torch.arange(x.numel()).view_as(x)).sum()))
        self.optimizers().step()  # counts as a step for max_steps

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(make, steps: int, root: Path, ckpt: Path | None = None) -> list[float]:
    trainer = pl.Trainer(
        max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=root,
    )  # fmt: skip
    module = Recorder()
    trainer.fit(module, datamodule=LightningData(make()), ckpt_path=ckpt)
    trainer.save_checkpoint(root / "last.ckpt")
    return module.seen


@pytest.mark.parametrize("kind", ["memory", "workers"])
def test_lightning_checkpoint_resumes_the_stream_exactly(tmp_path, kind):
    if kind == "memory":

        def make():
            return Digits(batch_size=8, image_size=8, seed=5).serve(6, 2)
    else:
        write_images(tmp_path / "images")

        def make():
            return ImageFolder(
                str(tmp_path / "images"), batch_size=4, image_size=8, num_workers=2
            ).serve(6)

    full = fit(make, 6, tmp_path / "full")
    head = fit(make, 2, tmp_path / "split")
    ckpt = torch.load(tmp_path / "split" / "last.ckpt", weights_only=True)
    assert ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"position": 2}]
    tail = fit(make, 6, tmp_path / "split", ckpt=tmp_path / "split" / "last.ckpt")
    assert len(full) == 6 and head + tail == full


# ---------------------------------------------------------------- image folder


def write_images(folder: Path) -> dict[str, tuple]:
    """A folder of mixed images, each of one colour; returns file name -> expected RGB."""
    (folder / "sub" / "deeper").mkdir(parents=True)
    rgba = np.zeros((30, 45, 4), np.uint8)
    rgba[..., 0] = 255  # red, but fully transparent: composited on white
    palette = Image.new("P", (25, 25), 1)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    images = {
        "a_rgb.png": (Image.new("RGB", (40, 30), (255, 0, 0)), (255, 0, 0)),
        "b_gray.png": (Image.new("L", (20, 20), 51), (51, 51, 51)),
        "c_rgba.png": (Image.fromarray(rgba, "RGBA"), (255, 255, 255)),
        "sub/d_photo.jpg": (Image.new("RGB", (50, 70), (0, 255, 0)), (0, 255, 0)),
        "sub/e_palette.png": (palette, (0, 0, 255)),
        "sub/deeper/f_small.bmp": (Image.new("RGB", (9, 12), (0, 0, 0)), (0, 0, 0)),
    }
    for name, (image, _) in images.items():
        image.save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    return {name: rgb for name, (_, rgb) in images.items()}


def test_folder_images_converted_resized_and_cropped(tmp_path):
    expected = write_images(tmp_path)
    dm = ImageFolder(str(tmp_path), image_size=8, num_workers=0)
    assert (dm.num_classes, dm.image_shape) == (0, (3, 8, 8))
    assert [p.relative_to(tmp_path).as_posix() for p in dm.files()] == sorted(expected)
    x, y = dm.real_images()
    assert y is None and x.shape == (6, 3, 8, 8) and x.dtype == torch.float32
    want = torch.tensor([expected[k] for k in sorted(expected)], dtype=torch.float32)
    want = want / 127.5 - 1
    assert_close(x.mean(dim=(2, 3)), want, atol=0.03, rtol=0)  # JPEG is lossy
    gray, _ = ImageFolder(str(tmp_path), image_size=8, channels=1, num_workers=0).real_images()
    assert gray.shape == (6, 1, 8, 8)
    assert_close(gray[1], torch.full((1, 8, 8), 51 / 127.5 - 1))  # b_gray.png


def test_folder_centre_crop(tmp_path):
    stripes = np.zeros((30, 90, 3), np.uint8)
    stripes[:, :30, 0], stripes[:, 30:60, 1], stripes[:, 60:, 2] = 255, 255, 255
    Image.fromarray(stripes).save(tmp_path / "wide.png")
    x, _ = ImageFolder(str(tmp_path), image_size=8, num_workers=0).real_images()
    centre = x[0, :, :, 2:6]  # the middle third (green) fills the crop
    assert_close(centre, torch.tensor([-1.0, 1.0, -1.0])[:, None, None].expand_as(centre))


@pytest.mark.parametrize("workers", [0, 2])
def test_folder_loader_shapes_and_resume(tmp_path, workers):
    write_images(tmp_path)

    def make():
        return ImageFolder(
            str(tmp_path), batch_size=4, image_size=8, num_workers=workers, seed=2
        ).serve(7, 2)

    full = list(make().train_dataloader())
    assert len(full) == 7 and all(torch.is_tensor(x) for x in full)  # unlabelled: x only
    assert full[0].shape == (2, 4, 3, 8, 8) and full[0].dtype == torch.float32
    assert full[0].min() >= -1 and full[0].max() <= 1
    real, _ = make().real_images()
    seen = torch.cat([x.flatten(0, 1) for x in full])[:6]  # the first epoch: every file once
    assert image_bytes(seen) == image_bytes(real)
    loader = make().train_dataloader()
    it = iter(loader)
    head = [next(it), next(it), next(it)]
    resumed = make().train_dataloader()
    resumed.load_state_dict(loader.state_dict())
    for a, b in zip(full, head + list(resumed), strict=True):
        assert torch.equal(a, b)


def test_folder_unreadable_file_raise_or_skip(tmp_path, caplog):
    write_images(tmp_path)
    (tmp_path / "sub" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(UserError) as err:
        ImageFolder(str(tmp_path), num_workers=0).setup("fit")
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "sub" / "broken.png") in message
    assert "on_error=skip" in message
    dm = ImageFolder(str(tmp_path), image_size=8, on_error="skip", num_workers=0)
    assert len(dm.files()) == 6
    assert "skipped 1 unreadable image file(s)" in caplog.text
    with pytest.raises(ValueError, match="on_error must be one of"):
        ImageFolder(str(tmp_path), on_error="ignore")
    with pytest.raises(ValueError, match="channels must be 1 .* or 3 .*, got 4"):
        ImageFolder(str(tmp_path), channels=4)


@pytest.mark.parametrize("workers", [0, 2])
def test_folder_decode_failure_later_names_the_file(tmp_path, workers):
    photo = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.jpg")
    data = (tmp_path / "photo.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])  # passes verify()
    dm = ImageFolder(str(tmp_path), batch_size=2, num_workers=workers).serve(2)
    with pytest.raises(UserError) as err:
        list(dm.train_dataloader())
    message = str(err.value)
    assert message.startswith(f"cannot decode image {tmp_path / 'truncated.jpg'}")
    assert "\n" not in message


def test_folder_empty_or_missing(tmp_path):
    with pytest.raises(UserError, match=f"data.path={tmp_path}: no image files there"):
        ImageFolder(str(tmp_path)).setup()
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(UserError, match="no image files there"):
        ImageFolder(str(tmp_path)).setup()
    missing = tmp_path / "nowhere"
    with pytest.raises(UserError, match=f"data.path={missing} does not exist"):
        ImageFolder(str(missing)).real_images()
