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
