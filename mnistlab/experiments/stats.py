"""Statistics over repeated runs: final rows, summaries with t-intervals, paired comparisons and verdicts."""
from __future__ import annotations

import enum
import math
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd

__all__ = ["Verdict", "final_rows", "summarize", "wilson_interval", "compare", "compare_steps", "compare_to_best",
           "split_by_verdict", "failed_runs", "t_factor", "t_interval", "TInterval"]


class Verdict(str, enum.Enum):
    """The outcome of a paired comparison of b against a (a ``str`` enum, so it prints and saves as its text)."""

    HELPS = "helps"            # b beats a beyond seed noise
    HURTS = "hurts"            # b loses to a beyond seed noise
    WITHIN_NOISE = "within noise"
    TOO_FEW_SEEDS = "too few seeds"

    def __str__(self) -> str:
        return self.value

    @property
    def beyond_noise(self) -> bool:
        """True for HELPS and HURTS."""
        return self in (Verdict.HELPS, Verdict.HURTS)


def final_rows(df: pd.DataFrame, by: Sequence[str] = ("config", "seed")) -> pd.DataFrame:
    """The last epoch's row of every run (one row per config and seed, or per ``by`` group)."""
    by = [b for b in by if b in df.columns]
    missing = {"epoch"} - set(df.columns)
    if missing or not by:
        raise ValueError("final_rows needs a tidy DataFrame from run/run_many (columns config, seed, epoch).")
    df = df.reset_index(drop=True)
    last = df.sort_values("epoch", kind="stable").groupby(by, sort=False).tail(1).index
    return df.loc[sorted(last)].reset_index(drop=True)  # runs in their order of appearance


class TInterval(NamedTuple):
    """A Student-t confidence interval for a mean: ``mean +- half`` (``low``, ``high``)."""

    mean: float | np.ndarray
    std: float | np.ndarray
    half: float | np.ndarray
    n: int | np.ndarray

    @property
    def low(self):
        return self.mean - self.half

    @property
    def high(self):
        return self.mean + self.half


def t_interval(values, confidence: float = 0.95, axis: int | None = None) -> TInterval:
    """Mean, standard deviation and Student-t confidence interval of the mean: the package's one t-interval.

    Non-finite values (NaN from a failed run) are left out. With one value the standard deviation
    and the half-width are NaN; with none the mean is NaN too. Equal values give a half-width of 0.

    Parameters
    ----------
    values : array-like
        Repeated measurements (seeds, folds, images).
    confidence : float
        Level of the interval (0.95: 95%).
    axis : int, optional
        Compute along this axis (one interval per remaining index, as arrays); default: all values.

    Returns
    -------
    TInterval
        ``(mean, std, half, n)`` with ``low`` and ``high``; floats and an int without ``axis``.

    Examples
    --------
    >>> t_interval([0.97, 0.98, 0.99]).half                       # doctest: +ELLIPSIS
    0.0248...
    """
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if axis is None:
        values = values[np.isfinite(values)]
        n = len(values)
        if n == 0:
            return TInterval(np.nan, np.nan, np.nan, 0)
        mean = float(values.mean())
        if n == 1:
            return TInterval(mean, np.nan, np.nan, 1)
        std = float(values.std(ddof=1))
        return TInterval(mean, std, float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)), n)
    finite = np.isfinite(values)
    n = finite.sum(axis)
    x = np.where(finite, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, x.sum(axis) / np.maximum(n, 1), np.nan)
        dev = np.where(finite, values - np.expand_dims(mean, axis), 0.0)
        std = np.where(n > 1, np.sqrt((dev ** 2).sum(axis) / np.maximum(n - 1, 1)), np.nan)
        half = np.where(n > 1, stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)) * std / np.sqrt(n), np.nan)
    return TInterval(mean, std, half, n)


def summarize(df: pd.DataFrame, metric: str = "test_acc", confidence: float = 0.95,
              by: str = "config", unit: str = "seed") -> pd.DataFrame:
    """Per config: mean, std, 95% t-interval and n of ``metric`` over seeds (last epoch of each run).

    ``unit`` is the column that tells the repeats apart: "seed", or "fold" for the folds of
    :func:`~mnistlab.experiments.cross_validate` (which share one seed).

    Returns
    -------
    pandas.DataFrame
        Indexed by config (first-appearance order), columns ``mean``, ``std``, ``ci_low``,
        ``ci_high``, ``ci_half`` and ``n``. With one seed, std and the interval are NaN.
    """
    if metric not in df.columns:
        raise KeyError(f"{metric!r} is not a column; available: {sorted(df.columns)}.")
    per_run = final_rows(df, (by, unit)) if "epoch" in df.columns else df
    rows = []
    for name, g in per_run.groupby(by, sort=False):
        mean, std, half, n = t_interval(g[metric].to_numpy(), confidence)
        rows.append({by: name, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half,
                     "ci_half": half, "n": n})
    return pd.DataFrame(rows).set_index(by)


def _per_seed(df: pd.DataFrame, metric: str) -> pd.Series:
    if metric not in df.columns:
        raise KeyError(f"{metric!r} is not a column; available: {sorted(df.columns)}.")
    if "config" in df.columns and df["config"].nunique() > 1:
        raise ValueError(f"compare takes one config per DataFrame; this one holds {sorted(df['config'].unique())}.")
    last = final_rows(df) if "epoch" in df.columns else df
    return last.groupby("seed")[metric].last()


def compare(df_a: pd.DataFrame, df_b: pd.DataFrame, metric: str = "test_acc", alpha: float = 0.05) -> dict:
    """Paired comparison of two configs over the seeds they share (b minus a).

    The same seed gives both runs the same data order and (for equal models) initial weights,
    so a paired t-test (:func:`scipy.stats.ttest_rel`) removes that shared noise.

    Returns
    -------
    dict
        ``a``, ``b`` (config names), ``n`` (shared seeds), ``mean_a``, ``mean_b``, ``diff``
        (mean of b - a), ``ci_low``, ``ci_high`` (95% t-interval of the difference), ``p_value``
        and ``verdict``: a :class:`Verdict` (HELPS / HURTS when p < alpha, by the sign of the
        difference, WITHIN_NOISE, or TOO_FEW_SEEDS with fewer than 2 shared seeds).
    """
    from scipy import stats

    a, b = _per_seed(df_a, metric), _per_seed(df_b, metric)
    seeds = a.index.intersection(b.index)
    name_a = str(df_a["config"].iloc[0]) if "config" in df_a.columns else "a"
    name_b = str(df_b["config"].iloc[0]) if "config" in df_b.columns else "b"
    out = {"a": name_a, "b": name_b, "metric": metric, "n": len(seeds),
           "mean_a": float(a.loc[seeds].mean()) if len(seeds) else np.nan,
           "mean_b": float(b.loc[seeds].mean()) if len(seeds) else np.nan}
    d = (b.loc[seeds] - a.loc[seeds]).to_numpy(dtype=float)
    mean, std, half, n = t_interval(d, 1 - alpha)
    out.update(diff=mean, ci_low=mean - half, ci_high=mean + half)
    if n < 2:
        out.update(p_value=np.nan, verdict=Verdict.TOO_FEW_SEEDS)
        return out
    if std == 0:  # identical differences on every seed: the t statistic is undefined
        p = 1.0 if mean == 0 else 0.0
    else:
        p = float(stats.ttest_rel(b.loc[seeds].to_numpy(float), a.loc[seeds].to_numpy(float)).pvalue)
    verdict = (Verdict.HELPS if mean > 0 else Verdict.HURTS) if p < alpha else Verdict.WITHIN_NOISE
    out.update(p_value=p, verdict=verdict)
    return out


def compare_steps(df: pd.DataFrame, metric: str = "test_acc", baseline: str | None = None,
                  alpha: float = 0.05) -> pd.DataFrame:
    """:func:`compare` each config with the one before it (or with ``baseline``), in order of appearance.

    Returns one row per comparison with the columns of :func:`compare`.
    """
    names = list(dict.fromkeys(df["config"]))
    if baseline is not None and baseline not in names:
        raise ValueError(f"baseline {baseline!r} is not among the configs {names}.")
    rows = []
    for prev, name in zip(names, names[1:]) if baseline is None else ((baseline, n) for n in names if n != baseline):
        rows.append(compare(df[df["config"] == prev], df[df["config"] == name], metric, alpha))
    return pd.DataFrame(rows)



def split_by_verdict(comparisons: pd.DataFrame, column: str = "b") -> dict[Verdict, list]:
    """Group the compared configs (``column``) of :func:`compare_steps` output by verdict.

    Returns ``{Verdict.HELPS: [...], Verdict.HURTS: [...], Verdict.WITHIN_NOISE: [...]}``; configs
    with too few seeds count as within noise.
    """
    out = {Verdict.HELPS: [], Verdict.HURTS: [], Verdict.WITHIN_NOISE: []}
    for name, verdict in zip(comparisons[column], comparisons["verdict"]):
        v = Verdict(verdict)
        out[v if v.beyond_noise else Verdict.WITHIN_NOISE].append(name)
    return out


def compare_to_best(df: pd.DataFrame, metric: str = "test_acc", alpha: float = 0.05) -> pd.DataFrame:
    """:func:`compare` the config with the highest mean ``metric`` (the leader, column ``a``) with every other.

    Returns one row per other config, in order of decreasing mean, with the columns of :func:`compare`.
    """
    means = summarize(df, metric)["mean"].sort_values(ascending=False, kind="stable")
    leader = means.index[0]
    rows = [compare(df[df["config"] == leader], df[df["config"] == other], metric, alpha) for other in means.index[1:]]
    return pd.DataFrame(rows, columns=None if rows else ["a", "b", "verdict"])


def failed_runs(df: pd.DataFrame, metric: str = "val_acc", chance: float = 0.1, margin: float = 0.1) -> pd.Series:
    """Which runs failed: diverged (NaN loss) or ended at chance level (final ``metric`` < chance + margin).

    A run that "trains" to 11% on ten balanced classes learned nothing, whether or not its loss
    became NaN, so both count as failed.

    Returns
    -------
    pandas.Series of bool
        One value per run, aligned with :func:`final_rows` of ``df``.
    """
    last = final_rows(df)
    if metric not in last.columns:
        raise KeyError(f"{metric!r} is not a column; available: {sorted(last.columns)}.")
    diverged = last["diverged"].fillna(False).astype(bool) if "diverged" in last.columns else False
    value = last[metric].astype(float)
    return (diverged | value.isna() | (value < chance + margin)).rename("failed")


def t_factor(n: int, confidence: float = 0.95) -> float:
    """How many standard deviations of the per-seed differences a paired mean difference must reach
    for a two-sided t-test with ``n`` seeds to call it real: t(1 - alpha/2, n - 1) / sqrt(n)."""
    from scipy import stats

    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1) / math.sqrt(n))


def wilson_interval(correct, n, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of each proportion ``correct / n`` (SciPy ``binomtest``); always inside [0, 1].

    Parameters
    ----------
    correct, n : int or array of int
        Successes and trials; ``n = 0`` gives NaN.
    confidence : float

    Returns
    -------
    (low, high) : two float arrays of the shape of ``n``
    """
    from scipy.stats import binomtest

    k, m = np.broadcast_arrays(np.asarray(correct, dtype=np.int64), np.asarray(n, dtype=np.int64))
    low, high = np.full(k.size, np.nan), np.full(k.size, np.nan)
    for i, (ki, mi) in enumerate(zip(k.ravel(), m.ravel())):
        if mi > 0:
            ci = binomtest(int(ki), int(mi)).proportion_ci(confidence, method="wilson")
            low[i], high[i] = ci.low, ci.high
    return low.reshape(k.shape), high.reshape(k.shape)
