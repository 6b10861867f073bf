"""Data: datasets as in-memory uint8 tensors, splits, the tensor batch loader and picture conversion.

Imports nothing else of the package (but ``_util``).
"""
from .datasets import (DATASETS, DataError, DatasetInfo, ImageSet, as_imageset, check_files, data_root, dataset_info,
                       kfold_indices, load_dataset, normalization, sample_indices, train_val_split)
from .loader import Augment, TensorLoader
from . import sklearn_digits as _sklearn_digits  # noqa: F401,E402 (registers the "sklearn-digits" loader)

__all__ = ["DATASETS", "DataError", "DatasetInfo", "ImageSet", "as_imageset", "check_files", "data_root",
           "dataset_info", "kfold_indices", "load_dataset", "normalization", "sample_indices", "train_val_split",
           "Augment", "TensorLoader"]
