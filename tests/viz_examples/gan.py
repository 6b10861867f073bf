"""Examples of mnistlab.viz.gan for the axes contract test (synthetic digits, no training)."""
from functools import lru_cache

import numpy as np
import pandas as pd
import torch


@lru_cache(maxsize=1)
def _images():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (40, 28, 28), dtype=torch.uint8, generator=g)


def _history():
    steps = np.arange(1, 101)
    return pd.DataFrame({"step": steps, "loss_d": 1.3 - steps / 400, "loss_g": 0.8 + steps / 300,
                         "d_real": 0.5 + steps / 500, "d_fake": 0.5 - steps / 500})


def _quality():
    return pd.DataFrame({"gan": ["dcgan"] * 2 + ["cdcgan"] * 2, "step": [1, 2, 1, 2], "frechet": [3.0, 1.0, 2.0, 0.5],
                         "mean_confidence": [0.5, 0.9, 0.6, 0.95], "cond_accuracy": [np.nan, np.nan, 0.5, 0.97],
                         "max_share_deviation": [0.1, 0.02, 0.05, 0.01]})


@lru_cache(maxsize=1)
def _neighbours():
    import mnistlab as ml
    from mnistlab.studies import gan as gs

    imgs = _images()
    train = ml.ImageSet(imgs[20:], torch.arange(20) % 10)
    return imgs[:20], train, gs.nearest_train_distances({"dcgan": imgs[:20]}, train, imgs[:10], n=10)


EXAMPLES = {
    "plot_samples": lambda: ((_images()[:20],), {"nrow": 5, "title": "t"}),
    "plot_training_curves": lambda: ((_history(),), {"window": 5, "ax": 2}),
    "plot_interpolation": lambda: ((_images()[:8],), {}),
    "plot_class_grid": lambda: ((_images()[:20],), {"classes": list("ab")}),
    "plot_class_shares": lambda: ((np.full(10, 0.1),), {}),
    "plot_quality_over_training": lambda: ((_quality(),), {"floor": 0.1, "ax": 3}),
    "plot_nearest_neighbours": lambda: ((_neighbours()[0], _neighbours()[1], _neighbours()[2]),
                                        {"source": "dcgan", "n": 4}),
    "plot_distance_distributions": lambda: ((_neighbours()[2],), {}),
}
NOT_PLOTS = {
    "tile": "returns a mosaic array of the images; draws nothing",
    "gif_frames": "returns RGB frames for a GIF, drawn on figures it creates and closes",
}
