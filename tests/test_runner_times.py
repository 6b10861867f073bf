"""Where a notebook run spends its time: per-cell seconds in the manifest, the table and the opening line."""
import json

from mnistlab import runner


def _executed(tmp_path, durations):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "# title"}]
    for i, d in enumerate(durations):
        meta = {"papermill": {"duration": d}} if d is not None else {}
        cells.append({"cell_type": "code", "metadata": meta, "source": [f"# comment\n", f"step_{i}()\n"]})
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_cell_seconds_reads_papermill_durations_and_skips_cells_that_did_not_run(tmp_path):
    cells = runner.cell_seconds(_executed(tmp_path, [0.5, 12.25, None]))
    assert cells == [{"cell": 1, "seconds": 0.5, "code": "step_0()"}, {"cell": 2, "seconds": 12.25, "code": "step_1()"}]


def _manifest(**entries):
    return {"notebooks": {name: {"seconds": s, "parameters": {"QUICK": q}, "commit": "abcdef0123456", "finished": f,
                                 "machine": {"cpu": "Test CPU", "cores": 2, "gpu": None, "load_average": [1.5, 1, 1]},
                                 "cache": {"runs_before": 0 if s > 60 else 7, "runs_after": 9},
                                 "cells": [{"cell": 3, "seconds": s * 0.7, "code": "train()"},
                                           {"cell": 5, "seconds": s * 0.2, "code": "plot()"}]}
                          for name, (s, q, f) in entries.items()}}


def test_run_times_lists_the_slowest_cells_first():
    table = runner.run_times(_manifest(**{"01_a": (100.0, False, "2026-01-01T00:00:00"), "02_b": (10.0, True, "x")}),
                             top=1)
    assert list(table.index) == ["01_a", "02_b"]
    assert table.loc["01_a", "seconds"] == 100.0 and table.loc["01_a", "commit"] == "abcdef012"
    assert table.loc["01_a", "slowest"] == "cell 3 (70 s): train()"
    assert table.loc["01_a", "cached_runs_before"] == 0 and table.loc["02_b", "cached_runs_before"] == 7
    assert bool(table.loc["02_b", "quick"]) and table.loc["01_a", "cores"] == 2


def test_describe_run_time_reads_both_manifests_and_says_what_is_missing(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "manifest.json").write_text(json.dumps(_manifest(**{"03_c": (1800.0, False, "2026-02-03T10:00:00")})))
    line = runner.describe_run_time("03_c", root=tmp_path)
    assert "full run: 30 min on 2 cores (2026-02-03, load average 1.5 at the end)" in line
    assert "QUICK run: not on record here (make figures-quick)" in line
    quick = tmp_path / "build" / "figures-quick"
    quick.mkdir(parents=True)
    (quick / "manifest.json").write_text(json.dumps(_manifest(**{"03_c": (42.0, True, "2026-02-03T11:00:00")})))
    assert "QUICK run: 42 s on 2 cores" in runner.describe_run_time("03_c", root=tmp_path)
    assert "full run: not on record here (make figures)" in runner.describe_run_time("04_d", root=tmp_path)


def test_machine_names_the_cores():
    m = runner.machine()
    assert m["cores"] >= 1 and isinstance(m["cpu"], str) and m["cpu"]


def test_run_times_markdown_has_a_row_per_notebook_and_the_total():
    table = runner.run_times_markdown(_manifest(**{"01_a": (90.0, False, "2026-01-01T00:00:00"),
                                                   "02_b": (1800.0, False, "2026-01-02T00:00:00")}),
                                      quick_manifest=_manifest(**{"01_a": (12.0, True, "2026-01-03T00:00:00")}))
    rows = table.splitlines()
    assert len(rows) == 2 + 2 + 1
    assert rows[2].startswith("| `01_a` | 90 s | empty: everything trained | 2026-01-01, `abcdef012` | "
                              "2 cores, Test CPU (load 1.5) | cell 3 (63 s)")
    assert rows[2].endswith("| 12 s |") and rows[3].endswith("| not on record |")
    assert rows[-1].startswith("| all | 31.5 min |")


def test_write_run_times_replaces_only_what_stands_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{runner.RUN_TIMES_START}\nold table\n{runner.RUN_TIMES_END}\nafter\n")
    assert runner.write_run_times(readme, _manifest(**{"01_a": (90.0, False, "2026-01-01")}), quick_manifest={})
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{runner.RUN_TIMES_END}\nafter\n")
    assert "old table" not in text and "| `01_a` | 90 s |" in text
    readme.write_text("no markers here\n")
    assert not runner.write_run_times(readme, _manifest(**{"01_a": (90.0, False, "x")}))
    assert readme.read_text() == "no markers here\n"


def test_write_run_times_updates_the_inline_total(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"takes <!-- run-total:start -->old<!-- run-total:end --> in all\n"
                      f"{runner.RUN_TIMES_START}\n{runner.RUN_TIMES_END}\n")
    runner.write_run_times(readme, _manifest(**{"01_a": (1800.0, False, "x"), "02_b": (1200.0, False, "y")}),
                           quick_manifest={})
    assert "takes <!-- run-total:start -->50 minutes<!-- run-total:end --> in all" in readme.read_text()
    runner.write_run_times(readme, _manifest(**{"01_a": (7200.0, False, "x"), "02_b": (5760.0, False, "y")}),
                           quick_manifest={})
    assert "<!-- run-total:start -->3.6 hours<!-- run-total:end -->" in readme.read_text()


def test_inline_range_and_quick_total_come_from_the_manifests(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("from <!-- run-range:start -->?<!-- run-range:end --> per notebook; QUICK "
                      f"<!-- quick-total:start -->?<!-- quick-total:end -->\n{runner.RUN_TIMES_START}\n{runner.RUN_TIMES_END}\n")
    full = _manifest(**{"01_a": (25.0, False, "x"), "02_b": (1260.0, False, "y"), "03_c": (600.0, False, "z")})
    quick = _manifest(**{"01_a": (8.0, True, "x"), "02_b": (52.0, True, "y")})
    assert runner.run_time_words(full, quick) == {"run-total": "31 minutes", "run-range": "25 seconds to 21 minutes",
                                                  "quick-total": "60 seconds"}
    runner.write_run_times(readme, full, quick_manifest=quick)
    text = readme.read_text()
    assert "from <!-- run-range:start -->25 seconds to 21 minutes<!-- run-range:end --> per notebook" in text
    assert "QUICK <!-- quick-total:start -->60 seconds<!-- quick-total:end -->" in text
    runner.write_run_times(readme, full, quick_manifest={})
    assert "<!-- quick-total:start -->not on record<!-- quick-total:end -->" in readme.read_text()


def test_a_warm_cache_is_shown_beside_the_time():
    table = runner.run_times_markdown(_manifest(**{"01_a": (30.0, False, "2026-01-01")}), quick_manifest={})
    assert "| 30 s | 7 results already there: cached runs not retrained |" in table


def _gallery(tmp_path, accs=(0.9952, 0.9951, 0.9945), ensemble=0.9955):
    import pandas as pd

    nb3 = tmp_path / "03_model_search"
    nb8 = tmp_path / "08_transfer_learning"
    nb3.mkdir()
    nb8.mkdir()
    (nb3 / "numbers.json").write_text(json.dumps({"strong_epochs": 3, "protocol": "short", "workers": 2}))
    pd.DataFrame({"seed": range(len(accs)), "test_acc": accs, "train_seconds": [110.0, 112.0, 113.0][:len(accs)]}
                 ).to_csv(nb3 / "strongest_recipe.csv")
    pd.DataFrame([{"ensemble_acc": ensemble, "ensemble_errors": round((1 - ensemble) * 10000), "n": 10000}]
                 ).to_csv(nb3 / "ensemble.csv")
    rows = []
    for labels, diffs in (("10", (0.02, 0.03)), ("all", (-0.01, 0.001))):
        for strategy, d in zip(("frozen", "fine-tune"), diffs):
            rows.append({"task": "digits 0-4 → 5-9", "labels": labels, "strategy": strategy, "mean_strategy": 0.8 + d,
                         "mean_baseline": 0.8, "diff": d, "ci_low": d - 0.01, "ci_high": d + 0.01,
                         "verdict": "helps" if d - 0.01 > 0 else "within noise"})
    pd.DataFrame(rows).to_csv(nb8 / "gains.csv")
    nb7 = tmp_path / "07_gan"
    nb7.mkdir()
    shares = [0.139, 0.0859, 0.0888, 0.0722, 0.0653, 0.0954, 0.086, 0.1369, 0.0989, 0.1316]
    (nb7 / "numbers.json").write_text(json.dumps({
        "shares_dcgan": shares, "max_share_deviation": 0.039, "kl_uniform_dcgan": 0.0314, "cond_accuracy": 0.9746,
        "floor": 0.01029, "frechet_cdcgan": 0.0787, "ratio_cdcgan": 7.65, "frechet_dcgan": 1.533, "ratio_dcgan": 149.0,
        "blurred": 0.765, "train_seconds": 584.7, "train_seconds_dcgan": 277.9, "train_seconds_cdcgan": 306.7,
        "precision_dcgan": 0.663, "recall_dcgan": 0.831, "precision_cdcgan": 0.809, "recall_cdcgan": 0.799,
        "median_nn_dcgan": 5.69, "median_nn_cdcgan": 4.80, "median_nn_test": 4.31}))
    return tmp_path


def ml_pretrained_info():
    from mnistlab.training.pretrained import pretrained_info

    return pretrained_info("mnist")


def test_results_tables_come_from_the_gallery_files(tmp_path):
    parts = runner.results_markdown(_gallery(tmp_path))
    best = parts["results-best"]
    assert "| 3 seeds, mean ± std | **99.49% ± 0.04%** (99.52%, 99.51%, 99.45%)" in best
    assert "**99.55%** (45 errors in 10,000)" in best and "112 s (110-113 s" in best
    shipped = ml_pretrained_info()
    assert f"| {100 * shipped['test_acc']:.2f}% | {shipped['train_seconds']:,.0f} s |" in best  # the shipped model's record
    assert parts["best-protocol"].startswith("3 seeds × 3 epochs") and "short protocol" in parts["best-protocol"]
    # the targets: 99.6% mean, 99.5% on seeds 0-2, 99.7% ensemble: none met by these numbers
    assert parts["best-mean-status"] == parts["best-first3-status"] == parts["best-ensemble-status"] != "met"
    # the best strategy per label count: fine-tune at 10 labels (+3.0), fine-tune at all (+0.1, within noise)
    transfer = parts["results-transfer"].splitlines()
    assert len(transfer) == 3 and transfer[2].startswith("| digits 0-4 -> 5-9 | 10 per class: fine-tune 83.0%")
    assert "+3.0 points (+2.0 to +4.0), helps" in transfer[2]
    assert "all labels: fine-tune 80.1% against scratch 80.0%, +0.1 points (-0.9 to +1.1), within noise" in transfer[2]
    gan = parts["results-gan"]
    assert "| 97.46% | met; stretch goal not met |" in gan
    assert "6.5% (class 4) to 13.9% (class 0)" in gan and "not met (largest gap 3.9 points)" in gan
    assert "conditional 0.079 (7.7x), unconditional 1.53 (149x)" in gan and "| 585 s = 9.7 min (278 s + 307 s) | met |" in gan
    assert "so neither GAN copies training digits." in gan
    numbers = json.loads((tmp_path / "07_gan" / "numbers.json").read_text())   # trained side by side: the longer run
    (tmp_path / "07_gan" / "numbers.json").write_text(json.dumps(numbers | {"workers": 2, "train_seconds": 306.7}))
    side = runner.results_markdown(tmp_path)["results-gan"]
    assert "| 307 s = 5.1 min (side by side, one thread each: 278 s and 307 s) | met |" in side
    (tmp_path / "07_gan" / "numbers.json").write_text(json.dumps(numbers))
    assert parts["gan-summary"] == "97.46%; 6.5% to 13.9%; 7.7x / 149x; 9.7 min; not measured"
    assert parts["gan-summary-status"] == "met: 95%, 10 minutes; not met: 98%, class shares, Frechet distance; open: GPU"
    other = tmp_path / "b"
    other.mkdir()
    met = runner.results_markdown(_gallery(other, accs=(0.9965, 0.9962, 0.9960), ensemble=0.9971))
    assert met["best-mean-status"] == met["best-first3-status"] == met["best-ensemble-status"] == "met"


def test_write_results_fills_blocks_and_inline_markers_and_leaves_the_rest(tmp_path):
    readme = tmp_path / "README.md"
    text = ("intro\n<!-- results-best:start -->\nold\n<!-- results-best:end -->\nmid\n"
            "<!-- results-transfer:start -->\n<!-- results-transfer:end -->\n"
            "<!-- results-gan:start -->\n<!-- results-gan:end -->\n"
            "| target | <!-- best-mean:start -->?<!-- best-mean:end --> | <!-- best-mean-status:start -->?"
            "<!-- best-mean-status:end --> |\nend\n")
    readme.write_text(text)
    gallery = tmp_path / "g"
    gallery.mkdir()
    assert runner.write_results(readme, _gallery(gallery))
    new = readme.read_text()
    assert "old" not in new and new.startswith("intro\n<!-- results-best:start -->\n| | test accuracy")
    assert "<!-- best-mean:start -->99.49% ± 0.04% (3 seeds, 3 epochs)<!-- best-mean:end -->" in new
    assert "mid\n" in new and new.endswith("end\n") and "| digits 0-4 -> 5-9 |" in new
    readme.write_text("no markers here\n")
    assert not runner.write_results(readme, gallery) and readme.read_text() == "no markers here\n"


def test_a_quick_run_side_by_side_reports_its_wall_time_and_the_sum():
    quick = _manifest(**{"01_a": (30.0, True, "x"), "02_b": (50.0, True, "y")})
    full = _manifest(**{"01_a": (25.0, False, "x"), "02_b": (1260.0, False, "y")})
    assert runner.run_time_words(full, quick)["quick-total"] == "80 seconds"        # no record of the run: the sum
    quick["last_run"] = {"notebooks": ["01_a", "02_b"], "jobs": 2, "quick": True, "seconds": 52.0}
    assert runner.run_time_words(full, quick)["quick-total"] == "52 seconds, 2 notebooks at a time,"
    assert runner.run_times_markdown(full, quick).splitlines()[-1].endswith(
        "| 52 s (2 notebooks at a time; 80 s one after another) |")
    quick["last_run"]["notebooks"] = ["02_b"]      # the last run did not cover every notebook: the sum again
    assert runner.run_time_words(full, quick)["quick-total"] == "80 seconds"
