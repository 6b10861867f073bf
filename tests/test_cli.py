import subprocess
import sys

import pytest
from PIL import Image, ImageDraw

import mnistlab as ml
from mnistlab.cli import build_parser, main
from conftest import requires_data


def test_data_command(capsys, synthetic_root):
    assert main(["data"]) in (0, 1)
    out = capsys.readouterr().out
    assert "data root" in out and "mnist:" in out
    assert main(["data", "--dataset", "mnist", "--root", str(synthetic_root)]) == 1  # wrong record counts
    assert "BAD" in capsys.readouterr().out


@requires_data
def test_data_command_real(capsys):
    assert main(["data", "--dataset", "mnist"]) == 0
    assert "4/4 files sound" in capsys.readouterr().out


def test_models_command(capsys):
    assert main(["models"]) == 0
    assert "lenet5" in capsys.readouterr().out


@requires_data
def test_train_evaluate_predict_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--model", "fast", "--num-epochs", "2", "--batch-size", "32", "--learning-rate", "0.05",
               "--limit", "2000", "--test-limit", "500", "--out", str(out), "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "test accuracy" in text and (out / "model.pt").is_file() and (out / "history.csv").is_file()
    ckpt = ml.load_checkpoint(out / "model.pt")
    assert ckpt.metrics["test_acc"] > 0.5 and "--num-epochs" in ckpt.extra["command"]
    assert main(["evaluate", str(out / "model.pt"), "--limit", "500"]) == 0
    assert "accuracy" in capsys.readouterr().out
    # a drawn one, black on white, any size
    img = Image.new("RGB", (90, 160), "white")
    ImageDraw.Draw(img).line([(45, 15), (45, 145)], fill="black", width=14)
    png = tmp_path / "one.png"
    img.save(png)
    assert main(["predict", str(out / "model.pt"), str(png)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    path, cls, prob = line.split("\t")[:3]
    assert path == str(png) and cls in "0123456789" and 0 < float(prob) <= 1


def test_clear_errors(tmp_path, capsys, monkeypatch):
    assert main(["evaluate", str(tmp_path / "nope.pt")]) == 2
    assert "No checkpoint" in capsys.readouterr().err
    monkeypatch.setenv("MNISTLAB_DATA", str(tmp_path))
    assert main(["train", "--limit", "10", "--out", str(tmp_path / "r")]) == 2
    assert "MNISTLAB_DATA" in capsys.readouterr().err


def test_console_script_runs():
    res = subprocess.run([sys.executable, "-m", "mnistlab.cli", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "train" in res.stdout
    with pytest.raises(SystemExit):
        main(["train", "--epochs", "x"])


def test_parser_accepts_the_documented_spellings():
    args = build_parser().parse_args(["train", "--model", "fast", "--num-epochs", "3", "--batch-size", "64",
                                      "--learning-rate", "0.1", "--scheduler", "none", "--out", "runs/x"])
    assert (args.model, args.epochs, args.batch_size, args.lr, args.scheduler) == ("fast", 3, 64, 0.1, None)
    assert build_parser().parse_args(["train", "--epochs", "2"]).epochs == 2
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate"])  # the checkpoint is required


def test_an_explicit_none_overrides_the_recipe():
    from mnistlab.cli import _train_config

    args = build_parser().parse_args(["train", "--recipe", "fast", "--scheduler", "none", "--augment", "none"])
    cfg = _train_config(args)
    assert cfg.scheduler is None and cfg.augment is None
    assert _train_config(build_parser().parse_args(["train", "--recipe", "fast"])).scheduler == "onecycle"


def test_usage_errors_are_one_line(capsys):
    for argv in (["train", "--epochs", "x"], ["frobnicate"], ["evaluate"], ["train", "--nope"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and "--help" in err


def test_val_split_seed_early_stopping_and_name_flags():
    from mnistlab.cli import _train_config

    args = build_parser().parse_args(["train", "--val", "0.1", "--split-seed", "3", "--name", "mine",
                                      "--early-stopping", '{"patience": 2}'])
    cfg = _train_config(args)
    assert (cfg.val, cfg.split_seed, cfg.name, cfg.early_stopping) == (0.1, 3, "mine", {"patience": 2})
    assert _train_config(build_parser().parse_args(["train", "--val", "500"])).val == 500
    assert _train_config(build_parser().parse_args(["train", "--val", "none"])).val is None


def test_train_with_a_held_out_fraction(tmp_path, capsys, synthetic_root, monkeypatch):
    monkeypatch.setenv("MNISTLAB_DATA", str(synthetic_root))
    rc = main(["train", "--model", "logreg", "--val", "0.25", "--batch-size", "15", "--scheduler", "none",
               "--epochs", "2", "--out", str(tmp_path / "r"), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert "on 45 mnist images" in capsys.readouterr().out  # 60 minus the 15 held out
    assert ml.load_checkpoint(tmp_path / "r" / "model.pt").history["val_acc"].notna().all()


def test_figures_passes_extra_notebook_parameters(monkeypatch):
    import mnistlab.runner as runner

    seen, real = {}, runner.run_notebooks

    def fake_run_notebooks(**kw):
        seen.update(kw)
        return {"notebooks": {}}

    monkeypatch.setattr(runner, "run_notebooks", fake_run_notebooks)
    assert main(["figures", "--only", "03", "-p", "RESULTS=saved", "-p", "WORKERS=2"]) == 0
    assert seen["extra"] == {"RESULTS": "saved", "WORKERS": 2}
    with pytest.raises(ValueError, match="--quick"):
        real(only="01", extra={"QUICK": True})


# ---------------------------------------------------------------------------- help and messages

def _subparsers():
    import argparse

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_command_and_flag_has_help():
    for name, sub in _subparsers().items():
        assert sub.description, f"`mnistlab {name} --help` has no description"
        bare = [a.option_strings[0] if a.option_strings else a.dest for a in sub._actions if not a.help]
        assert not bare, f"`mnistlab {name} --help`: no help for {bare}"
    figures = _subparsers()["figures"].format_help()
    for word in ("01_data_statistics", "manifest.json", "QUICK", "--only"):
        assert word in figures, f"{word!r} not in `mnistlab figures --help`"


def test_predict_and_read_help_say_what_they_print():
    predict = " ".join(_subparsers()["predict"].format_help().split())
    for words in ("tab-separated", "digit", "probability", "top 3", "warning", "exit code", "run folder"):
        assert words in predict, f"{words!r} not in `mnistlab predict --help`"
    read = " ".join(_subparsers()["read"].format_help().split())
    for words in ("tab-separated", "number", "each digit", "warning", "exit code"):
        assert words in read, f"{words!r} not in `mnistlab read --help`"


def test_the_train_help_matches_the_config_and_recipes():
    """The train flags' help is written out in cli.py (so --help needs no torch); it must say what TrainConfig says."""
    import json as _json

    from mnistlab.cli import _CONFIG_FLAGS, _RECIPE_NAMES, _TRAIN_FIELDS
    from mnistlab.training.config import TrainConfig
    from mnistlab.training.recipes import RECIPES

    fields, fast = TrainConfig.fields_help(), RECIPES["fast"].to_dict()
    expected = {name: (fields[name][1], _json.dumps(fast[name])) for name in _CONFIG_FLAGS}
    assert _TRAIN_FIELDS == expected, f"update mnistlab/cli.py: _TRAIN_FIELDS = {expected!r}"
    assert _RECIPE_NAMES == tuple(sorted(RECIPES)), f"update mnistlab/cli.py: _RECIPE_NAMES = {tuple(sorted(RECIPES))}"
    assert set(_CONFIG_FLAGS) == set(fields) - {"description"}
    from mnistlab.cli import _FILE_DATASETS
    from mnistlab.data.datasets import FILE_DATASETS

    assert _FILE_DATASETS == tuple(FILE_DATASETS), f"update mnistlab/cli.py: _FILE_DATASETS = {tuple(FILE_DATASETS)}"


def test_optional_datasets_that_are_absent_are_one_line(capsys, synthetic_root):
    assert main(["data", "--root", str(synthetic_root)]) == 1  # the synthetic MNIST has too few records
    out = capsys.readouterr().out
    assert "kmnist: not present (optional)" in out and "fashion-mnist: not present (optional)" in out
    assert "FashionMNIST" not in out and "KMNIST" not in out  # no per-file lines for them
    assert out.count("BAD") == 4  # MNIST's four files, all with too few records


def test_plurals(capsys, synthetic_root, monkeypatch, tmp_path):
    from mnistlab._util import plural

    assert (plural(1, "epoch"), plural(2, "epoch"), plural(0, "file"), plural(1, "class", "classes")) == \
        ("1 epoch", "2 epochs", "0 files", "1 class")
    monkeypatch.setenv("MNISTLAB_DATA", str(synthetic_root))
    assert main(["train", "--model", "logreg", "--scheduler", "none", "--epochs", "1", "--out",
                 str(tmp_path / "r"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "for 1 epoch on" in out and "1 epochs" not in out


# ------------------------------------------------------------------------------------ figures

@pytest.fixture
def fake_runner(monkeypatch):
    """run_notebooks replaced by a stub whose manifest also holds an entry from an earlier run."""
    import mnistlab.runner as runner

    calls = []

    def fake_run_notebooks(**kw):
        calls.append(kw)
        entry = {"figures": ["a.png"], "seconds": 3.0}
        return {"notebooks": {"01_data_statistics": entry, "02_dimensionality_reduction": {**entry, "figures": []}}}

    monkeypatch.setattr(runner, "run_notebooks", fake_run_notebooks)
    return calls


@pytest.mark.parametrize("only", ["", " ", ",", " , "])
def test_figures_refuses_an_empty_only(only, capsys, fake_runner):
    assert main(["figures", "--only", only]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--only" in err and "01_data_statistics" in err
    assert not fake_runner


def test_figures_summarises_only_the_notebooks_it_ran(capsys, fake_runner):
    assert main(["figures", "--only", "01"]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines() == ["01_data_statistics: 1 file in 3 s"]


def test_figures_out_a_file_is_one_line(tmp_path, capsys, fake_runner):
    target = tmp_path / "figures.txt"
    target.write_text("keep")
    for out in (target, tmp_path / "figures.txt" / "sub", ""):
        assert main(["figures", "--only", "01", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "--out" in err and "Errno" not in err
    assert target.read_text() == "keep" and not fake_runner


# ------------------------------------------------------------------------------ train --out

@pytest.mark.parametrize("out", ["", "  "])
def test_train_refuses_an_empty_out(out, capsys, tmp_path, monkeypatch, synthetic_root):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("MNISTLAB_DATA", str(synthetic_root))
    assert main(["train", "--model", "logreg", "--scheduler", "none", "--out", out, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--out" in err and "empty" in err
    assert list(cwd.iterdir()) == []


# --------------------------------------------------------------------- predict with a run folder

def _three_model(folder):
    """A run folder whose model.pt answers 3 to everything (so a prediction shows which model was used)."""
    import torch

    model = ml.create_model("logreg", seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        list(model.parameters())[-1][3] = 10.0
    ml.save_checkpoint(folder / "model.pt", model)
    return folder


def _drawn(path):
    img = Image.new("L", (90, 160), 255)
    ImageDraw.Draw(img).line([(20, 20), (70, 20), (40, 150)], fill=0, width=12)
    img.save(path)
    return path


def test_a_run_folder_stands_for_its_model(tmp_path, capsys, monkeypatch, synthetic_root):
    run = _three_model(tmp_path / "run")
    png = _drawn(tmp_path / "seven.png")
    for argv in (["predict", str(run), str(png)], ["predict", str(png), str(run)],
                 ["predict", "--checkpoint", str(run), str(png)], ["read", str(run), str(png)]):
        assert main(argv) == 0, capsys.readouterr().err
        out = capsys.readouterr().out.strip().splitlines()
        assert len(out) == 1 and out[0].split("\t")[:2] == [str(png), "3"], (argv, out)
    monkeypatch.setenv("MNISTLAB_DATA", str(synthetic_root))  # test labels 0..9 in turn: one 3 in ten
    assert main(["evaluate", str(run), "--limit", "10"]) == 0, capsys.readouterr().err
    assert "accuracy 0.1000" in capsys.readouterr().out
    # a folder without model.pt is still just a bad image
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(tmp_path / "empty"), str(png)]) == 1
    assert "is a folder" in capsys.readouterr().err
