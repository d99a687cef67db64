"""Data faults: files that fail to decode mid-run (skipped and counted, or named in one
line), and data set files that are truncated."""

import io
import json
import logging

import numpy as np
import pytest
from PIL import Image

from conftest import run_train
from ganlab.data.folder import unreadable
from ganlab.errors import UserError

RUN = ["model=dcgan", "data=folder", "data.image_size=16", "data.batch_size=8",
       "data.num_workers=1", "model.generator.width=8", "model.discriminator.width=8",
       "~callbacks.metrics", "trainer=cpu", "steps=6", "log_every=2", "eval_every=100",
       "sample_every=100"]  # fmt: skip


@pytest.fixture
def folder(tmp_path):
    """10 good images and 2 JPEGs cut in half (they pass PIL's verify, then fail to decode)."""
    rng = np.random.default_rng(0)
    path = tmp_path / "images"
    path.mkdir()
    for i in range(12):
        image = Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=95)
        data = buffer.getvalue()
        (path / f"{i:02d}.jpg").write_bytes(data[: len(data) // 2] if i in (3, 7) else data)
    assert unreadable(sorted(path.iterdir())) == []  # so only decoding finds them
    return path


def test_truncated_jpegs_are_skipped_at_decode_time_and_counted(folder, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    summary = run_train(tmp_path / "run", *RUN, f"data.path={folder}", "data.on_error=skip")
    assert summary["status"] == "completed" and summary["steps"] == 6
    assert summary["data"] == {"skipped_images": 2}  # counted across the worker processes
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["data"] == {"skipped_images": 2}


def test_a_truncated_jpeg_without_skip_is_one_line_and_a_failed_summary(folder, tmp_path):
    with pytest.raises(UserError) as err:
        run_train(tmp_path / "run", *RUN, f"data.path={folder}")
    message = str(err.value)
    first = message.split(": ")[0]  # the first broken file the stream reaches
    assert first in (f"cannot decode image {folder}/03.jpg", f"cannot decode image {folder}/07.jpg")
    assert "\n" not in message
    assert message.endswith("(set data.on_error=skip to skip files that fail to decode)")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["reason"] == message


def test_a_truncated_mnist_file_is_one_line(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):  # fmt: skip
        (raw / name).write_bytes(b"\0\0")  # a 2-byte IDX file
    with pytest.raises(UserError) as err:
        run_train(tmp_path / "run", "model=dcgan", "data=mnist", f"data.root={tmp_path}",
                  "trainer=smoke")  # fmt: skip
    assert str(err.value).startswith(f"MNIST in {raw} is unreadable (")
    assert "truncated or corrupt" in str(err.value) and "\n" not in str(err.value)
