"""Training: the one run description (TrainConfig), the loop, callbacks, optimizers, recipes, checkpoints."""
from .callbacks import BarSink, Callback, EarlyStopping, LambdaCallback, ModelCheckpoint, StepProgress, TrainState
from .checkpoint import Checkpoint, CheckpointError, atomic_write, load_checkpoint, save_checkpoint
from .config import TrainConfig, as_config, resolve_init_from
from .loop import TrainingError, evaluate, features, fit, predict, predict_classes, resolve_device
from .optim import DEFAULT_LR, OPTIMIZERS, make_optimizer, make_scheduler
from .pretrained import load_pretrained, pretrained_info
from .recipes import RECIPES, get_recipe, list_recipes, train_model
from .recorder import ActivationHooks, HistogramRecorder, SnapshotRecorder
from .gan_config import RECIPES as GAN_RECIPES, GANConfig, as_gan_config
from .gan import GANRun, GANSampleRecorder, GANState, load_gan, sample as sample_gan, train_gan

__all__ = ["BarSink", "Callback", "EarlyStopping", "StepProgress", "LambdaCallback", "ModelCheckpoint", "TrainState", "Checkpoint",
           "CheckpointError", "atomic_write", "load_checkpoint", "save_checkpoint", "TrainConfig", "as_config", "resolve_init_from",
           "TrainingError", "evaluate", "features", "fit", "predict", "predict_classes", "resolve_device",
           "DEFAULT_LR", "OPTIMIZERS", "make_optimizer", "make_scheduler", "load_pretrained", "pretrained_info",
           "RECIPES", "get_recipe", "list_recipes", "train_model", "ActivationHooks", "HistogramRecorder",
           "SnapshotRecorder", "GAN_RECIPES", "GANConfig", "as_gan_config", "GANRun", "GANSampleRecorder", "GANState",
           "load_gan", "sample_gan", "train_gan"]
