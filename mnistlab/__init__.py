"""mnistlab: MNIST deep-dive notebooks backed by a small, tested package.

One import line gives a notebook the whole public API::

    import mnistlab as ml
    train = ml.load_dataset("mnist", "train")
    model = ml.create_model("fast", seed=0)
    history = ml.fit(model, train, epochs=2)
"""
from .data import (DATASETS, Augment, DataError, DatasetInfo, ImageSet, TensorLoader, as_imageset, check_files,
                   data_root, dataset_info, kfold_indices, load_dataset, normalization, sample_indices,
                   train_val_split)
from .models import Classifier, count_macs, count_parameters, create_model, list_models, register_model
from .train import (Callback, EarlyStopping, LambdaCallback, ModelCheckpoint, TrainingError, TrainState, evaluate,
                    fit, make_optimizer, make_scheduler, predict, predict_classes, resolve_device)
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .plots import Figures, image_grid, learning_curves

__version__ = "0.1.0"
