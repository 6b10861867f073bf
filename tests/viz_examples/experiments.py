"""Small synthetic inputs for every public function of mnistlab.viz.experiments (read by tests/test_viz_contract.py).

``EXAMPLES[name]()`` returns ``(args, kwargs)``; the contract test adds the caller's ``ax``.
"""
import numpy as np
import pandas as pd


def _runs(configs=("a", "b"), seeds=(0, 1, 2), epochs=3, **extra):
    rng = np.random.default_rng(0)
    rows = []
    for i, c in enumerate(configs):
        for s in seeds:
            for e in range(1, epochs + 1):
                acc = 0.9 + 0.02 * i + 0.01 * e + 0.002 * rng.standard_normal()
                rows.append({"config": c, "seed": s, "epoch": e, "train_loss": 1.0 / e, "train_acc": acc - 0.01,
                             "val_loss": 1.1 / e, "val_acc": acc, "test_acc": acc, "train_seconds": 3.0 + i,
                             "diverged": False, **{k: v[i] if isinstance(v, (list, tuple)) else v
                                                   for k, v in extra.items()}})
    return pd.DataFrame(rows)


def _comparisons():
    import mnistlab.experiments as ex

    df = _runs(("a", "b", "c"))
    return ex.compare_steps(df)


def _early_stopping():
    full = _runs(("full",), epochs=6)
    stop = _runs(("stop",), epochs=4).assign(best_epoch=3.0, stopped_epoch=4.0)
    return pd.concat([full, stop], ignore_index=True)


def _sweep():
    rows = []
    for opt, lrs in (("sgd", (0.01, 0.1, 1.0)), ("adam", (1e-4, 1e-3, 1e-1))):
        for lr in lrs:
            acc = 0.11 if lr in (1.0, 1e-1) else 0.95 + lr
            rows.append({"config": f"{opt} lr={lr:g}", "seed": 0, "epoch": 2, "val_acc": acc, "optimizer": opt,
                         "lr_value": lr, "diverged": False})
    return pd.DataFrame(rows)


def _digits(n=3):
    rng = np.random.default_rng(0)
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 8:20, 12:16] = 255
    probs = rng.dirichlet(np.ones(10), n)
    return images, probs


def _augment(x, generator=None):
    import torch

    return torch.roll(x, shifts=2, dims=-1)


EXAMPLES = {
    "plot_seeds": lambda: ((_runs(),), {"published": {"a": 0.93}, "lines": {"target": 0.94}}),
    "plot_differences": lambda: ((_comparisons(),), {}),
    "plot_curves": lambda: ((_runs(),), {"metrics": ("train_loss", "val_acc"), "zoom": True, "ax": 3}),
    "plot_early_stopping": lambda: ((_early_stopping(),), {"full": "full", "stopped": "stop", "ax": 2}),
    "plot_lr_sweep": lambda: ((_sweep(),), {"chosen": {"sgd": 0.1, "adam": 1e-3}, "defaults": {"sgd": 0.01}, "ax": 2}),
    "plot_scaling": lambda: ((_runs(("a", "b", "c", "d"), model=["x", "x", "y", "y"],
                                    train_limit=[100, 1000, 100, 1000]),), {"x": "train_limit", "group": "model"}),
    "plot_predictions": lambda: (_digits(), {"truth": [1, 1, 7], "ax": (2, 3)}),
    "plot_augmentation": lambda: ((_digits()[0], _augment), {"versions": 2, "ax": "figure"}),
}
