"""mnistlab: MNIST deep-dive notebooks backed by a small, tested package.

One import line gives a notebook the whole public API::

    import mnistlab as ml
    train = ml.load_dataset("mnist", "train")
    model = ml.create_model("fast", seed=0)
    history = ml.fit(model, train, epochs=2)

Layers, each importing only those above it in this list: ``data``, ``models``, ``training``,
``experiments``, ``studies`` (compute), ``viz`` (draw), ``runner`` / ``cli``. Importing this
package loads matplotlib (for ``viz``); ``import mnistlab.training`` alone does not.
"""
from importlib.metadata import PackageNotFoundError, version as _version

from .data import (DATASETS, Augment, DataError, DatasetInfo, ImageSet, TensorLoader, as_imageset, check_files,
                   data_root, dataset_info, kfold_indices, load_dataset, normalization, sample_indices,
                   train_val_split)
from .models import (Classifier, Preprocessing, count_macs, count_parameters, create_gan, create_model, list_gans,
                     list_models, register_model)
from .training import (RECIPES, Callback, Checkpoint, CheckpointError, EarlyStopping, LambdaCallback, ModelCheckpoint,
                       TrainConfig, TrainingError, TrainState, evaluate, features, fit, get_recipe, list_recipes,
                       load_checkpoint, load_pretrained, make_optimizer, make_scheduler, predict, predict_classes,
                       pretrained_info, resolve_device, save_checkpoint, train_model, HistogramRecorder,
                       SnapshotRecorder)
from . import experiments, studies, viz
from .studies.handwriting import Reading, read_image, read_number
from .viz import Figures, image_grid, learning_curves

try:
    __version__ = _version("mnistlab")  # written once, in pyproject.toml
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
