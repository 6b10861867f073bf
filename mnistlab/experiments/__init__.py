"""The experiment harness: cached runs over seeds and grids, their statistics, parallel executors.

``import mnistlab.experiments as ex`` gives ``ex.run``, ``ex.run_many``, ``ex.run_grid``,
``ex.cross_validate``, ``ex.out_of_fold_probs``, ``ex.lr_sweep``, ``ex.summarize``, ``ex.compare`` ...
"""
from ..training.config import TrainConfig, as_config
from ..training.recipes import get_recipe
from .cache import CACHE_VERSION, cache_dir, clear_cache, config_hash, fingerprint
from .executors import DEFAULT_WORKERS, map_tasks, shutdown_workers, step_progress, torch_threads
from .runs import (best_lrs, cross_validate, ensemble, estimated_work, load_model, load_runs, lr_sweep, out_of_fold_probs,
                   run, run_gan, run_gans, run_grid, run_grids, run_many, run_on, with_settings)
from .stats import (Verdict, compare, compare_steps, compare_to_best, failed_runs, final_rows, split_by_verdict,
                    summarize, t_factor)

__all__ = ["TrainConfig", "as_config", "get_recipe", "CACHE_VERSION", "cache_dir", "clear_cache", "config_hash", "fingerprint",
           "DEFAULT_WORKERS", "map_tasks", "shutdown_workers", "step_progress", "torch_threads", "best_lrs", "cross_validate", "ensemble", "load_model",
           "estimated_work", "load_runs", "lr_sweep", "out_of_fold_probs", "run", "run_gan", "run_gans", "run_grid", "run_grids", "run_many", "run_on", "with_settings",
           "Verdict", "compare", "compare_steps", "compare_to_best", "failed_runs", "final_rows", "split_by_verdict", "summarize", "t_factor"]
