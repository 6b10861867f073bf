"""Examples of mnistlab.viz.common for the axes contract test."""
import numpy as np
import pandas as pd

_rng = np.random.default_rng(0)


def _runs():
    rows = [{"config": c, "seed": s, "epoch": e, "train_loss": 1 / e + 0.01 * s, "val_loss": 1.1 / e,
             "train_acc": 0.9 + 0.02 * e, "val_acc": 0.88 + 0.02 * e + 0.001 * s}
            for c in ("a", "b") for s in range(3) for e in (1, 2, 3)]
    return pd.DataFrame(rows)


EXAMPLES = {
    "image_grid": lambda: ((_rng.integers(0, 255, (6, 28, 28)),), {"labels": list(range(6)), "axes": 6}),
    "learning_curves": lambda: ((_runs(),), {"axes": 2}),
}
NOT_PLOTS = {
    "panels": "returns the caller's axes or a new figure's; the helper every plot uses",
    "finish": "lays out a figure the plot created; the helper every plot uses",
}
