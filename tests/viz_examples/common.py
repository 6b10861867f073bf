"""Examples of mnistlab.viz.common for the axes contract test."""
import numpy as np

_rng = np.random.default_rng(0)


EXAMPLES = {
    "image_grid": lambda: ((_rng.integers(0, 255, (6, 28, 28)),), {"labels": list(range(6)), "ax": 6}),
}
NOT_PLOTS = {
    "panels": "returns the caller's axes or a new figure's; the helper every plot uses",
    "one_panel": "panels for a plot of one panel: returns the Axes it draws into",
    "finish": "lays out a figure the plot created; the helper every plot uses",
}
