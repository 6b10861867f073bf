"""``GANConfig``: the one description of a GAN training run, beside :class:`~mnistlab.training.config.TrainConfig`.

Same style as ``TrainConfig``: a frozen dataclass of plain JSON values, each field validated with
a message naming it and the allowed range, ``but(**changes)`` for variants, ``to_dict`` for
checkpoints and ``recipe()`` (every field but ``name`` and ``description``) for cache keys.
:func:`mnistlab.training.gan.train_gan` receives it and reads it in one place; a checkpoint
stores it with the two nets.

The named recipes (:data:`RECIPES`) are instances of it.

Examples
--------
>>> from mnistlab.training.gan_config import RECIPES
>>> cfg = RECIPES["sngan"].but(gan="cdcgan", ngf=32, ndf=32, steps=6000)
>>> cfg.loss, cfg.lr_d, cfg.spectral_norm
('hinge', 0.0004, True)
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .._util import to_jsonable
from ..data.datasets import dataset_info
from ..models.gan import _GANS, create_gan
from .config import _config_of

__all__ = ["GANConfig", "as_gan_config", "GAN_LOSSES", "RECIPES"]

GAN_LOSSES = ("ns", "hinge")
"""Loss names a :class:`GANConfig` accepts (the functions are in :data:`mnistlab.training.gan.LOSSES`)."""


def _help(text: str, default=None):
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class GANConfig:
    """One GAN training run, as plain values.

    ``name`` and ``description`` label tables and plots and are *not* part of :meth:`recipe` (the
    cache key). Exactly one of ``steps`` and ``epochs`` is set. Invalid values raise
    ``ValueError`` naming the field and the allowed range, before any work starts.
    """

    name: str = _help("label in tables and plots (not part of the cache key)", "gan")
    gan: str = _help("registry name of the pair: dcgan (unconditional) or cdcgan (class-conditional)", "dcgan")
    nz: int = _help("length of the noise vector", 64)
    ngf: int = _help("generator width (the 14x14 stage has ngf channels, the 7x7 stage 2 ngf)", 64)
    ndf: int = _help("discriminator width (ndf channels at 14x14, 2 ndf at 7x7)", 64)
    spectral_norm: bool = _help("spectral normalisation in the discriminator (its batch norm is then left out)",
                                False)
    steps: int | None = _help("training steps (one D and one G update each); none when epochs is set", 3000)
    epochs: float | None = _help("passes over the training images instead of steps (set steps to none)", None)
    batch_size: int = _help("images per step (the last incomplete batch of an epoch is dropped)", 64)
    lr: float = _help("Adam learning rate of the generator", 2e-4)
    lr_d: float | None = _help("Adam learning rate of the discriminator; none: the generator's", None)
    betas: tuple = _help("Adam betas of both optimizers, [beta1, beta2]", (0.5, 0.999))
    loss: str = _help("ns (non-saturating, Goodfellow et al. 2014) or hinge (Lim & Ye 2017)", "ns")
    ema_decay: float | None = _help("decay of the moving average of the generator's weights; none: no EMA", 0.999)
    dataset: str = _help("mnist, fashion-mnist or kmnist: must be the dataset of the images handed in", "mnist")
    train_limit: int | None = _help("train on the first N images handed in only; none for all", None)
    description: str = _help("one line on what the config is for (not part of the cache key)", "")

    def __post_init__(self):
        betas = self.betas
        if isinstance(betas, (list, tuple)) and len(betas) == 2 and all(_num(b) for b in betas):
            object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))
        self._validate()

    def _validate(self) -> None:
        def bad(name, value, allowed):
            raise ValueError(f"{name} = {value!r} is not allowed: {allowed}.")

        if not isinstance(self.name, str) or not self.name.strip():
            bad("name", self.name, "a non-empty label")
        if not isinstance(self.description, str):
            bad("description", self.description, "a string")
        if self.gan not in _GANS:
            bad("gan", self.gan, f"choose one of {', '.join(sorted(_GANS))}")
        for key, top in (("nz", 1024), ("ngf", 512), ("ndf", 512)):
            v = getattr(self, key)
            if not _int(v) or not 1 <= v <= top:
                bad(key, v, f"a whole number from 1 to {top}")
        if not isinstance(self.spectral_norm, bool):
            bad("spectral_norm", self.spectral_norm, "true or false")
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(f"steps = {self.steps!r}, epochs = {self.epochs!r}: set exactly one of them "
                             "(the other to None), e.g. cfg.but(steps=None, epochs=2).")
        if self.steps is not None and (not _int(self.steps) or self.steps < 1):
            bad("steps", self.steps, "a whole number >= 1")
        if self.epochs is not None and not (_num(self.epochs) and self.epochs > 0):
            bad("epochs", self.epochs, "a number > 0")
        if not _int(self.batch_size) or not 1 <= self.batch_size <= 65536:
            bad("batch_size", self.batch_size, "a whole number from 1 to 65536")
        if not (_num(self.lr) and 0 < self.lr <= 1):
            bad("lr", self.lr, "a learning rate in (0, 1]")
        if self.lr_d is not None and not (_num(self.lr_d) and 0 < self.lr_d <= 1):
            bad("lr_d", self.lr_d, "a learning rate in (0, 1], or none for lr")
        b = self.betas
        if not (isinstance(b, tuple) and len(b) == 2 and all(_num(x) and 0 <= x < 1 for x in b)):
            bad("betas", b, "two numbers in [0, 1), e.g. [0.5, 0.999]")
        if self.loss not in GAN_LOSSES:
            bad("loss", self.loss, f"one of {', '.join(GAN_LOSSES)}")
        if self.ema_decay is not None and not (_num(self.ema_decay) and 0 < self.ema_decay < 1):
            bad("ema_decay", self.ema_decay, "a decay in (0, 1), or none for no EMA")
        try:
            dataset_info(self.dataset)
        except ValueError as exc:
            raise ValueError(f"dataset: {exc}") from None
        if self.train_limit is not None and (not _int(self.train_limit) or self.train_limit < self.batch_size):
            bad("train_limit", self.train_limit, f"a whole number of images >= batch_size ({self.batch_size}), or none")

    @property
    def conditional(self) -> bool:
        """True for a class-conditional pair (``gan="cdcgan"``)."""
        return self.gan == "cdcgan"

    @property
    def gan_kwargs(self) -> dict:
        """The keyword arguments of :func:`mnistlab.create_gan` this config stands for."""
        return {"nz": self.nz, "ngf": self.ngf, "ndf": self.ndf, "spectral_norm": self.spectral_norm}

    def build_gan(self, seed: int | None = None):
        """The untrained pair: ``create_gan(gan, seed, nz, ngf, ndf, spectral_norm)``.

        Parameters
        ----------
        seed : int, optional
            Seed of the initial weights (the global RNG is left as it was).

        Returns
        -------
        mnistlab.models.gan.GAN
        """
        return create_gan(self.gan, seed=seed, **self.gan_kwargs)

    def total_steps(self, n_images: int) -> int:
        """Training steps for ``n_images`` training images: ``steps``, or ``epochs`` full batches per epoch.

        Parameters
        ----------
        n_images : int
            Images the run trains on (after ``train_limit``).

        Returns
        -------
        int
        """
        if self.steps is not None:
            return int(self.steps)
        return max(1, round(float(self.epochs) * (n_images // self.batch_size)))

    def recipe(self) -> dict:
        """The settings that define the run: :meth:`to_dict` without ``name`` and ``description`` (the cache key)."""
        d = self.to_dict()
        d.pop("name")
        d.pop("description")
        return d

    def to_dict(self) -> dict:
        """All fields as a plain, JSON-serialisable dict (``betas`` as a list)."""
        return to_jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)}, strict=True)

    def but(self, **changes) -> "GANConfig":
        """A copy with some fields changed, e.g. ``RECIPES["sngan"].but(gan="cdcgan", steps=800)``."""
        return as_gan_config({**self.to_dict(), **changes})

    @classmethod
    def fields_help(cls) -> dict[str, tuple[Any, str]]:
        """``{field: (default, one-line help)}``."""
        return {f.name: (f.default, f.metadata.get("help", "")) for f in dataclasses.fields(cls)}


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


FIELDS = frozenset(f.name for f in dataclasses.fields(GANConfig))


def as_gan_config(config) -> GANConfig:
    """Accept a :class:`GANConfig` or a dict of its fields; raise a clear error on unknown keys.

    Parameters
    ----------
    config : GANConfig or mapping

    Returns
    -------
    GANConfig

    Raises
    ------
    TypeError
        Neither a GANConfig nor a mapping.
    ValueError
        Unknown keys or invalid values.
    """
    return _config_of(config, GANConfig, FIELDS, "GAN config")


RECIPES: dict[str, GANConfig] = {
    "dcgan": GANConfig("dcgan recipe", spectral_norm=False, loss="ns", lr=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
                       description="Radford et al. 2016: non-saturating loss, Adam lr 2e-4 for both nets, beta1 0.5"),
    "sngan": GANConfig("sngan recipe", spectral_norm=True, loss="hinge", lr=2e-4, lr_d=4e-4, betas=(0.0, 0.9),
                       description="Miyato et al. 2018: spectral norm in D, hinge loss, Adam betas (0, 0.9); D's rate "
                                   "twice G's (two time-scale rule, Heusel et al. 2017)"),
}
"""GAN training recipes by name, as :class:`GANConfig` instances (vary them with ``.but(...)``).

``"dcgan"``: Radford et al. 2016. ``"sngan"``: Miyato et al. 2018 with the two time-scale rule;
notebook 07 trains with it.
"""
