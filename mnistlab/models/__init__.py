"""Models: the registry (``create_model``, ``list_models``) and the classifiers it holds."""
from .registry import (Preprocessing, count_macs, count_parameters, create_model, list_models, preprocessing_of,
                       register_model)
from .classifiers import Classifier  # importing the module registers the classifiers
from .gan import GAN, Discriminator, Generator, create_gan, list_gans, register_gan

__all__ = ["Preprocessing", "count_macs", "count_parameters", "create_model", "list_models", "preprocessing_of",
           "register_model", "Classifier", "GAN", "Discriminator", "Generator", "create_gan", "list_gans",
           "register_gan"]
