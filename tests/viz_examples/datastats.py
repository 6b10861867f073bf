"""Examples of mnistlab.viz.datastats for the axes contract test."""
import numpy as np
import pandas as pd

_rng = np.random.default_rng(0)
_CLASSES = [str(i) for i in range(10)]


def _counts():
    train = np.arange(100, 110)
    return pd.DataFrame({"class": _CLASSES, "train": train, "train_frac": train / train.sum(),
                         "test": train // 5, "test_frac": (train // 5) / (train // 5).sum()})


def _ink():
    return pd.DataFrame({"class": _CLASSES, "n": np.full(10, 50), "mean": np.linspace(0.08, 0.18, 10),
                         "std": np.full(10, 0.02)})


def _typical():
    rows = [{"label": c, "class": str(c), "kind": kind, "rank": r, "index": c * 3 + r, "distance": 5.0 + r}
            for c in range(3) for kind in ("most", "least") for r in range(3)]
    return pd.DataFrame(rows)


EXAMPLES = {
    "plot_samples": lambda: ((_rng.random((4, 28, 28)), [0, 1, 2, 3]), {"classes": _CLASSES, "ax": 4}),
    "plot_class_counts": lambda: ((_counts(),), {"ax": 2}),
    "plot_class_means": lambda: ((_rng.random((10, 28, 28)), _CLASSES), {"ax": 10}),
    "plot_pixel_std": lambda: ((_rng.random((28, 28)),), {"mean": _rng.random((28, 28)), "ax": 2}),
    "plot_pixel_histograms": lambda: ((pd.DataFrame(_rng.random((8, 10)), columns=_CLASSES),), {"ax": 10}),
    "plot_mean_intensity": lambda: ((_ink(),), {}),
    "plot_typical_examples": lambda: ((_rng.integers(0, 255, (9, 28, 28)).astype(np.uint8), _typical()), {}),
}
