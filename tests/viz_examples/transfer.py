"""Examples of mnistlab.viz.transfer for the axes contract test."""
import numpy as np
import pandas as pd

from mnistlab.studies.transfer import FeatureMaps

_rng = np.random.default_rng(0)
_LEVELS = [("10", 10.0), ("100", 100.0), ("all", 600.0)]


def _runs(task="a → b"):
    rows = []
    for strategy, base in (("frozen", 0.80), ("fine-tune", 0.85), ("scratch", 0.70), ("linear probe", 0.78)):
        for i, (labels, per_class) in enumerate(_LEVELS):
            for seed in range(3):
                rows.append({"task": task, "strategy": strategy, "labels": labels, "per_class": per_class,
                             "n_train": int(per_class * 5), "seed": seed, "epochs": 1, "steps": 10,
                             "test_acc": base + 0.05 * i + 0.01 * _rng.normal(), "test_loss": 0.5,
                             "train_seconds": 1.0, "config": f"{strategy} | {labels}", "cached": False})
    for seed in range(3):
        rows.append({"task": task, "strategy": "zero-shot", "labels": "0", "per_class": 0.0, "n_train": 0,
                     "seed": seed, "epochs": 0, "steps": 0, "test_acc": 0.6, "test_loss": 1.0, "train_seconds": 0.0,
                     "config": "zero-shot | 0", "cached": False})
    return pd.DataFrame(rows)


def _gains():
    from mnistlab.studies.transfer import transfer_gains

    return transfer_gains(_runs())


def _maps():
    labels = np.repeat(np.arange(3), 10)
    points = pd.concat([pd.DataFrame({"panel": p, "x": _rng.normal(size=30) + labels, "y": _rng.normal(size=30),
                                      "label": labels}) for p in ("before", "after")], ignore_index=True)
    scores = pd.DataFrame({"panel": ["before", "after"], "knn_acc": [0.7, 0.9], "probe_acc": [0.8, 0.95]})
    return FeatureMaps(points, scores, ["a", "b", "c"])


EXAMPLES = {
    "plot_accuracy_vs_labels": lambda: ((_runs(),), {}),
    "plot_transfer_overview": lambda: ((pd.concat([_runs("a → b"), _runs("b → a")], ignore_index=True),),
                                       {"ax": 2}),
    "plot_gains": lambda: ((_gains(),), {}),
    "plot_feature_maps": lambda: ((_maps(),), {"ax": 2}),
    "plot_digit_conversion": lambda: ((_rng.integers(0, 16, (4, 8, 8)), _rng.integers(0, 255, (4, 28, 28)),
                                       [0, 1, 2, 3]), {"n": 4, "ax": (2, 4)}),
}

NOT_PLOTS = {"strategy_colors": "returns the strategy palette, draws nothing"}
