"""The source documents' claims, checked: one register of quotes and one table for every notebook.

The notebooks set out to reproduce five documents (:data:`SOURCES`, named by the file their text was
captured in). Every claims table of the project is built here the same way:

1. a :class:`Quote` of :data:`QUOTES` holds what a source says, copied from its file: ``claim``
   (the source's words) and ``published`` (its figure, as written there, e.g. ``"97.25%"``), with
   the figure as a number (``value``: a point or a ``(low, high)`` range) and the slack its own
   wording gives (``tolerance``: "around 10%");
2. a notebook or a study measures the same thing and turns it into a row with one of the rules
   :func:`value` (a published number against our mean and 95% interval), :func:`effect` (a claimed
   effect against a paired comparison over seeds) or :func:`check` (a qualitative claim against a
   test the caller computes from its numbers); the verdict is always computed by the rule;
3. :func:`claims_table` collects the rows into a DataFrame, and :func:`missing_quotes` checks
   that every quoted fragment occurs in the source's file (the tests run it on every table).

Verdicts (:data:`VERDICTS`): ``"reproduced"`` (the published value lies in our 95% interval,
widened by the source's own tolerance; the claimed effect is there beyond noise; the qualitative
test holds), ``"higher here"`` / ``"lower here"`` (our interval lies above / below the published
value), ``"not reproduced"`` (the claimed effect is within noise here, or the test fails),
``"partly reproduced"``, ``"contradicted"`` (the opposite effect, beyond noise) and
``"not applicable"`` (the source describes MNIST and this run is on another dataset).

Targets the project set itself (a recipe at 99.6%, an ensemble at 99.7%, ...) are no source's
claims and have no place here; the README lists them with their status.

This module computes only (no file is read except by :func:`missing_quotes`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..experiments.stats import t_factor

__all__ = [
    "SOURCES", "WANDB_1", "WANDB_2", "LENET", "MEDIUM", "MLM",
    "REPRODUCED", "HIGHER", "LOWER", "NOT_REPRODUCED", "PARTLY", "CONTRADICTED", "NOT_APPLICABLE", "VERDICTS",
    "NOT_MNIST", "Quote", "QUOTES", "SEP", "COLUMNS", "SHOWN",
    "quote", "fragments", "value", "effect", "check", "claims_table", "missing_quotes",
]

#: The five source documents: file name (as in the project's shared ``seeds/`` folder) -> short name.
SOURCES: dict[str, str] = {
    "000_f40a32f81217c1d0.txt": "W&B, MNIST - A Deep Dive (part 1)",
    "001_bdd06519c14a18cc.txt": "W&B, MNIST - A Deep Dive (part 2)",
    "002_d29a848b9863848d.txt": "PyTorch repository README (LeNet progression)",
    "003_93ba5a5184406ca4.txt": "Medium, MNIST - Exploration to Execution",
    "004_e002c7143efbbe25.txt": "Machine Learning Mastery, Keras CNN for MNIST",
}
WANDB_1, WANDB_2, LENET, MEDIUM, MLM = SOURCES

REPRODUCED, HIGHER, LOWER = "reproduced", "higher here", "lower here"
NOT_REPRODUCED, PARTLY, CONTRADICTED, NOT_APPLICABLE = "not reproduced", "partly reproduced", "contradicted", "not applicable"
#: Every verdict a row can carry.
VERDICTS = (REPRODUCED, HIGHER, LOWER, NOT_REPRODUCED, PARTLY, CONTRADICTED, NOT_APPLICABLE)

NOT_MNIST = "the source describes MNIST, this run is on another dataset"

#: Separates the fragments of one quote that stand apart in the source (each must occur in the file).
SEP = " … "

#: Columns of :func:`claims_table`; :data:`SHOWN` are the ones a notebook displays.
COLUMNS = ["source", "document", "claim", "published", "measured", "verdict", "rule",
           "published_low", "published_high", "measured_value", "ci_low", "ci_high", "n", "key"]
SHOWN = COLUMNS[:7]


@dataclass(frozen=True)
class Quote:
    """What one source says, copied from its file.

    Parameters
    ----------
    source : str
        The file name, a key of :data:`SOURCES`.
    claim : str
        The source's words; fragments that stand apart in the source are joined by :data:`SEP`.
    published : str
        The figure (or, for a qualitative claim, the key words) exactly as the file writes it.
    value : float or (float, float), optional
        The published figure as a number on the scale of the measurement (accuracies as fractions,
        times in seconds), or a ``(low, high)`` range; None for qualitative claims.
    tolerance : float
        Slack the source's own wording gives ("around 10%": 0.01); 0 when it states a figure.
    """

    source: str
    claim: str
    published: str
    value: float | tuple[float, float] | None = None
    tolerance: float = 0.0

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}; one of {list(SOURCES)}.")
        if not self.claim.strip() or not self.published.strip():
            raise ValueError("a quote needs the source's words (claim) and its figure (published).")
        if self.tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {self.tolerance}.")

    @property
    def bounds(self) -> tuple[float, float]:
        """The published value as ``(low, high)`` (equal for a single figure; NaN when there is none)."""
        if self.value is None:
            return (math.nan, math.nan)
        if isinstance(self.value, tuple):
            low, high = sorted(float(v) for v in self.value)
            return (low, high)
        return (float(self.value), float(self.value))


_LENET_RESULTS = {  # the README's results table: "all model accuracies are an average after 5 simulations"
    "vanilla": ("Vanilla 97.25%", "97.25%"), "normalization": ("Normalization 97.98%", "97.98%"),
    "batch64": ("Batch 64 98.36%", "98.36%"), "batch32": ("Batch 32 98.48%", "98.48%"),
    "lr": ("0.0005 Learning rate 98.73%", "98.73%"), "deeper": ("Deeper architecture 99.05%", "99.05%"),
    "sgd": ("0.001 Learning rate 99.2%", "99.2%"),
}
_LENET_FAILED = {  # "Failed Ideas": "they either hurt or didn't improve accuracy"
    "batchnorm": "Batch Norm", "hflip": "Horizontal flip", "rotate": "Random rotate by 45 degrees",
    "translate": "Random translate by 7 pixels", "small_batch": "Batch size < 16",
}

#: Every quote a claims table uses, by key ("<source>.<what>"). Each claim and published fragment
#: occurs verbatim in its source's file (tests/test_claims.py checks it against the files).
QUOTES: dict[str, Quote] = {
    # 001, the W&B report (part 2; part 1, 000, repeats these sentences)
    "wandb.final": Quote(WANDB_2, "The model’s final validation accuracy was 99.48%", "99.48%", 0.9948),
    "wandb.stop_epoch": Quote(WANDB_2, "We could potentially have used EarlyStopping here and truncated training at "
                                       "around epoch 15 when we reached 99.3% val accuracy", "around epoch 15", 15.0),
    "wandb.stop_cost": Quote(WANDB_2, "final validation accuracy was 99.48%" + SEP + "truncated training at around epoch 15 "
                                      "when we reached 99.3% val accuracy", "99.48%" + SEP + "99.3%", 0.9948 - 0.993),
    "wandb.per_class": Quote(WANDB_2, "the model classifies over 99% of the digits in each class", "over 99%", 0.99),
    # 002, the PyTorch repository's README: the LeNet progression and what did not help
    "lenet.untrained": Quote(LENET, "a non-trained model with random weights should achieve around 10% accuracy",
                             "around 10%", 0.10, tolerance=0.01),
    **{f"lenet.{k}": Quote(LENET, claim, fig, round(float(fig.rstrip("%")) / 100, 6)) for k, (claim, fig) in _LENET_RESULTS.items()},
    **{f"lenet.failed.{k}": Quote(LENET, "they either hurt or didn't improve accuracy", idea)
       for k, idea in _LENET_FAILED.items()},
    "lenet.tsne_untrained": Quote(LENET, "In the second plot, we observe the classes are separated a bit more",
                                  "separated a bit more"),
    "lenet.tsne_trained": Quote(LENET, "with the fully trained model, the classes are almost completely separated in "
                                       "tight clusters", "almost completely separated in tight clusters"),
    # 003, the Medium article
    "medium.size": Quote(MEDIUM, "It contains 60,000 training images and 10,000 testing images",
                         "60,000 training images and 10,000 testing images"),
    "medium.least_ink": Quote(MEDIUM, "class 1 takes the least number of white pixels or more dark pixels", "class 1"),
    "medium.pixels": Quote(MEDIUM, "most pixels values are ZERO(black), some are ONE(white), few between 0 and 1 for "
                                   "all the classes", "most pixels values are ZERO(black), some are ONE(white), few "
                                                      "between 0 and 1"),
    "medium.pca_clusters": Quote(MEDIUM, "the data/classes have been split into 10 different clusters/groups",
                                 "10 different clusters/groups", 10.0),
    "medium.pca_not_enough": Quote(MEDIUM, "the visualization looks good even with just 2 dimensions, its not enough to "
                                           "separate the classes", "not enough to separate the classes"),
    "medium.tsne_split": Quote(MEDIUM, "here we can clearly see the classes have been split well", "split well"),
    "medium.tsne_minutes": Quote(MEDIUM, "here I used Multicore TSNE which took around 10–15 mins", "10–15 mins",
                                 (600.0, 900.0)),
    "medium.hardest": Quote(MEDIUM, "the classes 3 and 8 have some tough time", "3 and 8"),
    "medium.easiest": Quote(MEDIUM, "others are pretty good especially (0,1,6)", "(0,1,6)"),
    "medium.train_acc": Quote(MEDIUM, "after 10 epochs the train accuracy reaches 99%", "99%", 0.99),
    "medium.extra_conv": Quote(MEDIUM, "the accuracies got improved a bit by adding another Conv layer",
                               "improved a bit"),
    "medium.rmsprop": Quote(MEDIUM, "RMS prop is the clear winner in this race", "the clear winner"),
    "medium.to_normal": Quote(MEDIUM, "The uniform distribution of weights gets slowly transformed to normal "
                                      "distribution during the training", "transformed to normal distribution"),
    "medium.fc1_zero": Quote(MEDIUM, "observe that Fc1 has a lot of neurons so most of the neurons weights are very "
                                     "closed to zero", "most of the neurons weights are very closed to zero"),
    "medium.error_rate": Quote(MEDIUM, "The current error rate is ~ 0.21% by using Convolution neural networks with "
                                       "data augmentation", "~ 0.21%", 0.0021),
    # 004, Machine Learning Mastery's Keras tutorial
    "mlm.error_range": Quote(MLM, "achieve a classification accuracy of above 99%, with an error rate between 0.4 %and "
                                  "0.2% on the hold out test dataset", "between 0.4 %and 0.2%", (0.002, 0.004)),
    "mlm.final": Quote(MLM, "we can see that the model achieved an accuracy of 99.090%", "99.090%", 0.9909),
    "mlm.estimate": Quote(MLM, "reasonably close to the estimated 99.753% with a standard deviation of about half a "
                               "percent", "99.753%", 0.99753),
}


def quote(key: str | Quote) -> Quote:
    """The :class:`Quote` of ``key`` in :data:`QUOTES` (a Quote is returned as it is)."""
    if isinstance(key, Quote):
        return key
    try:
        return QUOTES[key]
    except KeyError:
        raise KeyError(f"no quote {key!r}; the keys are {sorted(QUOTES)}.") from None


def fragments(text: str) -> list[str]:
    """The fragments of a quoted ``claim`` or ``published`` text (split at :data:`SEP`), whitespace collapsed."""
    return [" ".join(f.split()) for f in str(text).split(SEP.strip()) if f.strip()]


# --------------------------------------------------------------------------------------------
# rows


def _fmt(x: float, scale: float, unit: str, digits: int) -> str:
    return "nan" if not np.isfinite(x) else f"{x * scale:,.{digits}f}{unit}"


def _key(key: str | Quote) -> str:
    return key if isinstance(key, str) else next((k for k, q in QUOTES.items() if q == key), "")


def _row(q: Quote, measured: str, verdict: str, rule: str, *, applicable: bool, reason: str, measured_value=math.nan,
         ci=(math.nan, math.nan), n=0, key: str = "") -> dict:
    if not applicable:
        verdict, rule = NOT_APPLICABLE, f"{reason}; {rule}"
    low, high = q.bounds
    return {"source": q.source, "document": SOURCES[q.source], "claim": q.claim, "published": q.published,
            "measured": measured, "verdict": verdict, "rule": rule, "published_low": low, "published_high": high,
            "measured_value": float(measured_value), "ci_low": float(ci[0]), "ci_high": float(ci[1]), "n": int(n),
            "key": key}


def value(key: str | Quote, values, *, subject: str, scale: float = 100.0, unit: str = "%", digits: int = 2,
          per: str = "runs", confidence: float = 0.95, applicable: bool = True, reason: str = NOT_MNIST) -> dict:
    """Check a published number (or range) against our measurements of the same thing.

    Rule: our mean and its Student-t interval over ``values`` (a single value: the interval is that
    value) are compared with the published value, widened by the quote's ``tolerance``: any
    overlap is ``"reproduced"``; our interval wholly above it is ``"higher here"``, wholly below
    ``"lower here"``.

    Parameters
    ----------
    key : str or Quote
        The quote (a key of :data:`QUOTES`); it must carry a ``value``.
    values : float or array-like
        Our per-seed (per-fold, ...) measurements, on the scale of ``Quote.value``.
    subject : str
        What was measured, printed before the number (e.g. ``"vanilla LeNet-5, 5 seeds"``).
    scale, unit, digits : float, str, int
        How the numbers print (``scale=100, unit="%"`` for fractions).
    per : str
        What one of ``values`` is (``"seeds"``, ``"folds"``), printed with their count.
    confidence : float
        Of the interval.
    applicable : bool
        False when the claim cannot be checked on this run: the verdict is ``"not applicable"``.
    reason : str
        Why not (default: the run is not on MNIST, which the source describes); starts the rule.

    Returns
    -------
    dict
        A row for :func:`claims_table`.
    """
    q = quote(key)
    if q.value is None:
        raise ValueError(f"the quote {q.claim!r} has no published value; use check() or effect().")
    v = np.atleast_1d(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    if not len(v):
        raise ValueError(f"no finite measurement for {q.claim!r}.")
    mean, n = float(v.mean()), len(v)
    half = float(t_factor(n, confidence) * v.std(ddof=1)) if n > 1 else 0.0
    lo, hi = mean - half, mean + half
    low, high = q.bounds
    tol = q.tolerance
    if lo <= high + tol and hi >= low - tol:
        verdict = REPRODUCED
    else:
        verdict = HIGHER if lo > high + tol else LOWER
    f = lambda x: _fmt(x, scale, unit, digits)  # noqa: E731
    measured = f"{subject}: {f(mean)}" + (f" ({_fmt(lo, scale, '', digits)} to {f(hi)}, {n} {per})" if n > 1 else "")
    published = f"[{f(low)}, {f(high)}]" if low != high else f(low)
    where = f"our {confidence:.0%} interval" if n > 1 else "our value"
    rule = (f"published {published}{f' ± {f(tol)}' if tol else ''} against {where}: overlap = reproduced, "
            "else higher or lower here")
    return _row(q, measured, verdict, rule, applicable=applicable, reason=reason, measured_value=mean, ci=(lo, hi), n=n,
                key=_key(key))


def effect(key: str | Quote, comparison: Mapping, *, subject: str, expected: Iterable[str] = ("helps",),
           scale: float = 100.0, unit: str = " points", digits: int = 2, applicable: bool = True,
           reason: str = NOT_MNIST) -> dict:
    """Check a claimed effect against a paired comparison over seeds (:func:`mnistlab.experiments.compare`).

    Rule: ``"reproduced"`` when the comparison's verdict is one the claim expects (``"helps"`` for
    "X improves accuracy"; ``("hurts", "within noise")`` for "X hurt or didn't improve"),
    ``"contradicted"`` when it is the opposite beyond noise, ``"not reproduced"`` when the claimed
    effect is within noise here (or there were too few seeds to tell).

    Parameters
    ----------
    key : str or Quote
        The quote.
    comparison : mapping
        ``diff``, ``ci_low``, ``ci_high``, ``n`` and ``verdict`` (b minus a), as ``compare`` gives them.
    subject : str
        The comparison in words, e.g. ``"conv2 + fc2 minus conv + fc"``.
    expected : iterable of str
        The verdicts (``"helps"``, ``"hurts"``, ``"within noise"``) that agree with the claim.

    Returns
    -------
    dict
        A row for :func:`claims_table`.
    """
    q = quote(key)
    expected = {str(e) for e in expected}
    got = str(comparison["verdict"])
    beyond = {"helps", "hurts"}
    if got in expected:
        verdict = REPRODUCED
    elif got in beyond and (beyond - {got}) & expected:   # the opposite of what the claim expects
        verdict = CONTRADICTED
    else:
        verdict = NOT_REPRODUCED
    f = lambda x: f"{x * scale:+.{digits}f}"  # noqa: E731
    n = int(comparison.get("n", 0))
    measured = (f"{subject}: {f(comparison['diff'])}{unit} ({f(comparison['ci_low'])} to {f(comparison['ci_high'])}, "
                f"{n} seeds, paired): {got}")
    rule = (f"paired t-test at 5%: {' or '.join(sorted(expected))} = reproduced, the opposite beyond noise = "
            "contradicted, else not reproduced")
    return _row(q, measured, verdict, rule, applicable=applicable, reason=reason, measured_value=comparison["diff"],
                ci=(comparison["ci_low"], comparison["ci_high"]), n=n, key=_key(key))


def check(key: str | Quote, measured: str, holds: bool, *, rule: str, partly: bool = False,
          applicable: bool = True, reason: str = NOT_MNIST) -> dict:
    """Check a qualitative claim with a test the caller computes from its numbers.

    Parameters
    ----------
    key : str or Quote
        The quote.
    measured : str
        The numbers the test was computed from, in words.
    holds : bool
        The test's result (computed, e.g. ``least == "1"``): ``"reproduced"`` when true.
    rule : str
        The test in words (e.g. ``"the class with the least mean ink is 1"``).
    partly : bool
        When ``holds`` is false: ``"partly reproduced"`` if true, else ``"not reproduced"``.
    applicable, reason : bool, str
        As for :func:`value`.

    Returns
    -------
    dict
        A row for :func:`claims_table`.
    """
    verdict = REPRODUCED if bool(holds) else PARTLY if bool(partly) else NOT_REPRODUCED
    return _row(quote(key), measured, verdict, rule, applicable=applicable, reason=reason, key=_key(key))


# --------------------------------------------------------------------------------------------
# the table, and its quotes checked against the files


def claims_table(rows: Iterable[Mapping]) -> pd.DataFrame:
    """Collect rows of :func:`value`, :func:`effect` and :func:`check` into one claims table.

    Parameters
    ----------
    rows : iterable of mapping
        The rows, in the order the table shows them.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`: ``source`` (the file name) and ``document`` (its short name),
        ``claim`` and ``published`` (quoted from the file), ``measured`` (ours, in words),
        ``verdict`` (one of :data:`VERDICTS`), ``rule`` (how the verdict was computed), then the
        numbers: ``published_low`` / ``published_high``, ``measured_value``, ``ci_low`` /
        ``ci_high`` and ``n`` (NaN / 0 for qualitative claims), and ``key``: the quote's key in
        :data:`QUOTES` ("" for a quote from elsewhere).

    Raises
    ------
    ValueError
        For a row without a known source, a quote or a known verdict.
    """
    rows = [dict(r) for r in rows]
    for i, r in enumerate(rows):
        missing = set(COLUMNS) - set(r)
        if missing:
            raise ValueError(f"row {i} lacks {sorted(missing)}; build rows with value(), effect() or check().")
        if r["source"] not in SOURCES:
            raise ValueError(f"row {i}: unknown source {r['source']!r}; one of {list(SOURCES)}.")
        if r["verdict"] not in VERDICTS:
            raise ValueError(f"row {i}: verdict {r['verdict']!r} is not one of {VERDICTS}.")
        if not str(r["claim"]).strip() or not str(r["published"]).strip():
            raise ValueError(f"row {i}: a claim and its published figure are quoted from the source.")
    return pd.DataFrame(rows, columns=COLUMNS)


def _normalised(text: str) -> str:
    return " ".join(text.split())


def missing_quotes(table: pd.DataFrame | Sequence[Quote], folder: str | Path) -> pd.DataFrame:
    """The quoted fragments of a claims table (or of quotes) that do not occur in their source's file.

    Parameters
    ----------
    table : pandas.DataFrame or sequence of Quote
        A :func:`claims_table` (columns ``source``, ``claim``, ``published``), or quotes.
    folder : str or Path
        The folder holding the source files (their text, as captured).

    Returns
    -------
    pandas.DataFrame
        One row per missing fragment: ``row``, ``source``, ``field`` (``"claim"`` / ``"published"``
        / ``"source"`` for an unknown or absent file) and ``fragment``; empty when every quote is exact.
    """
    if not isinstance(table, pd.DataFrame):
        table = pd.DataFrame([{"source": q.source, "claim": q.claim, "published": q.published} for q in table])
    folder, texts, out = Path(folder), {}, []
    for i, r in enumerate(table.itertuples(index=False)):
        source = str(r.source)
        path = folder / source
        if source not in SOURCES or not path.is_file():
            out.append({"row": i, "source": source, "field": "source", "fragment": source})
            continue
        if source not in texts:
            texts[source] = _normalised(path.read_text(encoding="utf-8"))
        for field in ("claim", "published"):
            for frag in fragments(getattr(r, field)):
                if frag not in texts[source]:
                    out.append({"row": i, "source": source, "field": field, "fragment": frag})
    return pd.DataFrame(out, columns=["row", "source", "field", "fragment"])

