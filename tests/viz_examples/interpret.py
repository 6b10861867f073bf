"""Examples of mnistlab.viz.interpret for the axes contract test (the shipped model on 600 test digits)."""
from functools import lru_cache

import numpy as np
import pandas as pd


@lru_cache(maxsize=1)
def _setup():
    import mnistlab as ml
    from mnistlab.studies import interpret as I

    model = ml.load_pretrained()
    it = I.Interpretation.from_model(model, ml.load_dataset("mnist", "test", limit=600))
    imgs = it.images[:3]
    maps = I.attribute(model, imgs, it.labels[:3], "saliency").maps
    check = I.RandomizationCheck(pd.DataFrame({"step": [0, 1], "layer": ["none", "head"], "layers_randomized": [0, 1],
                                               "rank_corr_abs": [1.0, 0.2], "ci_low": [1.0, 0.1], "ci_high": [1.0, 0.3],
                                               "rank_corr_signed": [1.0, 0.0]}), maps, -maps, pd.DataFrame())
    top = I.top_activating(model, it, k=2, n_channels=2)
    return dict(model=model, it=it, imgs=imgs, maps=maps, check=check, fmaps=I.feature_maps(model, imgs[0]),
                cm=I.channel_class_means(model, it), top=top, filters=I.first_layer_filters(model),
                cal=I.calibrate(it))


def _s(key):
    return _setup()[key]


_ROB = pd.DataFrame({"model": ["a", "a", "b", "b"], "perturbation": ["noise"] * 4, "unit": ["std"] * 4,
                     "level": [0, 0.1, 0, 0.1], "acc": [0.99, 0.9, 0.98, 0.7], "ci_low": [0.98, 0.88, 0.97, 0.68],
                     "ci_high": [1.0, 0.92, 0.99, 0.72]})
_ISSUES = pd.DataFrame({"given": [1, 2], "predicted": [7, 3], "p_predicted": [0.9, 0.8]})

EXAMPLES = {
    "plot_digits": lambda: ((_s("imgs"), ["a", "b", "c"]), {"ax": 3}),
    "plot_misclassified": lambda: ((_s("it"), 3), {"ax": "figure"}),
    "plot_confusion": lambda: ((_s("it"),), {}),
    "plot_most_confused": lambda: ((_s("it").most_confused(4),), {}),
    "plot_report": lambda: ((_s("it").report(),), {}),
    "plot_attributions": lambda: ((_s("imgs"), {"saliency": _s("maps")}), {"ax": (3, 2)}),
    "plot_class_maps": lambda: ((_s("maps"), ["0", "1", "2"]), {"ax": 3}),
    "plot_randomization": lambda: ((_s("check"),), {}),
    "plot_randomization_maps": lambda: ((_s("imgs"), _s("check")), {"ax": (3, 3)}),
    "plot_feature_maps": lambda: ((_s("fmaps"), _s("imgs")[0]), {"ax": "figure"}),
    "plot_filters": lambda: ((_s("filters"),), {"ax": "figure"}),
    "plot_channel_class_means": lambda: ((_s("cm"),), {}),
    "plot_top_activating": lambda: ((_s("top"), _s("it").images_of(_s("top")["index"]), _s("it").classes), {"ax": "figure"}),
    "plot_class_maximization": lambda: ((np.random.default_rng(0).random((2, 28, 28)),
                                         pd.DataFrame({"class": [0, 1], "prob": [0.9, 0.8]}), _s("it").classes), {"ax": 2}),
    "plot_reliability": lambda: ((_s("cal"),), {"ax": 2}),
    "plot_label_issues": lambda: ((_ISSUES, _s("imgs")[:2], _s("it").classes), {"ax": 2}),
    "plot_robustness": lambda: ((_ROB,), {"ax": 1}),
    "plot_cell": lambda: ((_s("it"), 3, 3), {"maps": None, "max_digits": 3, "ax": "figure"}),
}
