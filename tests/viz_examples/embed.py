"""Examples of mnistlab.viz.embed for the axes contract test."""
import numpy as np
import pandas as pd

_rng = np.random.default_rng(0)
_y = np.repeat(np.arange(3), 20)
_Y = _rng.normal(size=(60, 3)) + _y[:, None] * 3.0


def _report():
    from mnistlab.studies.embed import knn_report

    return knn_report(_Y[:, :2], _y, classes=["a", "b", "c"], k=3)


def _backends():
    return pd.DataFrame({"backend": ["opentsne", "multicore"], "n": [100, 100], "seconds": [1.0, 2.0],
                         "knn_acc": [0.95, 0.94], "trustworthiness": [0.97, 0.96]})


def _scaling():
    return pd.DataFrame({"backend": ["opentsne", "multicore"] * 6, "n": [100] * 6 + [400] * 6,
                         "repeat": np.repeat([0, 1, 2, 0, 1, 2], 2),
                         "seconds": [1.0, 1.5, 1.1, 1.6, 0.9, 1.4, 2.0, 6.0, 2.2, 6.5, 1.9, 5.8]})


def _pairs():
    from mnistlab.studies.embed import pair_distances

    return {"784-D": pair_distances(_Y, _y, n_pairs=300), "2-D": pair_distances(_Y[:, :2], _y, n_pairs=300)}


def _pca():
    from sklearn.decomposition import PCA

    return PCA().fit(_rng.normal(size=(50, 20)) * np.linspace(3, 0.1, 20))


EXAMPLES = {
    "plot_scatter": lambda: ((_Y, _y), {"classes": ["a", "b", "c"]}),
    "plot_pairs": lambda: ((_Y, _y), {"axis_names": ["PC 1", "PC 2", "PC 3"], "ax": (3, 3)}),
    "plot_explained_variance": lambda: ((_pca(),), {}),
    "plot_reconstructions": lambda: ((_rng.random((2, 784)), {2: _rng.random((2, 784)), 10: _rng.random((2, 784))}),
                                     {"ax": (2, 3)}),
    "plot_class_highlights": lambda: ((_Y, _y), {"scores": {"0": 0.9}, "ax": 3}),
    "plot_axis_distributions": lambda: ((_Y[:, :2], _y), {"ax": 2}),
    "plot_pair_distances": lambda: ((_pairs(),), {"scores": {"2-D": 0.8}, "ax": 2}),
    "plot_knn_report": lambda: ((_report(),), {"ax": 2}),
    "plot_backends": lambda: ((_backends(),), {"ax": 3}),
    "plot_tsne_scaling": lambda: ((_scaling(),), {"ax": 2}),
    "plot_representations": lambda: (({"pixels": _Y[:, :2], "features": _Y[:, 1:]}, _y),
                                     {"scores": {"pixels": {"silhouette": 0.1, "knn_acc": 0.9}}, "ax": 2}),
}

NOT_PLOTS = {
    "tsne_benchmark_file": "returns the path of benchmarks/tsne_speed.py's saved result, draws nothing",
    "tsne_benchmark_runs": "returns the timed runs of a benchmarks/tsne_speed.py result as a table, draws nothing",
}
