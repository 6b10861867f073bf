"""Examples of mnistlab.viz.dynamics for the axes contract test (a tiny recorded run, built once)."""
from functools import lru_cache

import numpy as np
import torch


@lru_cache(maxsize=1)
def _run():
    import mnistlab as ml
    from mnistlab.training.recorder import HistogramRecorder, SnapshotRecorder

    g = torch.Generator().manual_seed(0)
    data = ml.ImageSet(torch.randint(0, 256, (96, 28, 28), dtype=torch.uint8, generator=g),
                       torch.arange(96, dtype=torch.int64) % 10, "mnist")
    model = ml.create_model("mlp", seed=0, hidden=(12, 8))
    rec, snaps = HistogramRecorder(every=1, bins=16), SnapshotRecorder(steps=[1, 3])
    ml.fit(model, data, None, ml.TrainConfig(epochs=1, optimizer="sgd", lr=0.05, batch_size=16), progress=False, callbacks=[rec, snaps])
    return model, rec, snaps, data


@lru_cache(maxsize=1)
def _rep():
    from mnistlab.studies import dynamics as dyn

    model, _, snaps, data = _run()
    return dyn.representation_over_training(model, snaps, data, k=3, folds=2, progress=False)


def _flow():
    from mnistlab.studies import dynamics as dyn

    return dyn.gradient_flow(_run()[1])


def _table(quantity, statistic):
    from mnistlab.studies import dynamics as dyn

    return dyn.over_training(_run()[1], quantity, statistic)


def _shape():
    from mnistlab.studies import dynamics as dyn

    model, _, snaps, _ = _run()
    return dyn.distribution_shape(model, {"init": snaps.state(0), "final": snaps.state(-1)})


def _line():
    from mnistlab.studies import dynamics as dyn

    model, _, snaps, data = _run()
    return dyn.loss_along_line(model, snaps.state(0), snaps.state(-1), {"train": data}, alphas=np.linspace(0, 1, 3),
                               progress=False)


EXAMPLES = {
    "plot_histograms": lambda: ((_run()[1], "gradients"), {"ax": 3}),
    "plot_key_frames": lambda: ((_run()[1], "updates"), {"n": 3, "ax": "figure"}),
    "plot_shape": lambda: ((_shape(),), {"ax": 2}),
    "plot_gradient_flow": lambda: ((_flow(),), {}),
    "plot_gradient_heatmap": lambda: ((_flow(),), {}),
    "plot_layer_lines": lambda: ((_table("weights", "std"),), {"ylabel": "std"}),
    "plot_update_ratios": lambda: ((_table("updates", "ratio"),), {}),
    "plot_diagnosis": lambda: (({"run a": _run()[1], "run b": _run()[1]},), {"ax": (4, 2)}),
    "plot_representation": lambda: ((_rep(),), {"index": 1}),
    "plot_representation_key_frames": lambda: ((_rep(),), {"n": 3, "ax": "figure"}),
    "plot_separation": lambda: ((_rep().table,), {}),
    "plot_loss_line": lambda: ((_line(),), {"ax": 2}),
}

NOT_PLOTS = {
    "histogram_gif_frames": "renders GIF frames: returns a list of RGB arrays (draws into ax= only to render them)",
    "representation_gif_frames": "renders GIF frames: returns a list of RGB arrays (draws into ax= only to render them)",
    "layer_colors": "returns the colours of the layers, draws nothing",
    "key_frame_indices": "returns frame indices, draws nothing",
    "data_span": "returns the span of the bins any frame uses, draws nothing",
    "save_histogram_gif": "writes a GIF file from a recorder (frames from histogram_gif_frames); returns its path",
}
