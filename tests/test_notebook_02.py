"""Notebook 02 (PCA and t-SNE) runs in QUICK mode and writes sane figures and numbers."""
from __future__ import annotations

import pandas as pd
import pytest

from conftest import check_written, requires_data

NAME = "02_dimensionality_reduction"
FIGURES = ["pca_explained_variance", "pca_2d", "pca_3d", "pca_reconstructions", "tsne_all",
           "tsne_class_highlights", "tsne_axis_distributions", "backends", "backends_embeddings",
           "representations"]

pytestmark = [pytest.mark.notebook, requires_data]


@pytest.fixture(scope="module")
def entry(quick_notebook):
    return quick_notebook(NAME)


def test_every_figure_written(entry):
    check_written(entry, FIGURES, ["backends"])


def test_backend_table(entry):
    from mnistlab.studies import embed

    df = pd.read_csv(entry["dir"] / "backends.csv", index_col=0)
    assert list(df.columns) == ["backend", "seconds", "knn_acc", "trustworthiness"]
    assert set(df["backend"]) == set(embed.available_backends())
    assert (df["seconds"] > 0).all()
    assert df["knn_acc"].between(0.5, 1.0).all()
    assert df["trustworthiness"].between(0.8, 1.0).all()
    nums = entry["numbers"]
    for backend in df["backend"]:
        assert 0.5 < nums[f"backend_{backend}_knn_acc"] <= 1.0


def test_pca_numbers(entry):
    nums = entry["numbers"]
    # QUICK fits PCA on 2,000 training images: MNIST needs ~80 / ~140 / ~300 components (full data: 87 / 154 / 331)
    assert 50 <= nums["pca_components_90"] <= 150
    assert nums["pca_components_90"] < nums["pca_components_95"] < nums["pca_components_99"] <= 784
    assert 0.1 < nums["pca_variance_pc1_pc2"] < nums["pca_variance_pc1_pc3"] < 0.5
    mse = [nums[f"pca_reconstruction_mse_k{k}"] for k in (2, 10, 50, 150)]
    assert all(a > b > 0 for a, b in zip(mse, mse[1:]))


def test_tsne_numbers(entry):
    nums = entry["numbers"]
    assert nums["tsne_n_points"] == 2000
    from mnistlab.studies import embed

    assert nums["tsne_backend"] == embed.available_backends()[0]  # "auto" took the fastest installed
    assert 0.8 < nums["tsne_knn_acc"] <= 1.0
    assert nums["tsne_knn_acc"] > nums["pca2d_knn_acc"]  # t-SNE separates the classes far better than 2-D PCA
    assert 0.9 < nums["tsne_trustworthiness"] <= 1.0
    assert nums["tsne_seconds"] > 0


def test_training_separates_classes(entry):
    nums = entry["numbers"]
    assert nums["trained_test_acc"] > 0.7
    for rep in ("raw", "untrained", "trained"):
        assert 0.5 < nums[f"separation_{rep}_knn_acc"] <= 1.0
        assert -1 <= nums[f"separation_{rep}_silhouette"] <= 1
    assert nums["separation_trained_silhouette"] > nums["separation_raw_silhouette"]
    assert nums["separation_trained_silhouette"] > nums["separation_untrained_silhouette"]
