"""Every mistake is one line (issue 13, item 6, and the one-line cases of the other items):
a table of commands, each run as the command line runs it (in this process), each ending in
exactly one ``error:`` line on stderr, exit code 2, no traceback."""

import logging
import sys

import pytest
import torch

from conftest import run_train
from ganlab import evaluate, sample, translate
from ganlab.train import main as train_main

SMALL_IMAGE = ["model=dcgan", "data=digits", "data.image_size=16", "model.generator.width=8",
               "model.discriminator.width=8", "trainer=smoke", "~callbacks.metrics"]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A toy run, a toy run with another model, and a small image run."""
    root = tmp_path_factory.mktemp("runs")
    run_train(root / "toy", "trainer=smoke")
    run_train(root / "wide", "trainer=smoke", "model.generator.width=64")
    run_train(root / "image", *SMALL_IMAGE)
    (root / "notes.txt").write_text("not an image")
    (root / "empty.ckpt").write_bytes(b"")
    (root / "file").write_text("a file where a folder should be")
    raw = root / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):  # fmt: skip
        (raw / name).write_bytes(b"\0\0")
    return root


TRAIN = "ganlab"
CASES = [
    # (command, arguments (ROOT: the fixture's folder, NEW: a fresh run dir), error starts with)
    (TRAIN, ["stpes=10"], "unknown key 'stpes' (stpes=10); did you mean steps?"),
    (TRAIN, ["lss=hinge"], "unknown key 'lss' (lss=hinge); did you mean loss?"),
    (TRAIN, ["steps=abc"], "steps=abc: expected an integer (like steps=5000)"),
    (TRAIN, ["optim.d.lr=fast"], "optim.d.lr=fast: expected a number (like optim.d.lr=0.0002)"),
    (TRAIN, ["seed=abc"], "seed=abc: expected an integer (like seed=0)"),
    (TRAIN, ["log_every=0", "trainer=smoke"], "log_every must be >= 1, got 0"),
    (TRAIN, ["+foo=bar"], "unknown key 'foo' (+foo=bar): ganlab's config has no such key"),
    (TRAIN, ["-m", "steps=10,x"], "steps=10,x: expected an integer"),
    (TRAIN, ["trainer=smoke", "hydra.run.dir=ROOT/toy"], "ROOT/toy already holds a run"),
    (
        TRAIN,
        ["trainer=smoke", "resume=ROOT/wide/checkpoints/last.ckpt"],
        "resume: ROOT/wide/checkpoints/last.ckpt was trained with another config "
        "(model.generator.width: 64 -> 128)",
    ),  # fmt: skip
    (
        TRAIN,
        ["model=dcgan", "data=mnist", "data.root=ROOT/mnist", "trainer=smoke"],
        "MNIST in ROOT/mnist/MNIST/raw is unreadable (",
    ),  # fmt: skip
    ("sample", ["ckpt=ROOT/image/checkpoints/last.ckpt", "class=abc"], "class: Value 'abc'"),
    (
        "sample",
        ["ckpt=ROOT/image/checkpoints/last.ckpt", "n=100000000"],
        "n=100000000 is more than 4,096 (images in one grid; write a folder for more)",
    ),  # fmt: skip
    (
        "sample",
        ["ckpt=ROOT/image/checkpoints/last.ckpt", "n=100000000", "out=NEW/pngs"],
        "n=100000000 is more than 100,000 (samples written at once)",
    ),  # fmt: skip
    (
        "sample",
        ["ckpt=ROOT/image/checkpoints/last.ckpt", "out=ROOT/notes.txt"],
        "out=ROOT/notes.txt is an existing file",
    ),  # fmt: skip
    (
        "sample",
        ["ckpt=ROOT/image/checkpoints/last.ckpt", "out=NEW/x.gif"],
        "out=NEW/x.gif has the suffix .gif: write a grid to a .png or .jpg file",
    ),  # fmt: skip
    (
        "sample",
        ["ckpt=ROOT/toy/checkpoints/last.ckpt", "out=NEW/p.png"],
        "this model makes points, not images",
    ),  # fmt: skip
    (
        "evaluate",
        ["ckpt=ROOT/image/checkpoints/last.ckpt", "split=val"],
        "split=val: choose one of train, test",
    ),  # fmt: skip
    (
        "evaluate",
        ["ckpt=ROOT/image/checkpoints/last.ckpt", "out=ROOT/file/m.json"],
        "out=ROOT/file/m.json: cannot make its folder",
    ),  # fmt: skip
    (
        "evaluate",
        [
            "ckpt=ROOT/image/checkpoints/last.ckpt",
            "metrics=fid",
            "extractor=inception",
            "inception_weights=NEW/none.pth",
        ],
        "InceptionV3 weights unavailable (no file NEW/none.pth): download",
    ),  # fmt: skip
]
CASES += [
    (
        "translate",
        ["ckpt=ROOT/image/checkpoints/last.ckpt", "input=ROOT", "out=ROOT/notes.txt"],
        "out=ROOT/notes.txt is an existing file: name a folder",
    ),  # fmt: skip
    (
        "translate",
        ["ckpt=ROOT/image/checkpoints/last.ckpt", "input=ROOT", "out=NEW/t"],
        "translate needs a translation model (pix2pix, cyclegan)",
    ),  # fmt: skip
]
CASES += [  # issue 19: the last rough edges
    (TRAIN, ["regularizers=5"], "regularizers=5: expected the name of a regularizers config: "),
    (TRAIN, ["loss=5"], "loss=5: expected the name of a loss config: hinge, lsgan, "),
    (TRAIN, ["steps=[1,2"], "steps=[1,2: not an override (no viable alternative at input"),
    (TRAIN, ["optim.g.betas=[0.5]"], "optim.g.betas=[0.5]: expected a list of 2 numbers (like "),
    (TRAIN, ["hparams_search=grid25_rkl"], "hparams_search=grid25_rkl runs a search of many jobs: "
     "add -m (python -m ganlab -m hparams_search=grid25_rkl ...)"),
    (TRAIN, ["family=pix2pix", "model=dcgan", "trainer=smoke"],
     "model=dcgan is made for images, but family=pix2pix trains on pairs: choose model=pix2pix"),
    (TRAIN, ["optimized_metric=val/nope", "trainer=smoke"],
     "optimized_metric=val/nope is not a metric ganlab logs: choose one of val/fid, "),
    (TRAIN, ["trainer=smoke", "+callbacks.x._target_=os.system"],
     "Target 'os.system' is blocklisted because it allows config data to control executable "
     "behavior or belongs to an execution-capable target family. It cannot be authorized"),
    (TRAIN, ["trainer=smoke", "steps=10", "resume=auto", "hydra.run.dir=ROOT/toy"],
     "resume: ROOT/toy/checkpoints/last.ckpt has trained 20 steps already and steps=10: "
     "nothing to train"),
    ("sample", ["ckpt=ROOT/empty.ckpt"], "ROOT/empty.ckpt is empty (0 bytes), not a checkpoint"),
    ("translate", ["ckpt=ROOT/toy/checkpoints/last.ckpt", "input=ROOT/missing"],
     "input=ROOT/missing does not exist: name a folder of images"),
    ("translate", ["ckpt=ROOT/toy/checkpoints/last.ckpt", "input=ROOT/notes.txt"],
     "input=ROOT/notes.txt is a file, not a folder: name a folder of images"),
]  # fmt: skip
NO_GPU = "device=cuda: this machine has no usable CUDA GPU; use device=cpu"
if not torch.cuda.is_available():
    for command in ("sample", "evaluate", "translate"):
        extra = ["input=ROOT"] if command == "translate" else []
        CASES.append((command, ["ckpt=ROOT/image/checkpoints/last.ckpt", *extra, "device=cuda"],
                      NO_GPU))  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh_logging():
    """In-process Hydra runs leave their console handlers on the root logger, writing to an
    earlier test's captured stream: each case starts without them, as a new process does."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers.clear()
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = saved


def run(command, argv, monkeypatch):
    """The command as its console script runs it; returns its exit code."""
    with pytest.raises(SystemExit) as exit_info:
        if command == TRAIN:
            monkeypatch.setattr(sys, "argv", ["ganlab", *argv])
            train_main()
        else:
            {"sample": sample.main, "evaluate": evaluate.main, "translate": translate.main}[
                command
            ](argv)
    return exit_info.value.code


@pytest.mark.parametrize(("command", "argv", "message"), CASES,
                         ids=[f"{c[0]} {' '.join(c[1])}" for c in CASES])  # fmt: skip
def test_every_mistake_is_one_line(command, argv, message, runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    monkeypatch.chdir(tmp_path)

    def fill(text):
        return text.replace("ROOT", str(runs)).replace("NEW", str(tmp_path / "new"))

    argv = [fill(a) for a in argv]
    if command == TRAIN and not any(a.startswith("hydra.run.dir") for a in argv):
        argv += [f"hydra.run.dir={tmp_path / 'new'}", "logger=csv"]
    code = run(command, argv, monkeypatch)
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert code == 2 and len(errors) == 1, err[-3000:]
    assert errors[0].startswith("error: " + fill(message)), errors[0]
    assert "Traceback" not in out + err
    assert "GPU available" not in err  # Lightning's device lines stood before the error line
    log = tmp_path / "new" / "train.log"
    if command == TRAIN and log.is_file():  # a mistake found inside a run: in its log too
        assert errors[0] in log.read_text()


def test_the_run_log_has_the_error_line_too(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["log_every=0", "trainer=smoke", "logger=csv", f"hydra.run.dir={tmp_path / 'run'}"]
    assert run(TRAIN, argv, monkeypatch) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == "error: log_every must be >= 1, got 0"
    assert line in (tmp_path / "run" / "train.log").read_text()


def test_evaluate_makes_the_output_folder_before_scoring(tmp_path):
    opts = evaluate.EvaluateOptions(ckpt="x.ckpt", out=str(tmp_path / "a" / "b" / "m.json"))
    assert evaluate.output_path(opts) == tmp_path / "a" / "b" / "m.json"
    assert (tmp_path / "a" / "b").is_dir()


def test_wandb_online_without_network_logs_offline(tmp_path, monkeypatch, caplog):
    from ganlab.loggers import wandb_logger

    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    logger = wandb_logger(str(tmp_path), mode="online")
    assert logger._wandb_init["mode"] == "offline"
    assert "W&B server http://127.0.0.1:9 is not reachable" in caplog.text


def test_a_resume_that_trains_nothing_changes_nothing(runs, tmp_path, capsys, monkeypatch):
    """It rewrote .hydra/config.yaml, overrides.yaml and summary.json as if the run had
    the new steps. Now no file changes, not even the lock's (its content or its time)."""
    monkeypatch.chdir(tmp_path)
    run_dir = runs / "toy"

    def files():
        return {p: (p.read_bytes(), p.stat().st_mtime_ns)
                for p in sorted(run_dir.rglob("*")) if p.is_file()}  # fmt: skip

    before = files()
    argv = ["trainer=smoke", "logger=csv", "steps=10", "resume=auto", f"hydra.run.dir={run_dir}"]
    assert run(TRAIN, argv, monkeypatch) == 2
    assert "nothing to train" in capsys.readouterr().err
    assert files() == before


def test_report_out_naming_a_file_is_one_line(tmp_path, capsys):
    from ganlab.report.__main__ import main as report_main

    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_info:
        report_main([str(tmp_path), "--out", str(tmp_path / "file")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1, err
    assert (
        err[0]
        == f"error: --out {tmp_path / 'file'} is an existing file: name a folder for the report"
    )
