"""The experiment harness: cached runs over seeds and grids, their statistics, parallel executors.

``import mnistlab.experiments as ex`` gives ``ex.run``, ``ex.run_many``, ``ex.run_grid``,
``ex.cross_validate``, ``ex.out_of_fold_probs``, ``ex.lr_sweep``, ``ex.summarize``, ``ex.compare`` ...
"""
from ..training.config import TrainConfig, as_config
from ..training.recipes import get_recipe
from .cache import CACHE_VERSION, cache_dir, clear_cache, config_hash
from .executors import map_tasks
from .runs import (best_lrs, cross_validate, ensemble, load_model, lr_sweep, out_of_fold_probs, run, run_grid,
                   run_many)
from .stats import Verdict, compare, compare_steps, final_rows, split_by_verdict, summarize

__all__ = ["TrainConfig", "as_config", "get_recipe", "CACHE_VERSION", "cache_dir", "clear_cache", "config_hash",
           "map_tasks", "best_lrs", "cross_validate", "ensemble", "load_model", "lr_sweep", "out_of_fold_probs", "run",
           "run_grid", "run_many", "Verdict", "compare", "compare_steps", "final_rows", "split_by_verdict",
           "summarize"]
