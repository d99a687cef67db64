"""Checkpoints cannot run anything: only the callables ganlab registers are rebuilt."""

import contextlib
import io
import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_one_error_line, run_train
from ganlab import evaluate, sample, translate
from ganlab.checkpoints import load_trained
from ganlab.errors import UserError
from ganlab.trust import is_trusted, trusted_config


@pytest.fixture(scope="module")
def toy_ckpt(tmp_path_factory):
    run = tmp_path_factory.mktemp("toy")
    run_train(run, "trainer=smoke")
    return run / "checkpoints" / "last.ckpt"


def mutate(good, path, key, value):
    """A copy of checkpoint ``good`` at ``path`` whose stored config (both the resolved one
    that the commands rebuild and the one resume compares) has ``value`` at dotted ``key``."""
    ckpt = torch.load(good, weights_only=True)
    state = ckpt["ganlab"]
    for config in [state["config"]] + ([state["resolved"]] if "resolved" in state else []):
        *parents, last = key.split(".")
        for part in parents:
            config = config[part]
        config[last] = value
    torch.save(ckpt, path)
    return path


def craft(good, path, victim):
    """A checkpoint whose generator config writes ``victim`` when instantiated."""
    return mutate(good, path, "model.generator", {
        "_target_": "pathlib.Path.write_text",
        "_args_": [{"_target_": "pathlib.Path", "_args_": [str(victim)]}, "x"],
    })  # fmt: skip


def one_error_line(capsys, entry, argv):
    with pytest.raises(SystemExit) as exit_info:
        entry(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("command", ["sample", "evaluate"])
def test_crafted_checkpoint_runs_nothing_in_the_commands(command, toy_ckpt, tmp_path, capsys):
    victim = tmp_path / "pwned"
    bad = craft(toy_ckpt, tmp_path / "bad.ckpt", victim)
    entry = {"sample": sample.main, "evaluate": evaluate.main}[command]
    line = one_error_line(capsys, entry, [f"ckpt={bad}", f"out={tmp_path / 'o.csv'}"])
    assert "'pathlib.Path.write_text' (at model.generator)" in line and "refusing" in line
    assert not victim.exists()


def test_crafted_checkpoint_is_refused_on_resume(toy_ckpt, tmp_path):
    victim = tmp_path / "pwned"
    bad = craft(toy_ckpt, tmp_path / "bad.ckpt", victim)
    with pytest.raises(UserError, match="pathlib.Path.write_text"):
        run_train(tmp_path / "run", "trainer=smoke", f"resume={bad}")
    assert not victim.exists() and not (tmp_path / "run" / "metrics.csv").exists()


@pytest.mark.parametrize(
    ("target", "trusted"),
    [
        ("ganlab.nets.MLP", True),  # re-exported: defined in ganlab.nets.mlp
        ("ganlab.nets.mlp.MLP", True),
        ("ganlab.families.LatentGAN", True),
        ("ganlab.losses.R1Penalty", True),
        ("ganlab.data.toy.ToyDataModule", True),
        ("ganlab.data.toy.ring", True),  # a function, listed
        ("torch.optim.Adam", True),
        ("ganlab.data.folder.Path", False),  # pathlib.Path seen through a ganlab module
        ("ganlab.data.folder.Image.open", False),
        ("ganlab.data.archives.ensure_files", False),  # a ganlab function, not listed
        ("ganlab.callbacks.checkpoint.save_atomic", False),
        ("os.system", False),
        ("builtins.eval", False),
        ("${oc.env:X}", False),
        (42, False),
    ],
)
def test_registry(target, trusted):
    assert is_trusted(target) is trusted


def test_only_the_rebuilt_parts_are_kept_and_checked(monkeypatch):
    config = {
        "model": {"generator": {"_target_": "ganlab.nets.MLP", "in_dim": 2}},
        "callbacks": {"x": {"_target_": "os.system"}},  # never rebuilt: dropped, not refused
        "seed": 0,
    }
    kept = trusted_config(config, "c.ckpt")
    assert set(kept) == {"model", "seed"}
    config["regularizers"] = {"r": {"weight": [{"_target_": "os.system"}]}}  # nested in a list
    with pytest.raises(UserError, match=r"'os.system' \(at regularizers.r.weight\[0\]\)"):
        trusted_config(config, "c.ckpt")
    monkeypatch.setenv("GANLAB_TRUSTED_MODULES", "mynets")  # your own nets can be allowed
    assert not is_trusted("mynets.Net")  # not importable: still refused


# ------------------------------------------------------------ crafted checkpoints (issue 19)
def payloads(watched):
    """Config values that, were they resolved or instantiated, would write under ``watched``
    (or read the environment): every OmegaConf resolver, ganlab's own, nested and escaped."""
    victim, new = watched / "victim.txt", watched / "new"
    opener = f"{{_target_: builtins.open, _args_: ['{victim}', w]}}"
    return {
        "oc.create": f"${{oc.create:{opener}}}",
        "oc.decode": f"${{oc.decode:'{opener}'}}",
        "oc.create copyfile": "${oc.create:{_target_: shutil.copyfile, _args_: "
        f"['{victim}', '{new}']}}}}",
        "oc.env": "${oc.env:HOME}",
        "oc.select": f"${{oc.select:nothing,${{oc.create:{opener}}}}}",
        "oc.select key": "${oc.select:${oc.env:HOME},1}",
        "oc.dict.keys": "${oc.dict.keys:model}",
        "oc.dict.values": "${oc.dict.values:model}",
        "oc.deprecated": "${oc.deprecated:seed}",
        "ganlab.mul": "${ganlab.mul:2,3}",
        "sweep_group": "${sweep_group:}",
        "metric_direction": "${metric_direction:val/fid}",
        "hydra": "${hydra:runtime.output_dir}",
        "now": "${now:%Y}",
        "in a string": "a${seed}b",
        "escaped": "\\${seed}",
        "reference to a payload": "${latent.payload}",
        "copyfile": {"_target_": "shutil.copyfile", "_args_": [str(victim), str(new)]},
        "in a list": [1, {"_target_": "os.makedirs", "name": str(new)}],
        "in a dict": {"a": {"b": {"_target_": "pathlib.Path.touch", "self": str(new)}}},
        "_args_ of a ganlab class": {"_target_": "ganlab.nets.MLP", "_args_": [2, 2]},
        "_partial_ not a bool": {"_target_": "ganlab.nets.MLP", "_partial_": "${oc.env:X}"},
        "_call_": {"_target_": "ganlab.nets.MLP", "_call_": "os.system"},
        "_recursive_": {"_target_": "ganlab.nets.MLP", "_recursive_": False},
        "_convert_": {"_target_": "ganlab.nets.MLP", "_convert_": "all"},
        "a tensor": torch.zeros(2),
    }


@pytest.fixture
def watched(tmp_path):
    """A folder whose files a payload would change; ``snapshot()`` lists them with contents."""
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "victim.txt").write_text("keep me")
    return folder


def snapshot(folder):
    return {p: p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


PAYLOAD_NAMES = list(payloads(__import__("pathlib").Path("/w")))


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
@pytest.mark.parametrize("key", ["family.seed", "model.generator.width"])
def test_a_payload_anywhere_is_refused_before_anything_runs(name, key, toy_ckpt, watched):
    before = snapshot(watched)
    value = payloads(watched)[name]
    bad = mutate(toy_ckpt, watched.parent / "bad.ckpt", key, value)
    if name == "reference to a payload":  # a reference followed to an interpolation
        bad = mutate(bad, bad, "latent.payload", payloads(watched)["oc.create"])
    with pytest.raises(UserError) as err:
        load_trained(bad)
    assert len(str(err.value).splitlines()) == 1 and "refusing to load it" in str(err.value)
    assert key in str(err.value) or "latent.payload" in str(err.value) or "_target_" in value
    assert snapshot(watched) == before


@pytest.mark.parametrize("command", ["sample", "evaluate", "translate"])
def test_the_commands_refuse_a_payload_first(command, toy_ckpt, watched, tmp_path, capsys):
    """translate refused such a checkpoint only after running its payload."""
    before = snapshot(watched)
    payload = payloads(watched)["oc.create copyfile" if command == "evaluate" else "oc.create"]
    bad = mutate(toy_ckpt, tmp_path / "bad.ckpt", "family.seed", payload)
    entry = {"sample": sample.main, "evaluate": evaluate.main, "translate": translate.main}
    argv = [f"ckpt={bad}", f"out={tmp_path / 'out.csv'}"]
    if command == "translate":  # a folder with an image: input= is checked first
        from PIL import Image

        (tmp_path / "in").mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / "in" / "x.png")
        argv += [f"input={tmp_path / 'in'}"]
    line = one_error_line(capsys, entry[command], argv)
    assert "family.seed holds" in line and "an interpolation" in line
    assert snapshot(watched) == before and not (tmp_path / "out.csv").exists()


def test_old_checkpoints_references_are_followed(toy_ckpt, tmp_path):
    """A checkpoint written before configs were stored resolved: its own ``${seed}`` and
    ``${oc.select:model.pack,1}`` are followed in plain Python, to the values resolved."""
    ckpt = torch.load(toy_ckpt, weights_only=True)
    state = ckpt["ganlab"]
    assert state["config"]["family"]["seed"] == "${seed}"  # unresolved: what resume compares
    assert trusted_config(state["config"], "old.ckpt") == state["resolved"]
    del state["resolved"]
    torch.save(ckpt, tmp_path / "old.ckpt")
    assert load_trained(tmp_path / "old.ckpt").config.family.seed == 0


def test_a_resume_refuses_a_payload(toy_ckpt, watched, tmp_path):
    before = snapshot(watched)
    bad = mutate(toy_ckpt, tmp_path / "bad.ckpt", "data.seed", payloads(watched)["oc.create"])
    with pytest.raises(UserError, match="data.seed holds .* an interpolation"):
        run_train(tmp_path / "run", "trainer=smoke", f"resume={bad}")
    assert snapshot(watched) == before and not (tmp_path / "run" / "metrics.csv").exists()


def test_a_pickle_payload_is_refused(tmp_path, watched):
    class Payload:
        def __reduce__(self):
            return (open, (str(watched / "victim.txt"), "w"))

    before = snapshot(watched)
    torch.save({"ganlab": Payload()}, tmp_path / "pickle.ckpt")
    with pytest.raises(UserError, match="is not a readable checkpoint"):
        load_trained(tmp_path / "pickle.ckpt")
    assert snapshot(watched) == before


def test_an_empty_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "empty.ckpt").write_bytes(b"")
    line = one_error_line(capsys, sample.main, [f"ckpt={tmp_path / 'empty.ckpt'}"])
    assert line.startswith(f"error: {tmp_path / 'empty.ckpt'} is empty (0 bytes)")


def test_a_ganlab_data_class_never_creates_the_path_a_checkpoint_names(toy_ckpt, tmp_path):
    """evaluate rebuilds the run's data for its real images: a checkpoint naming MNIST at
    another root made evaluate create that folder (torchvision's download)."""

    from omegaconf import OmegaConf

    from ganlab.arithmetic import domain_labeler

    root = tmp_path / "elsewhere" / "deep"
    mnist = {"_target_": "ganlab.data.images.MNIST", "root": str(root), "download": True,
             "image_size": 16, "batch_size": 4, "seed": 0}  # fmt: skip
    bad = mutate(toy_ckpt, tmp_path / "bad.ckpt", "data", mnist)
    state = torch.load(bad, weights_only=True)["ganlab"]
    config = OmegaConf.create(trusted_config(state["resolved"], "bad.ckpt"))
    with pytest.raises(UserError, match=r"MNIST not found in .*\(download=false\)"):
        evaluate._datamodule(config)
    with pytest.raises(UserError, match=r"MNIST not found in .*\(download=false\)"):
        domain_labeler(config)  # sample arithmetic=label:...: the run's classifier
    assert not (tmp_path / "elsewhere").exists()


RESOLVERS = ["oc.create", "oc.decode", "oc.env", "oc.select", "oc.dict.keys",
             "oc.dict.values", "oc.deprecated", "ganlab.mul", "sweep_group", "metric_direction",
             "hydra", "now", ""]  # fmt: skip


def leaves(node, where=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, f"{where}.{key}" if where else key)
    else:
        yield where


def hostile(victim):
    """Strings (and nodes) that would touch ``victim`` or read the machine, were they resolved
    or instantiated: resolver calls with such arguments, nested, amid text, in a list."""
    opener = f"{{_target_: builtins.open, _args_: ['{victim}', w]}}"
    argument = st.sampled_from([opener, f"'{opener}'", "HOME", "seed", "model", "1,2", ""])
    call = st.builds(lambda r, a: f"${{{r}:{a}}}" if r else f"${{{a}}}",
                     st.sampled_from(RESOLVERS), argument)  # fmt: skip
    nested = st.builds(lambda r, inner: f"${{{r}:{inner}}}", st.sampled_from(RESOLVERS), call)
    text = st.builds(lambda a, s, b: a + s + b, st.text(max_size=4), call | nested,
                     st.text(max_size=4))  # fmt: skip
    node = st.builds(lambda key, s: {"_target_": "ganlab.nets.MLP", key: s},
                     st.sampled_from(["_args_", "_call_", "_partial_", "x"]), text)  # fmt: skip
    return text | node | st.lists(text | node, min_size=1, max_size=2)


@pytest.fixture(scope="module")
def hypothesis_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("hypothesis")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_mutation_of_a_real_checkpoint_touches_anything(data, toy_ckpt, hypothesis_dir):
    """A real checkpoint with one config value replaced by a hostile string: ``sample``
    ends in one ``error:`` line, exit 2, and no file in the watched folder changed."""
    watched = hypothesis_dir / "watched"
    watched.mkdir(exist_ok=True)
    (watched / "victim.txt").write_text("keep me")
    before = snapshot(hypothesis_dir)
    state = torch.load(toy_ckpt, weights_only=True)["ganlab"]
    key = data.draw(st.sampled_from(sorted(leaves(state["resolved"]))))
    value = data.draw(hostile(watched / "victim.txt"))
    bad = mutate(toy_ckpt, hypothesis_dir / "bad.ckpt", key, value)
    before[bad] = bad.read_bytes()
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as exit_info:
        sample.main([f"ckpt={bad}", f"out={hypothesis_dir / 'out.csv'}"])
    lines = stderr.getvalue().strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    assert snapshot(hypothesis_dir) == before


def test_the_issues_payload_end_to_end(toy_ckpt, watched, tmp_path):
    """The reported attack, as the command line runs it (one subprocess: the in-process
    tests above cover the rest): ``sample`` truncated a file through an interpolation."""
    before = snapshot(watched)
    bad = mutate(toy_ckpt, tmp_path / "bad.ckpt", "family.seed", payloads(watched)["oc.create"])
    result = subprocess.run(
        [sys.executable, "-m", "ganlab.sample", f"ckpt={bad}", f"out={tmp_path / 'o.csv'}"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert_one_error_line(result, f"error: {bad}: family.seed holds")
    assert snapshot(watched) == before


def test_a_ganlab_name_that_does_not_exist_is_one_line(toy_ckpt, tmp_path, capsys):
    """Hydra printed three lines of its own first, then the line called the name "not one
    of ganlab's nets"."""
    bad = mutate(toy_ckpt, tmp_path / "bad.ckpt", "model.generator._target_", "ganlab.nets.Nope")
    line = one_error_line(capsys, sample.main, [f"ckpt={bad}", f"out={tmp_path / 'o.csv'}"])
    assert "'ganlab.nets.Nope' (at model.generator), which this ganlab does not have" in line


def test_references_cannot_expand_without_end():
    """References to lists of references (a "billion laughs"), and a reference cycle."""
    levels = "abcdef"
    latent = {x: [f"${{latent.{y}}}"] * 10 for x, y in zip(levels, levels[1:], strict=False)}
    with pytest.raises(UserError, match="expands the config past 100,000 values"):
        trusted_config({"latent": {**latent, "f": [1] * 10}}, "bomb.ckpt")
    with pytest.raises(UserError, match=r"latent.a holds '\$\{latent.b\}', an interpolation"):
        trusted_config({"latent": {"a": "${latent.b}", "b": "${latent.a}"}}, "cycle.ckpt")


def test_an_old_data_config_with_the_runs_length_is_rebuilt(toy_ckpt, tmp_path):
    """Checkpoints of older ganlab stored ``steps`` and ``batches_per_step`` in the data
    config; the data modules no longer take them, and the commands drop them quietly."""

    from omegaconf import OmegaConf

    from ganlab.checkpoints import rebuild_data

    digits = {"_target_": "ganlab.data.images.Digits", "image_size": 16, "batch_size": 4,
              "seed": 0, "steps": 1000, "batches_per_step": 5}  # fmt: skip
    old = mutate(toy_ckpt, tmp_path / "old.ckpt", "data", digits)
    state = torch.load(old, weights_only=True)["ganlab"]
    config = OmegaConf.create(trusted_config(state["resolved"], "old.ckpt"))
    assert config.data.steps == 1000  # still stored, as an old checkpoint has it
    data = evaluate._datamodule(config)
    assert data.steps is None and data.batch_size == 4  # the run's length is not the data's
    x, y = data.real_images("test", 3)
    assert x.shape == (3, 1, 16, 16) and len(y) == 3
    assert rebuild_data(config).spec == data.spec
