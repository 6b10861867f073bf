"""benchmarks/photo_accuracy.py in smoke mode: it runs, prints the comparison and writes its JSON."""
import importlib.util
import json
from pathlib import Path

import pytest

from conftest import have_real_data

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "photo_accuracy.py"


def test_photo_accuracy_benchmark_smoke(tmp_path, capsys):
    if not have_real_data():
        pytest.skip("real MNIST not found at $MNISTLAB_DATA")
    spec = importlib.util.spec_from_file_location("photo_accuracy", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "photo_accuracy.json"
    assert module.main(["--smoke", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "MNIST's steps only" in printed and "read exactly" in printed
    result = json.loads(out.read_text())
    assert result["smoke"] and result["photos"]["n"] == 12 and result["numbers"]["n"] == 4
    assert result["clean_test_accuracy"] > 0.99
    # a broken photo path reads about a tenth of them (chance); the old way reads few of these photos
    assert result["photos"]["accuracy_photo_preprocessing"] >= 0.75
    assert result["photos"]["accuracy_photo_preprocessing"] > result["photos"]["accuracy_mnist_steps_only"]
    assert result["seconds_per_photo"]["ratio"] > 0
