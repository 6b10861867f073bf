"""mnistlab.studies.claims: the verdict rules, the table, and every quote checked against its source's file.

The source documents' text lives outside the repository, in the shared ``seeds/`` folder beside it
(``$MNISTLAB_SEEDS`` overrides); the tests that read it skip when it is absent (CI has it).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mnistlab.studies import claims as C

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def seeds_folder() -> Path:
    """Where the five source files are: ``$MNISTLAB_SEEDS``, else ``../shared/seeds`` beside the checkout."""
    return Path(os.environ.get("MNISTLAB_SEEDS", ROOT.parent / "shared" / "seeds"))


requires_seeds = pytest.mark.skipif(not all((seeds_folder() / f).is_file() for f in C.SOURCES),
                                    reason="the source documents (shared/seeds) are not here")


def assert_quotes_exact(table: pd.DataFrame) -> None:
    """Every row cites one of the five files, and its quoted claim and figure occur in that file."""
    assert table["source"].isin(list(C.SOURCES)).all(), set(table["source"]) - set(C.SOURCES)
    assert (table["document"] == table["source"].map(C.SOURCES)).all()
    if all((seeds_folder() / f).is_file() for f in C.SOURCES):
        missing = C.missing_quotes(table, seeds_folder())
        assert missing.empty, missing.to_string()


def _notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


# ---------------------------------------------------------------- the verdict rules

def test_value_rule_published_inside_above_or_below_our_interval():
    seeds = [0.980, 0.982, 0.978, 0.981, 0.979]                      # mean 0.98, 95% CI about +-0.002
    q = lambda v, tol=0.0: C.Quote(C.LENET, "Vanilla 97.25%", "97.25%", v, tolerance=tol)  # noqa: E731
    inside = C.value(q(0.9805), seeds, subject="vanilla")
    assert inside["verdict"] == C.REPRODUCED and inside["ci_low"] < 0.9805 < inside["ci_high"] and inside["n"] == 5
    assert C.value(q(0.9725), seeds, subject="vanilla")["verdict"] == C.HIGHER      # published below our interval
    assert C.value(q(0.992), seeds, subject="vanilla")["verdict"] == C.LOWER        # published above it
    # the source's own slack ("around 10%") widens the published value
    assert C.value(q(0.9725, tol=0.01), seeds, subject="vanilla")["verdict"] == C.REPRODUCED
    # a range: any overlap reproduces it; a single measurement is its own interval
    rng = C.Quote(C.MLM, "error rate", "between 0.4 %and 0.2%", (0.004, 0.002))
    assert C.value(rng, 0.0038, subject="ours")["verdict"] == C.REPRODUCED
    assert C.value(rng, 0.0050, subject="ours")["verdict"] == C.HIGHER
    assert C.value(rng, 0.0010, subject="ours")["verdict"] == C.LOWER
    row = C.value("lenet.vanilla", seeds, subject="vanilla LeNet-5")
    assert row["measured"].startswith("vanilla LeNet-5: 98.00% (") and "5 runs" in row["measured"]
    assert row["published"] == "97.25%" and row["published_low"] == row["published_high"] == pytest.approx(0.9725)
    assert "interval" in row["rule"]
    with pytest.raises(ValueError, match="no published value"):
        C.value("medium.rmsprop", seeds, subject="x")
    with pytest.raises(ValueError, match="no finite"):
        C.value("lenet.vanilla", [np.nan], subject="x")


def test_effect_rule_follows_the_paired_verdict():
    cmp = lambda verdict, diff=0.01: {"diff": diff, "ci_low": diff - 0.005, "ci_high": diff + 0.005, "n": 3,  # noqa: E731
                                      "verdict": verdict}
    helps = ("helps",)
    assert C.effect("medium.extra_conv", cmp("helps"), subject="b - a", expected=helps)["verdict"] == C.REPRODUCED
    assert C.effect("medium.extra_conv", cmp("within noise"), subject="b - a")["verdict"] == C.NOT_REPRODUCED
    assert C.effect("medium.extra_conv", cmp("hurts", -0.01), subject="b - a")["verdict"] == C.CONTRADICTED
    assert C.effect("medium.extra_conv", cmp("too few seeds"), subject="b - a")["verdict"] == C.NOT_REPRODUCED
    # "they either hurt or didn't improve accuracy"
    no_gain = ("hurts", "within noise")
    for got, want in (("hurts", C.REPRODUCED), ("within noise", C.REPRODUCED), ("helps", C.CONTRADICTED)):
        assert C.effect("lenet.failed.batchnorm", cmp(got), subject="b - a", expected=no_gain)["verdict"] == want
    row = C.effect("medium.extra_conv", cmp("helps"), subject="conv2 + fc2 - conv + fc")
    assert "+1.00 points" in row["measured"] and "3 seeds" in row["measured"] and row["measured_value"] == 0.01


def test_check_rule_and_not_applicable():
    assert C.check("medium.least_ink", "least: 1", 1 == 1, rule="least ink is 1")["verdict"] == C.REPRODUCED
    assert C.check("medium.hardest", "8, 5", False, partly=True, rule="r")["verdict"] == C.PARTLY
    assert C.check("medium.hardest", "2, 5", np.bool_(False), rule="r")["verdict"] == C.NOT_REPRODUCED
    na = C.check("medium.hardest", "shirt, coat", True, rule="r", applicable=False)
    assert na["verdict"] == C.NOT_APPLICABLE and na["rule"].startswith(C.NOT_MNIST)
    na = C.value("lenet.vanilla", [0.9], subject="x", applicable=False, reason="a subset")
    assert na["verdict"] == C.NOT_APPLICABLE and na["rule"].startswith("a subset") and na["measured_value"] == 0.9


def test_claims_table_columns_and_validation():
    rows = [C.value("lenet.vanilla", [0.97, 0.98], subject="v"), C.check("medium.least_ink", "1", True, rule="r")]
    t = C.claims_table(rows)
    assert list(t.columns) == C.COLUMNS and C.SHOWN == ["source", "document", "claim", "published", "measured",
                                                         "verdict", "rule"]
    assert t["source"].tolist() == [C.LENET, C.MEDIUM] and t["document"].iloc[1] == C.SOURCES[C.MEDIUM]
    assert np.isnan(t["measured_value"].iloc[1]) and t["n"].tolist() == [2, 0]
    assert C.claims_table([]).columns.tolist() == C.COLUMNS
    with pytest.raises(ValueError, match="unknown source"):
        C.claims_table([{**rows[0], "source": "a blog"}])
    with pytest.raises(ValueError, match="verdict"):
        C.claims_table([{**rows[0], "verdict": "holds"}])
    with pytest.raises(ValueError, match="lacks"):
        C.claims_table([{"source": C.LENET, "claim": "x"}])
    with pytest.raises(ValueError, match="unknown source"):
        C.Quote("my notes", "x", "1%")
    with pytest.raises(KeyError, match="no quote"):
        C.quote("lenet.nothing")


def test_fragments_split_at_the_ellipsis():
    assert C.fragments("99.48%" + C.SEP + "99.3%") == ["99.48%", "99.3%"]
    assert C.fragments("a  b\nc") == ["a b c"]


def test_missing_quotes_finds_what_the_file_does_not_say(tmp_path):
    (tmp_path / C.LENET).write_text("Vanilla 97.25%\nBatch 64 98.36%\n", encoding="utf-8")
    good = C.claims_table([C.value("lenet.vanilla", [0.97], subject="v")])
    assert C.missing_quotes(good, tmp_path).empty
    bad = good.assign(published="97.3%")
    assert C.missing_quotes(bad, tmp_path)[["field", "fragment"]].values.tolist() == [["published", "97.3%"]]
    other = C.claims_table([C.check("medium.least_ink", "1", True, rule="r")])   # its file is not in tmp_path
    assert C.missing_quotes(other, tmp_path)["field"].tolist() == ["source"]


# ---------------------------------------------------------------- the quotes, against the files

@requires_seeds
def test_every_quote_occurs_in_its_source_file():
    assert C.missing_quotes(list(C.QUOTES.values()), seeds_folder()).empty, \
        C.missing_quotes(list(C.QUOTES.values()), seeds_folder()).to_string()


@requires_seeds
def test_published_numbers_match_the_quoted_figures():
    # a figure written as "97.25%" is the fraction 0.9725 (ranges: both ends appear in the text)
    for key, q in C.QUOTES.items():
        if q.value is None or key in ("wandb.stop_cost", "medium.tsne_minutes", "medium.pca_clusters",
                                       "wandb.stop_epoch"):
            continue
        numbers = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", q.published)]
        low, high = q.bounds
        expected = {round(low * 100, 6), round(high * 100, 6)}
        assert expected <= {round(x, 6) for x in numbers}, (key, q.published, q.value)
    assert C.QUOTES["wandb.stop_cost"].value == pytest.approx(0.9948 - 0.993)
    assert C.QUOTES["medium.tsne_minutes"].bounds == (600.0, 900.0)


def test_the_progression_quotes_are_the_readme_results_table():
    figures = [C.QUOTES[f"lenet.{k}"].published for k in ("vanilla", "normalization", "batch64", "batch32", "lr",
                                                           "deeper", "sgd")]
    assert figures == ["97.25%", "97.98%", "98.36%", "98.48%", "98.73%", "99.05%", "99.2%"]


# ---------------------------------------------------------------- the tables the notebooks build

def test_notebooks_build_claims_tables_only_from_the_register():
    """Every claims table is built with mnistlab.studies.claims, from quotes of the register."""
    keys = set()
    for path in NOTEBOOKS:
        code = _notebook_code(path)
        assert not re.search(r"\bclaim_(value|comparison|threshold)\(", code), f"{path.name}: old claim helpers"
        keys |= set(re.findall(r"[\"']((?:wandb|lenet|medium|mlm)\.[a-z0-9_.]+)[\"']", code))
        if re.search(r"save_table\(\s*claims", code):
            assert "claims_table(" in code or "source_claims(" in code, path.name
    assert keys, "no notebook cites a quote"
    assert keys <= set(C.QUOTES), keys - set(C.QUOTES)


def test_study_claims_tables_cite_the_files():
    """The tables of datastats and embed cite the files exactly (built here from small inputs)."""
    import torch

    import mnistlab as ml
    from mnistlab.studies import datastats, embed

    images = torch.zeros(20, 28, 28, dtype=torch.uint8)
    images[:, 10:18, 12:16] = 255
    data = ml.ImageSet(images, torch.arange(20) % 10)
    assert_quotes_exact(datastats.source_claims(data, data, datastats.mean_intensity(data)))
    per = pd.DataFrame({"class": [str(i) for i in range(10)], "n": 10, "accuracy": np.linspace(0.4, 0.99, 10)})
    report = embed.KNNReport(pd.DataFrame(), per, pd.DataFrame(columns=["a", "b", "rate"]), 0.7, 10)
    scaling = pd.DataFrame({"backend": ["multicore"] * 2, "n": [5_000, 10_000], "seconds": [50.0, 110.0]})
    sep = {"raw pixels": {"silhouette": 0.05, "knn_acc": 0.9}, "untrained network": {"silhouette": 0.08, "knn_acc": 0.9},
           "trained network": {"silhouette": 0.2, "knn_acc": 0.98}}
    assert_quotes_exact(embed.source_claims("mnist", pca=report, tsne=report, n_points=70_000, scaling=scaling,
                                            separation=sep))


def test_committed_claims_tables_cite_the_files():
    """The claims tables under figures/ (written by the last full run of each notebook) quote exactly."""
    tables = sorted(ROOT.glob("figures/*/claims.csv")) + sorted(ROOT.glob("figures/*/source_claims.csv"))
    current = [p for p in tables if "document" in pd.read_csv(p, nrows=0).columns]
    if not current:
        pytest.skip("no claims table in figures/ was written by this version yet")
    for path in current:
        table = pd.read_csv(path, index_col=0)
        assert list(table.columns) == C.COLUMNS, path
        assert set(table["verdict"]) <= set(C.VERDICTS), path
        assert_quotes_exact(table)
