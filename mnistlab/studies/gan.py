"""Judge a GAN run with the trained classifier, and read its health (compute only: no matplotlib here).

The runs come from the harness: :func:`mnistlab.train_gan` trains what a
:class:`~mnistlab.GANConfig` describes (:mod:`mnistlab.training.gan`: losses, loop, EMA,
checkpoints in the one format, :class:`~mnistlab.GANSampleRecorder`). This module computes
results from them.

Judging (:func:`evaluate_samples`, :class:`FrechetDistance`, :func:`reference_distances`,
:func:`precision_recall`, :func:`nearest_train_distances`): the class histogram of samples
as the classifier sees them (coverage, KL divergence to uniform), its mean confidence, the
fraction of conditional samples classified as the requested class, and the Frechet distance
between Gaussian fits of the classifier's penultimate features (torchmetrics'
``FrechetInceptionDistance`` with the classifier as its feature extractor: no Inception weights,
which would mean little on 28x28 digits anyway). :func:`diagnose` reads a run's health from its
training dynamics *and* the judge's numbers.

Example
-------
>>> import mnistlab as ml                                              # doctest: +SKIP
>>> from mnistlab.studies import gan as gs
>>> run = ml.train_gan(ml.GAN_RECIPES["sngan"].but(gan="cdcgan"), ml.load_dataset("mnist", "train"))
>>> judge = ml.load_pretrained()
>>> gs.evaluate_run(run, judge, ml.load_dataset("mnist", "test"), n=10000)
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data import ImageSet, as_imageset
from ..models.registry import preprocessing_of
from ..training.callbacks import Callback
from ..training.config import EVAL_BATCH_SIZE
from ..training.gan import _generator_of, record_steps, sample
from ..training.loop import predict

__all__ = [
    "EvaluationRecorder", "slerp", "interpolate", "class_grid",
    "ClassifierFeatures", "FrechetDistance", "frechet_distance", "class_histogram", "evaluate_samples",
    "evaluate_run", "reference_distances", "degrade", "precision_recall", "precision_recall_available",
    "nearest_train_distances", "check_targets", "diagnose",
]


# ------------------------------------------------------------------------------------- recorder

class EvaluationRecorder(Callback):
    """Evaluate samples every ``every`` steps (and at the last step): the quality table over training.

    Parameters
    ----------
    classifier : nn.Module
        The judge (e.g. :func:`mnistlab.load_pretrained`).
    reference : ImageSet or uint8 tensor
        Real images the Frechet distance compares against (the test set).
    every : int
    n : int
        Samples per evaluation (the Frechet distance depends on ``n``: compare it with a floor
        computed on the same number of images).
    seed : int
    use_ema : bool
    frechet : FrechetDistance, optional
        Reuse one already built on ``reference`` (its statistics are computed once).

    Attributes
    ----------
    rows : list of dict
        One dict of :func:`evaluate_samples` numbers (plus ``step``, ``elapsed``) per evaluation.
        A resumed run appends to the rows already held.

    Notes
    -----
    It has an ``artifact_name`` (its settings, the judge's weights and the reference set) and
    ``save_artifact`` / ``load_artifact``, so :func:`mnistlab.experiments.run_gan` keeps the table
    beside the cached run and a cache hit fills it without training.
    """

    def __init__(self, classifier: nn.Module, reference=None, every: int = 500, n: int = 2000, seed: int = 0,
                 use_ema: bool = True, frechet: FrechetDistance | None = None):
        if reference is None and frechet is None:
            raise ValueError("EvaluationRecorder needs reference images or a FrechetDistance (frechet=).")
        self.classifier, self.every, self.n, self.seed, self.use_ema = classifier, every, n, seed, use_ema
        self.frechet = frechet if frechet is not None else FrechetDistance(classifier, reference)
        self.rows: list[dict] = []

    def on_train_begin(self, state):
        """Plan the evaluation steps (every ``every`` and the last)."""
        self._steps = record_steps(state.steps, self.every) - {0}

    def on_batch_end(self, state):
        """Judge ``n`` fresh samples at the planned steps."""
        if state.step in self._steps:
            row = evaluate_samples(state.sampler(self.use_ema), self.classifier, n=self.n, seed=self.seed,
                                   frechet=self.frechet, device=state.device)
            self.rows.append({"step": state.step, "elapsed": state.logs.get("elapsed"), **row})

    @property
    def table(self) -> pd.DataFrame:
        """The evaluations as a DataFrame, one row per step."""
        return pd.DataFrame(self.rows)

    @property
    def artifact_name(self) -> str:
        """``gan-evaluations-<hash>`` of its settings, the judge's weights and the Frechet reference set."""
        from ..experiments.cache import fingerprint
        from ..training.recorder import _settings_hash

        return "gan-evaluations-" + _settings_hash(
            {"every": self.every, "n": self.n, "seed": self.seed, "use_ema": self.use_ema,
             "judge": fingerprint(self.classifier), "reference": self.frechet.reference_fingerprint})

    def save_artifact(self, path) -> None:
        """Write the rows to one ``.npz`` file at ``path`` (their JSON, atomically)."""
        import json

        from ..training.recorder import _write_npz

        text = json.dumps(self.rows, allow_nan=True)  # plain numbers; NaN (no condition) reads back as NaN
        _write_npz(Path(path), {"rows": np.frombuffer(text.encode(), dtype=np.uint8)})

    def load_artifact(self, path) -> "EvaluationRecorder":
        """Replace the rows with those :meth:`save_artifact` wrote to ``path``; return the recorder."""
        import json

        with np.load(Path(path), allow_pickle=False) as z:
            if "rows" not in z.files:
                raise ValueError(f"{path} was not written by EvaluationRecorder.save_artifact (no 'rows' entry).")
            self.rows = json.loads(bytes(z["rows"]).decode())
        return self


# -------------------------------------------------------------------------------------- sampling

def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for GAN latents): ``steps`` points from z0 to z1.

    Gaussian noise concentrates near a sphere, so the straight line between two noise vectors
    passes through unusually short vectors; the great-circle path keeps their length typical.

    Returns
    -------
    tensor (steps, nz)
    """
    z0, z1 = z0.flatten().double(), z1.flatten().double()
    if steps < 2:
        raise ValueError(f"slerp needs steps >= 2, got {steps}.")
    cos = torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1, 1)
    omega = torch.arccos(cos)
    t = torch.linspace(0, 1, steps, dtype=torch.float64)[:, None]
    if omega.abs() < 1e-6:  # (anti)parallel: fall back to the straight line
        return ((1 - t) * z0 + t * z1).float()
    return ((torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)).float()


def interpolate(source, steps: int = 10, seed: int = 0, label: int | None = None, use_ema: bool = True) -> torch.Tensor:
    """Images along the spherical path between two random noise vectors: uint8 (steps, 28, 28).

    ``label`` fixes the class for a conditional generator (default 0).
    """
    g = _generator_of(source, use_ema)
    z = torch.randn(2, g.nz, generator=torch.Generator().manual_seed(seed))
    labels = torch.full((steps,), 0 if label is None else int(label)) if g.num_classes else None
    return sample(g, steps, labels=labels, z=slerp(z[0], z[1], steps))


def class_grid(source, per_class: int = 10, seed: int = 0, use_ema: bool = True) -> torch.Tensor:
    """Conditional samples, row = class, column = one noise vector shared by the whole column.

    Returns
    -------
    uint8 tensor (num_classes * per_class, 28, 28), row-major (class 0 first).
    """
    g = _generator_of(source, use_ema)
    if not g.num_classes:
        raise ValueError("class_grid needs a class-conditional generator (create_gan('cdcgan')).")
    z = torch.randn(per_class, g.nz, generator=torch.Generator().manual_seed(seed)).repeat(g.num_classes, 1)
    labels = torch.arange(g.num_classes).repeat_interleave(per_class)
    return sample(g, len(z), labels=labels, z=z)


# ------------------------------------------------------------------------------------ evaluation

class ClassifierFeatures(nn.Module):
    """The classifier's penultimate features of images, as a feature extractor for torchmetrics.

    Takes uint8 images (B, 28, 28) or (B, 1, 28, 28), or floats in [0, 1]; normalises them as the
    classifier declares (``preprocessing``) and returns ``classifier.features(x)`` (B, D). Always
    stays in eval mode (batch norm and dropout frozen).
    """

    def __init__(self, classifier: nn.Module):
        super().__init__()
        if not hasattr(classifier, "features"):
            raise TypeError(f"{type(classifier).__name__} has no features() method; use a model from "
                            "mnistlab.create_model or mnistlab.load_pretrained().")
        self.classifier = classifier.eval()
        pre = preprocessing_of(classifier)
        self.mean, self.std = pre.mean, pre.std
        with torch.no_grad():
            self.num_features = int(self.forward(torch.zeros(1, 28, 28, dtype=torch.uint8)).shape[1])

    def train(self, mode: bool = True) -> "ClassifierFeatures":
        """Stay in eval mode whatever is asked (torchmetrics must not switch batch norm to batch statistics)."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Features (B, D) of uint8 or [0, 1] float images (B, 28, 28) or (B, 1, 28, 28)."""
        dev = next(self.classifier.parameters()).device
        x = images.to(dev)
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        if x.ndim == 3:
            x = x.unsqueeze(1)
        return self.classifier.features((x - self.mean) / self.std).float().flatten(1)


def _u8(images) -> torch.Tensor:
    if isinstance(images, ImageSet):
        return images.images
    t = torch.as_tensor(images)
    return as_imageset(t).images if t.dtype != torch.uint8 or t.ndim == 4 else t


class FrechetDistance:
    """Frechet distance to a fixed reference set in the classifier's feature space (torchmetrics FID).

    The reference statistics are computed once; each call adds one set of images and returns the
    distance ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))`` between Gaussian fits of the
    two sets' penultimate features. Not comparable to Inception FID values.

    Parameters
    ----------
    classifier : nn.Module
    reference : ImageSet or uint8 tensor (N, 28, 28)
    batch_size : int
    """

    def __init__(self, classifier: nn.Module, reference, batch_size: int = EVAL_BATCH_SIZE):
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.extractor = ClassifierFeatures(classifier)
        self.batch_size = batch_size
        self.metric = FrechetInceptionDistance(feature=self.extractor, reset_real_features=False)
        self.metric.to(next(classifier.parameters()).device)
        ref = _u8(reference)
        self.n_reference = len(ref)
        from ..experiments.cache import fingerprint

        self.reference_fingerprint = fingerprint(ref)
        for i in range(0, len(ref), batch_size):
            self.metric.update(ref[i:i + batch_size], real=True)

    def __call__(self, images) -> float:
        """Distance between ``images`` (uint8 (N, 28, 28), N >= 2) and the reference set."""
        images = _u8(images)
        if len(images) < 2:
            raise ValueError("The Frechet distance needs at least 2 images (a covariance).")
        self.metric.reset()  # keeps the reference statistics (reset_real_features=False)
        for i in range(0, len(images), self.batch_size):
            self.metric.update(images[i:i + self.batch_size], real=False)
        return float(self.metric.compute())


def frechet_distance(images, reference, classifier: nn.Module) -> float:
    """Frechet distance between two image sets in ``classifier``'s penultimate feature space.

    ≈ 0 for a set against itself; grows as the sets' feature statistics part.
    """
    return FrechetDistance(classifier, reference)(images)


def class_histogram(probs: np.ndarray, num_classes: int | None = None) -> pd.DataFrame:
    """Counts and shares of the classes the classifier assigns (argmax of ``probs`` (N, C))."""
    probs = np.asarray(probs)
    k = num_classes or probs.shape[1]
    counts = np.bincount(probs.argmax(1), minlength=k)
    return pd.DataFrame({"class": np.arange(k), "count": counts, "share": counts / counts.sum()})


def evaluate_samples(source, classifier: nn.Module, n: int = 10000, seed: int = 0, frechet: FrechetDistance | None = None,
                     device=None, use_ema: bool = True, images=None, requested=None) -> dict:
    """Judge ``n`` samples with the classifier.

    Parameters
    ----------
    source : GANRun, GAN or generator, or None with ``images`` given
        A conditional generator is asked for ``i % num_classes`` (balanced classes).
    classifier : nn.Module
    n, seed : int
    frechet : FrechetDistance, optional
        Adds ``frechet`` (distance to its reference set) to the result.
    images, requested : optional
        Judge these uint8 images (and requested labels) instead of sampling.

    Returns
    -------
    dict
        ``n``; ``coverage`` (classes holding at least 1% of the samples); ``kl_uniform`` (KL divergence
        of the class histogram from uniform, nats); ``min_share``, ``max_share``,
        ``max_share_deviation`` (largest |share - 1/C|); ``mean_confidence`` (mean top
        probability); ``cond_accuracy`` (fraction classified as requested, NaN if unconditional);
        ``frechet`` (NaN without ``frechet``); ``shares`` (list of the C class shares).
    """
    if images is None:
        g = _generator_of(source, use_ema)
        if g.num_classes and requested is None:
            requested = torch.arange(n) % g.num_classes
        images = sample(g, n, labels=requested if g.num_classes else None, seed=seed, device=device)
    images = _u8(images)
    probs = predict(classifier, images)
    hist = class_histogram(probs)
    share = hist["share"].to_numpy()
    k = len(share)
    nz = share[share > 0]
    pred = probs.argmax(1)
    return {
        "n": int(len(images)),
        "coverage": int((share >= 0.01).sum()),
        "kl_uniform": float((nz * np.log(nz * k)).sum()),
        "min_share": float(share.min()), "max_share": float(share.max()),
        "max_share_deviation": float(np.abs(share - 1 / k).max()),
        "mean_confidence": float(probs.max(1).mean()),
        "cond_accuracy": float((pred == np.asarray(requested)).mean()) if requested is not None else float("nan"),
        "frechet": frechet(images) if frechet is not None else float("nan"),
        "shares": [float(s) for s in share],
    }


def evaluate_run(run, classifier: nn.Module, reference, n: int = 10000, seed: int = 1, use_ema: bool = True,
                 frechet: FrechetDistance | None = None) -> dict:
    """:func:`evaluate_samples` of ``n`` fresh samples with the Frechet distance to ``reference``.

    ``seed`` defaults to 1 so the final judgement uses other noise than the snapshots (seed 0).
    """
    frechet = frechet or FrechetDistance(classifier, reference)
    return evaluate_samples(run, classifier, n=n, seed=seed, frechet=frechet, use_ema=use_ema)


def degrade(images, kind: str, amount: float, seed: int = 0) -> torch.Tensor:
    """A damaged copy of uint8 images: ``"blur"`` (Gaussian, sigma = amount pixels) or ``"noise"`` (std = amount, pixels in [0, 1]).

    Uses torchvision's ``gaussian_blur``; noise is seeded.
    """
    x = _u8(images).float().div(255.0).unsqueeze(1)
    if kind == "blur":
        from torchvision.transforms.functional import gaussian_blur

        k = 2 * math.ceil(3 * amount) + 1
        x = gaussian_blur(x, [k, k], [amount, amount])
    elif kind == "noise":
        x = x + amount * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    else:
        raise ValueError(f"kind must be 'blur' or 'noise', not {kind!r}.")
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)[:, 0]


def reference_distances(train, test, classifier: nn.Module, n: int | None = None, blur: float = 1.0,
                        noise: float = 0.3, seed: int = 0, frechet: FrechetDistance | None = None) -> pd.DataFrame:
    """Frechet distances of real image sets to the test set: the scale that gives GAN numbers meaning.

    Rows: ``train vs test`` (two independent real samples: the floor a perfect generator reaches
    with the same number of images), ``test blurred vs test`` and ``test + noise vs test``.

    Parameters
    ----------
    train, test : ImageSet or uint8 tensors
    classifier : nn.Module
    n : int, optional
        Images per compared set (default all of ``test``); use the number of samples the GAN is judged on.
    blur, noise : float
        Gaussian blur sigma in pixels; noise std on [0, 1] pixels.
    frechet : FrechetDistance, optional
        Reuse one built on ``test``.

    Returns
    -------
    pandas.DataFrame
        Columns ``reference``, ``n``, ``frechet``.
    """
    test_u8, train_u8 = _u8(test), _u8(train)
    frechet = frechet or FrechetDistance(classifier, test_u8)
    n = min(n or len(test_u8), len(test_u8), len(train_u8))
    rng = torch.Generator().manual_seed(seed)
    pick_train = train_u8[torch.randperm(len(train_u8), generator=rng)[:n]]
    pick_test = test_u8[torch.randperm(len(test_u8), generator=rng)[:n]]
    rows = [("train vs test (floor)", frechet(pick_train)),
            (f"test blurred (sigma {blur:g} px) vs test", frechet(degrade(pick_test, "blur", blur))),
            (f"test + noise (std {noise:g}) vs test", frechet(degrade(pick_test, "noise", noise, seed)))]
    return pd.DataFrame({"reference": [r for r, _ in rows], "n": n, "frechet": [v for _, v in rows]})


def precision_recall_available() -> bool:
    """True if torch-fidelity (the maintained implementation of Kynkaanniemi et al. 2019) is installed."""
    try:
        import torch_fidelity.metric_prc  # noqa: F401
    except ImportError:
        return False
    return True


def precision_recall(real_features, fake_features, k: int = 3) -> dict:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of feature sets, via torch-fidelity.

    Precision: fraction of generated samples inside the k-NN manifold of the real ones (quality);
    recall: fraction of real samples inside the k-NN manifold of the generated ones (diversity).

    Parameters
    ----------
    real_features, fake_features : arrays (N, D)
        E.g. :func:`mnistlab.features` of the judge on test images and on samples.
    k : int
        Neighbourhood size (3 as in the paper).

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f_score``.

    Raises
    ------
    ImportError
        torch-fidelity is not installed (``pip install torch-fidelity``).
    """
    try:
        from torch_fidelity.metric_prc import prc_features_to_metric
    except ImportError as exc:
        raise ImportError("precision_recall needs torch-fidelity (the maintained implementation of "
                          "Kynkaanniemi et al. 2019): pip install torch-fidelity") from exc
    real = torch.as_tensor(np.asarray(real_features), dtype=torch.float32)
    fake = torch.as_tensor(np.asarray(fake_features), dtype=torch.float32)
    # torch-fidelity's order is (generated, real): precision is measured on its first argument
    out = prc_features_to_metric(fake, real, prc_neighborhood=k, prc_batch_size=10000, save_cpu_ram=True,
                                 verbose=False)
    return {key: float(out[key]) for key in ("precision", "recall", "f_score")}


def nearest_train_distances(samples, train, test, n: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Memorisation check: pixel distance of each sample, and of each test image, to its nearest training image.

    A generator that copies training digits puts its samples closer to the training set than
    unseen test digits are; a healthy one gives a distribution like (or above) test -> train.

    Parameters
    ----------
    samples : uint8 images, or dict name -> uint8 images
        One set (source "samples") or several named sets (e.g. one per GAN).
    train, test : uint8 images (ImageSet or tensors)
    n : int
        How many images of each set to query (random subsets).

    Returns
    -------
    pandas.DataFrame
        Columns ``source`` (the set's name, or "test"), ``index`` (in its set), ``distance``
        (Euclidean, pixels in [0, 1]), ``train_index`` (the nearest training image).
    """
    from sklearn.neighbors import NearestNeighbors

    def flat(x):
        x = _u8(x)
        return x.reshape(len(x), -1).float().div(255.0).numpy()

    index = NearestNeighbors(n_neighbors=1).fit(flat(train))
    rng = np.random.default_rng(seed)
    sets = dict(samples) if isinstance(samples, dict) else {"samples": samples}
    if "test" in sets:
        raise ValueError("'test' is reserved for the held-out reference; name the sample sets otherwise.")
    frames = []
    for name, images in (*sets.items(), ("test", test)):
        images = _u8(images)
        pick = np.sort(rng.choice(len(images), size=min(n, len(images)), replace=False))
        dist, idx = index.kneighbors(flat(images[torch.as_tensor(pick)]))
        frames.append(pd.DataFrame({"source": name, "index": pick, "distance": dist[:, 0], "train_index": idx[:, 0]}))
    return pd.concat(frames, ignore_index=True)


def check_targets(unconditional: dict, conditional: dict, floor: float, train_seconds: float,
                  budget_seconds: float = 600.0, share_tolerance: float = 0.03, frechet_factor: float = 5.0,
                  accuracy: float = 0.95, moonshot: float = 0.98) -> pd.DataFrame:
    """The notebook's targets, each met or not from the computed numbers.

    Parameters
    ----------
    unconditional, conditional : dict
        :func:`evaluate_samples` results (with ``frechet``) of the two GANs.
    floor : float
        Train-vs-test Frechet distance on as many images as the samples.
    train_seconds : float
        Training time of both GANs together.

    Returns
    -------
    pandas.DataFrame
        Columns ``target``, ``value``, ``goal``, ``met``.
    """
    worst = unconditional["max_share_deviation"]
    ratio = lambda r: r["frechet"] / floor if floor > 0 else float("inf")
    rows = [
        ("conditional samples classified as requested", conditional["cond_accuracy"], f">= {accuracy:.0%}",
         conditional["cond_accuracy"] >= accuracy),
        ("moonshot: conditional accuracy", conditional["cond_accuracy"], f">= {moonshot:.0%}",
         conditional["cond_accuracy"] >= moonshot),
        ("every class share of unconditional samples: largest |share - 10%|", worst,
         f"<= {share_tolerance:.0%}", worst <= share_tolerance),
        ("unconditional Frechet distance / train-vs-test floor", ratio(unconditional), f"<= {frechet_factor:g}",
         ratio(unconditional) <= frechet_factor),
        ("conditional Frechet distance / train-vs-test floor", ratio(conditional), f"<= {frechet_factor:g}",
         ratio(conditional) <= frechet_factor),
        ("training seconds, both GANs", train_seconds, f"<= {budget_seconds:g}", train_seconds <= budget_seconds),
    ]
    return pd.DataFrame(rows, columns=["target", "value", "goal", "met"])


def diagnose(history: pd.DataFrame, judged: dict | None = None, floor: float | None = None,
             pr: dict | None = None, window: int = 200, frechet_factor: float = 5.0, min_precision: float = 0.5,
             min_recall: float = 0.5, min_cond_accuracy: float = 0.9, num_classes: int = 10) -> dict:
    """Read the health of a run from its training dynamics and from the judge's numbers on its samples.

    The dynamics (means over the last ``window`` steps of ``history``) say whether the two nets are
    still playing: ``"discriminator wins"`` (D(G(z)) < 0.05: the generator's gradient vanishes,
    the usual prelude to collapse) or ``"generator fools D"`` (D(G(z)) > D(x): the discriminator
    has stopped learning). Balanced dynamics do not make the samples good, so the judge's numbers
    are read too, each against its bar: the Frechet distance over the train-vs-test ``floor``
    (at most ``frechet_factor``), precision and recall (at least ``min_precision`` /
    ``min_recall``), class coverage (all ``num_classes`` classes hold >= 1% of the samples) and,
    for a conditional GAN, the share classified as requested (at least ``min_cond_accuracy``).

    Parameters
    ----------
    history : DataFrame
        ``GANRun.history``.
    judged : dict, optional
        :func:`evaluate_samples` of the run's samples (with ``frechet``).
    floor : float, optional
        Train-vs-test Frechet distance on as many images as ``judged`` (needed to read ``frechet``).
    pr : dict, optional
        :func:`precision_recall` of the samples.
    window : int
    frechet_factor, min_precision, min_recall, min_cond_accuracy : float
        The bars.
    num_classes : int

    Returns
    -------
    dict
        ``d_real``, ``d_fake``, ``loss_d``, ``loss_g`` (means over the window), ``gap`` (D(x) - D(G(z))),
        ``window``, ``dynamics`` (``"discriminator wins"``, ``"generator fools D"`` or ``"balanced"``);
        the judge's numbers given (``frechet_ratio``, ``precision``, ``recall``, ``coverage``,
        ``cond_accuracy``); ``failed`` (list of the judge's checks missed, each with its number and
        bar); ``verdict``: the dynamics' verdict when they are not balanced, ``"samples not yet real"``
        when they are but a judge's check fails, ``"healthy"`` when everything passes (and
        ``"balanced (not judged)"`` without ``judged`` and ``pr``); ``reason``: the numbers that decided.

    Raises
    ------
    ValueError
        An empty history, or a ``judged`` Frechet distance without a positive ``floor``.
    """
    if history.empty:
        raise ValueError("diagnose needs a history with at least one step.")
    tail = history.tail(window)
    m = {k: float(tail[k].mean()) for k in ("d_real", "d_fake", "loss_d", "loss_g")}
    m["gap"] = m["d_real"] - m["d_fake"]
    m["window"] = int(len(tail))
    if m["d_fake"] < 0.05:
        m["dynamics"], dyn = "discriminator wins", f"D(G(z)) = {m['d_fake']:.3f} < 0.05"
    elif m["gap"] < 0:
        m["dynamics"], dyn = "generator fools D", f"D(G(z)) = {m['d_fake']:.2f} > D(x) = {m['d_real']:.2f}"
    else:
        m["dynamics"] = "balanced"
        dyn = (f"D(x) = {m['d_real']:.2f} and D(G(z)) = {m['d_fake']:.2f} stay away from 0 and 1, D(x) above "
               f"D(G(z)) by {m['gap']:.2f}")
    failed, passed = [], []

    def check(name, value, ok, text):
        m[name] = value
        (passed if ok else failed).append(text)

    if judged is not None:
        frechet = judged.get("frechet", float("nan"))
        if frechet is not None and not math.isnan(frechet):
            if floor is None or not floor > 0:
                raise ValueError("diagnose reads the Frechet distance against the train-vs-test floor: pass floor > 0.")
            ratio = frechet / floor
            check("frechet_ratio", ratio, ratio <= frechet_factor,
                  f"Frechet distance {ratio:.1f}x the floor (bar {frechet_factor:g}x)")
        cov = int(judged["coverage"])
        check("coverage", cov, cov >= num_classes, f"{cov} of {num_classes} classes covered")
        acc = judged.get("cond_accuracy", float("nan"))
        if acc is not None and not math.isnan(acc):
            check("cond_accuracy", acc, acc >= min_cond_accuracy,
                  f"{acc:.1%} classified as requested (bar {min_cond_accuracy:.0%})")
    if pr is not None:
        check("precision", pr["precision"], pr["precision"] >= min_precision,
              f"precision {pr['precision']:.2f} (bar {min_precision:g})")
        check("recall", pr["recall"], pr["recall"] >= min_recall, f"recall {pr['recall']:.2f} (bar {min_recall:g})")
    m["failed"] = failed
    if m["dynamics"] != "balanced":
        m["verdict"], m["reason"] = m["dynamics"], dyn
    elif failed:
        m["verdict"] = "samples not yet real"
        m["reason"] = f"the dynamics are balanced ({dyn}), but the judge reads: " + "; ".join(failed)
    elif judged is None and pr is None:
        m["verdict"], m["reason"] = "balanced (not judged)", dyn
    else:
        m["verdict"] = "healthy"
        m["reason"] = f"{dyn}; the judge reads: " + "; ".join(passed)
    return m
