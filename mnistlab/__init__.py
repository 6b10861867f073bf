"""mnistlab: MNIST deep-dive notebooks backed by a small, tested package.

One import line gives a notebook the whole public API::

    import mnistlab as ml
    train = ml.load_dataset("mnist", "train")
    model = ml.create_model("fast", seed=0)
    history = ml.fit(model, train, config=ml.TrainConfig(epochs=2))
    ml.viz.experiments.plot_curves(history)

Layers, each importing only those above it in this list: ``data``, ``models``, ``training``,
``experiments``, ``studies`` (compute), ``viz`` (draw), ``runner`` / ``cli``.

Importing this package loads nothing but this file: every name in ``__all__`` (and every layer,
``ml.viz``, ``ml.studies``, ``ml.experiments`` ...) is imported on first use (PEP 562). So
``import mnistlab`` is instant, ``mnistlab --help`` needs no torch, and matplotlib loads only
when something from ``viz`` is used (``ml.Figures``, ``ml.image_grid``, ``ml.viz...``);
``import mnistlab.training`` never loads it.
"""
from __future__ import annotations

import importlib

#: public name -> the module it comes from (imported on first use)
_LAZY = {
    **dict.fromkeys(["DATASETS", "Augment", "DataError", "DatasetInfo", "ImageSet", "TensorLoader", "as_imageset",
                     "check_files", "data_root", "dataset_info", "kfold_indices", "load_dataset", "normalization",
                     "sample_indices", "train_val_split"], "mnistlab.data"),
    "to_mnist": "mnistlab.data.images",
    **dict.fromkeys(["Classifier", "Preprocessing", "count_macs", "count_parameters", "create_gan", "create_model",
                     "list_gans", "list_models", "register_model"], "mnistlab.models"),
    **dict.fromkeys(["RECIPES", "Callback", "Checkpoint", "CheckpointError", "EarlyStopping", "LambdaCallback",
                     "ModelCheckpoint", "TrainConfig", "TrainingError", "TrainState", "evaluate", "features", "fit",
                     "get_recipe", "list_recipes", "load_checkpoint", "load_pretrained", "make_optimizer",
                     "make_scheduler", "predict", "predict_classes", "pretrained_info", "resolve_device",
                     "save_checkpoint", "train_model", "HistogramRecorder", "SnapshotRecorder", "StepProgress"],
                    "mnistlab.training"),
    **dict.fromkeys(["GAN_RECIPES", "GANConfig", "GANRun", "GANSampleRecorder", "load_gan", "sample_gan",
                     "train_gan"], "mnistlab.training"),
    **dict.fromkeys(["Reading", "read_image", "read_number"], "mnistlab.studies.handwriting"),
    **dict.fromkeys(["Figures", "image_grid"], "mnistlab.viz"),
}

#: the layers, as ``ml.<layer>`` (``runner`` and ``cli`` too, but they are not part of ``__all__``)
_LAYERS = ("data", "models", "training", "experiments", "studies", "viz")
_SUBMODULES = (*_LAYERS, "runner", "cli")

__all__ = [*_LAZY, *_LAYERS]


def __getattr__(name: str):
    """Import a public name or a layer on first use, and keep it (the next lookup is a plain attribute)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("mnistlab")  # written once, in pyproject.toml
        except PackageNotFoundError:  # running from a source tree that was never installed
            value = "0+unknown"
    else:
        raise AttributeError(f"module 'mnistlab' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBMODULES})
