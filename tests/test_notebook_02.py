"""Notebook 02 (PCA and t-SNE) runs in QUICK mode, for MNIST and Fashion-MNIST, and writes real figures and numbers."""
from __future__ import annotations

import pandas as pd
import pytest

import mnistlab as ml
from conftest import check_written, requires_data
from mnistlab.studies import claims as C
from test_claims import assert_quotes_exact
from test_plots import assert_picture

NAME = "02_dimensionality_reduction"
FIGURES = ["pca_explained_variance", "pca_2d", "pca_pairs", "pca_class_highlights", "pca_reconstructions",
           "tsne_all", "tsne_knn_per_class", "tsne_class_highlights", "tsne_axis_distributions",
           "tsne_pair_distances", "backends", "backends_embeddings", "tsne_speed", "representations"]
TABLES = ["backends", "tsne_speed", "source_claims"]
VERDICTS = set(C.VERDICTS)

pytestmark = [pytest.mark.notebook, requires_data]


def test_every_figure_written_and_real(entry):
    check_written(entry, FIGURES, TABLES)
    for name in FIGURES:
        assert_picture(entry["dir"] / f"{name}.png")  # not blank, not one colour, not empty axes
    written = {p.stem for p in entry["dir"].glob("*.png")}
    assert written == set(FIGURES), f"figures written but not expected (or the reverse): {written ^ set(FIGURES)}"


def test_backend_table(entry):
    from mnistlab.studies import embed

    df = pd.read_csv(entry["dir"] / "backends.csv", index_col=0)
    assert list(df.columns) == ["backend", "n", "seconds", "knn_acc", "trustworthiness"]
    assert set(df["backend"]) == set(embed.available_backends()) and (df["n"] == 300).all()
    assert (df["seconds"] > 0).all()
    assert df["knn_acc"].between(0.5, 1.0).all()  # 300 digits, 30 per class: chance is 0.1
    assert df["trustworthiness"].between(0.85, 1.0).all()
    nums = entry["numbers"]
    for backend in df["backend"]:
        assert nums[f"backend_{backend}_knn_acc"] == pytest.approx(df.set_index("backend").loc[backend, "knn_acc"])


def test_pca_numbers(entry):
    nums = entry["numbers"]
    # QUICK fits PCA on 2,000 training images: MNIST needs ~80 / ~140 / ~300 components (full data: 87 / 154 / 331)
    assert 50 <= nums["pca_components_90"] <= 150
    assert nums["pca_components_90"] < nums["pca_components_95"] < nums["pca_components_99"] <= 784
    assert 0.1 < nums["pca_variance_pc1_pc2"] < nums["pca_variance_pc1_pc3"] < 0.5
    mse = [nums[f"pca_reconstruction_mse_k{k}"] for k in (2, 10, 50, 150)]
    assert all(a > b > 0 for a, b in zip(mse, mse[1:]))
    # the PC1-PC2 plane: far above chance (0.1), far below t-SNE; 1 is the easiest digit there
    assert 0.3 < nums["pca2d_knn_acc"] < 0.6
    assert nums["pca2d_easiest"] == "1"
    assert {nums["pc1_low_end"], nums["pc1_high_end"]} & {"0", "1"}


def test_tsne_numbers(entry):
    from mnistlab.studies import embed

    nums = entry["numbers"]
    assert nums["tsne_n_points"] == 2000
    assert nums["tsne_backend"] == embed.available_backends()[0]  # "auto" took the fastest installed
    assert 0.85 < nums["tsne_knn_acc"] <= 1.0 and 0.85 < nums["pca50_knn_acc"] <= 1.0
    assert nums["tsne_knn_acc"] > nums["pca2d_knn_acc"] + 0.3  # t-SNE separates the classes far better than 2-D PCA
    assert 0.9 < nums["tsne_trustworthiness"] <= 1.0
    per = nums["tsne_per_class_knn"]
    assert set(per) == set(ml.dataset_info("mnist").classes)
    assert min(per.values()) < nums["tsne_knn_acc"] < max(per.values()) and per["1"] > 0.95
    assert nums["tsne_hardest"] == sorted(per, key=per.get)[:2]
    assert all(len(p.split("-")) == 2 for p in nums["tsne_top_pairs"])
    # in 2-D a class is far more compact than in pixel space
    assert nums["same_class_closer_tsne"] > nums["same_class_closer_pixels"] + 0.05
    assert nums["same_class_closer_pixels"] > 0.6


def test_speed_measured_at_growing_n(entry):
    nums = entry["numbers"]
    speed = pd.read_csv(entry["dir"] / "tsne_speed.csv", index_col=0)
    assert sorted(set(speed["n"])) == [300, 600] and (speed["seconds"] > 0).all()
    assert set(nums["speedup_by_n"]) <= {"300", "600"}
    assert all(v > 0 for v in nums["speedup_by_n"].values())
    # a slope per installed backend (check_written: every one finite, a NaN would be recorded as null)
    from mnistlab.studies import embed

    assert set(nums["time_exponents"]) == set(embed.available_backends())


def test_training_separates_classes(entry):
    nums = entry["numbers"]
    assert nums["trained_test_acc"] > 0.85  # 1 epoch on 2,000 images; an untrained network is at 0.1
    for rep in ("raw", "untrained", "trained"):
        assert 0.6 < nums[f"separation_{rep}_knn_acc"] <= 1.0
    assert nums["separation_trained_silhouette"] > nums["separation_raw_silhouette"]
    # QUICK: 0.16 trained, 0.04 raw pixels, 0.07 untrained; features that ignore the class sit near 0
    assert nums["separation_trained_silhouette"] > 0.1
    assert nums["separation_trained_silhouette"] > nums["separation_untrained_silhouette"]


def test_claims_table(entry):
    claims = pd.read_csv(entry["dir"] / "source_claims.csv", index_col=0)
    assert list(claims.columns) == C.COLUMNS and len(claims) == 8
    assert set(claims["verdict"]) <= VERDICTS and claims["verdict"].tolist() == entry["numbers"]["claim_verdicts"]
    assert set(claims["source"]) == {C.MEDIUM, C.LENET}
    assert_quotes_exact(claims)  # every quote exactly as in its source's file
    v, nums = dict(zip(claims["key"], claims["verdict"])), entry["numbers"]
    # the verdicts follow this run's numbers
    if nums["pca2d_knn_acc"] < 0.9:  # then some class is below 90% in the PCA plane: "not enough to separate"
        assert v["medium.pca_not_enough"] == "reproduced"
    hardest = set(nums["tsne_hardest"])
    assert v["medium.hardest"] == ("reproduced" if hardest == {"3", "8"} else
                                   "partly reproduced" if hardest & {"3", "8"} else "not reproduced")
    sil = {k: nums[f"separation_{k}_silhouette"] for k in ("raw", "untrained", "trained")}
    assert v["lenet.tsne_untrained"] == ("reproduced" if sil["untrained"] > sil["raw"] else "not reproduced")
    trained_ok = sil["trained"] > max(sil["raw"], sil["untrained"]) and nums["separation_trained_knn_acc"] >= 0.95
    assert v["lenet.tsne_trained"] == ("reproduced" if trained_ok else "not reproduced")
    # QUICK embeds 2,000 points: MulticoreTSNE's time on all of MNIST is not checked
    assert v["medium.tsne_minutes"] == "not applicable"


def test_fashion_mnist_claims_are_computed_not_assumed(quick_notebook):
    entry = quick_notebook(NAME, dataset="fashion-mnist")
    check_written(entry, FIGURES, TABLES)  # real figures, finite numbers, no stray cell output
    nums = entry["numbers"]
    classes = ml.dataset_info("fashion-mnist").classes
    assert set(nums["tsne_per_class_knn"]) == set(classes) and set(nums["tsne_hardest"]) <= set(classes)
    assert nums["pc1_low_end"] in classes and nums["pc1_high_end"] in classes
    claims = pd.read_csv(entry["dir"] / "source_claims.csv", index_col=0)
    # the sources describe MNIST (3 and 8 hardest, 0, 1 and 6 easiest, ...): nothing applies to clothes,
    # yet every row still shows what was measured
    assert (claims["verdict"] == "not applicable").all() and claims["measured"].str.len().min() > 10
    assert 0.6 < nums["tsne_knn_acc"] < nums["separation_trained_knn_acc"] + 0.2
