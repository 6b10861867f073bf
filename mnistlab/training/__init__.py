"""Training: the one run description (TrainConfig), the loop, callbacks, optimizers, recipes, checkpoints."""
from .callbacks import Callback, EarlyStopping, LambdaCallback, ModelCheckpoint, TrainState
from .checkpoint import Checkpoint, CheckpointError, atomic_write, load_checkpoint, save_checkpoint
from .config import TrainConfig, as_config
from .loop import TrainingError, evaluate, features, fit, predict, predict_classes, resolve_device
from .optim import DEFAULT_LR, OPTIMIZERS, make_optimizer, make_scheduler
from .pretrained import load_pretrained, pretrained_info
from .recipes import RECIPES, get_recipe, list_recipes, train_model
from .recorder import ActivationHooks, HistogramRecorder, SnapshotRecorder

__all__ = ["Callback", "EarlyStopping", "LambdaCallback", "ModelCheckpoint", "TrainState", "Checkpoint",
           "CheckpointError", "atomic_write", "load_checkpoint", "save_checkpoint", "TrainConfig", "as_config",
           "TrainingError", "evaluate", "features", "fit", "predict", "predict_classes", "resolve_device",
           "DEFAULT_LR", "OPTIMIZERS", "make_optimizer", "make_scheduler", "load_pretrained", "pretrained_info",
           "RECIPES", "get_recipe", "list_recipes", "train_model", "ActivationHooks", "HistogramRecorder",
           "SnapshotRecorder"]
