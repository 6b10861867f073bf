"""DCGAN nets for 28x28x1 digits and a small GAN registry.

A :class:`GAN` holds a generator and a discriminator built to match each other:

* :class:`Generator`: noise ``z`` (B, nz) -> transposed convolutions 1x1 -> 7x7 -> 14x14 -> 28x28 with
  batch norm and ReLU, ``tanh`` output in [-1, 1] (Radford et al. 2016, sized for MNIST).
* :class:`Discriminator`: strided convolutions 28 -> 14 -> 7 with LeakyReLU(0.2), batch norm on the
  second layer (left out under spectral norm, as in Miyato et al. 2018), one logit per image.

The class-conditional variant embeds the label into both nets: the generator concatenates a learned
label embedding to ``z``; the discriminator adds the projection term ``<embed(y), h>`` to its logit
(the projection discriminator of Miyato & Koyama 2018), which keeps samples faithful to the
requested class better than feeding the label as an input channel.

This module knows nothing of data or training::

    from mnistlab.models.gan import create_gan, list_gans
    gan = create_gan("cdcgan", seed=0)            # conditional; "dcgan" is the unconditional pair
    images = gan.generator(torch.randn(16, gan.nz), torch.arange(16) % 10)   # (16, 1, 28, 28) in [-1, 1]
"""
from __future__ import annotations

from typing import Callable

import pandas as pd
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .registry import _build_seeded, _registrar

__all__ = ["Generator", "Discriminator", "GAN", "register_gan", "create_gan", "list_gans"]

_GANS: dict[str, tuple[Callable[..., "GAN"], str]] = {}


def _apply_spectral_norm(module: nn.Module) -> None:
    """Spectral normalisation (Miyato et al. 2018) on every convolution, linear and embedding layer."""
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            _spectral_norm(m)


class Generator(nn.Module):
    """DCGAN generator for 28x28x1 images in [-1, 1].

    Parameters
    ----------
    nz : int
        Length of the noise vector.
    ngf : int
        Width: the 7x7 stage has ``2 * ngf`` channels, the 14x14 stage ``ngf``.
    num_classes : int
        0 for an unconditional generator; otherwise a label embedding of ``embed_dim`` values is
        concatenated to ``z``.
    embed_dim : int, optional
        Length of the label embedding (default ``nz``).
    """

    def __init__(self, nz: int = 64, ngf: int = 64, num_classes: int = 0, embed_dim: int | None = None):
        super().__init__()
        if nz < 1 or ngf < 1 or num_classes < 0:
            raise ValueError(f"Generator needs nz >= 1, ngf >= 1 and num_classes >= 0; got {nz}, {ngf}, {num_classes}.")
        self.nz, self.num_classes = nz, num_classes
        embed_dim = (embed_dim or nz) if num_classes else 0
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        self.net = nn.Sequential(
            nn.ConvTranspose2d(nz + embed_dim, 2 * ngf, 7, 1, 0, bias=False),   # 1 -> 7
            nn.BatchNorm2d(2 * ngf), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * ngf, ngf, 4, 2, 1, bias=False),              # 7 -> 14
            nn.BatchNorm2d(ngf), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(ngf, 1, 4, 2, 1),                                # 14 -> 28
            nn.Tanh(),
        )
        _dcgan_init(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, 1, 28, 28) in [-1, 1] from noise ``z`` (B, nz) and, if conditional, labels ``y`` (B,)."""
        if z.ndim != 2 or z.shape[1] != self.nz:
            raise ValueError(f"z must have shape (batch, {self.nz}), got {tuple(z.shape)}.")
        if self.embed is not None:
            if y is None:
                raise ValueError("This generator is class-conditional: pass labels y of shape (batch,).")
            z = torch.cat([z, self.embed(y)], 1)
        elif y is not None:
            raise ValueError("This generator is unconditional: call it without labels.")
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """DCGAN discriminator for 28x28x1 images: one logit per image (higher = more real).

    Parameters
    ----------
    ndf : int
        Width: ``ndf`` channels at 14x14, ``2 * ndf`` at 7x7.
    num_classes : int
        0 for unconditional; otherwise a projection term ``<embed(y), h>`` is added to the logit.
    spectral_norm : bool
        Spectral normalisation on every layer (batch norm is then left out). The generator keeps
        batch norm and no spectral norm, as in DCGAN.
    """

    def __init__(self, ndf: int = 64, num_classes: int = 0, spectral_norm: bool = False):
        super().__init__()
        if ndf < 1 or num_classes < 0:
            raise ValueError(f"Discriminator needs ndf >= 1 and num_classes >= 0; got {ndf}, {num_classes}.")
        self.num_classes = num_classes
        width = 2 * ndf * 7 * 7
        self.body = nn.Sequential(
            nn.Conv2d(1, ndf, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),                               # 28 -> 14
            nn.Conv2d(ndf, 2 * ndf, 4, 2, 1, bias=spectral_norm),                                      # 14 -> 7
            nn.Identity() if spectral_norm else nn.BatchNorm2d(2 * ndf), nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
        )
        self.head = nn.Linear(width, 1)
        self.embed = nn.Embedding(num_classes, width) if num_classes else None
        _dcgan_init(self)
        if spectral_norm:
            _apply_spectral_norm(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B,) for images ``x`` (B, 1, 28, 28) in [-1, 1] and, if conditional, labels ``y`` (B,)."""
        h = self.body(x)
        out = self.head(h)[:, 0]
        if self.embed is not None:
            if y is None:
                raise ValueError("This discriminator is class-conditional: pass labels y of shape (batch,).")
            out = out + (self.embed(y) * h).sum(1)
        elif y is not None:
            raise ValueError("This discriminator is unconditional: call it without labels.")
        return out


def _dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) weights, N(1, 0.02) batch-norm scales, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class GAN(nn.Module):
    """A generator and a discriminator that belong together, with the settings that built them.

    Attributes
    ----------
    generator : Generator
    discriminator : Discriminator
    nz : int
        Noise length.
    num_classes : int
        0 if unconditional.
    config : dict
        ``{"name": ..., "kwargs": ...}`` so a checkpoint can rebuild the pair with :func:`create_gan`.
    """

    def __init__(self, generator: Generator, discriminator: Discriminator):
        super().__init__()
        if generator.num_classes != discriminator.num_classes:
            raise ValueError(f"generator and discriminator disagree on num_classes "
                             f"({generator.num_classes} vs {discriminator.num_classes}).")
        self.generator, self.discriminator = generator, discriminator
        self.config: dict = {}

    @property
    def nz(self) -> int:
        """Length of the noise vector."""
        return self.generator.nz

    @property
    def num_classes(self) -> int:
        """Number of classes (0 for an unconditional GAN)."""
        return self.generator.num_classes

    @property
    def conditional(self) -> bool:
        """True if both nets take labels."""
        return self.num_classes > 0

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The generator's images for ``z`` (and labels ``y`` if conditional)."""
        return self.generator(z, y)


def register_gan(name: str, description: str = ""):
    """Decorator adding a GAN constructor (returning a :class:`GAN`) to the registry under ``name``.

    Raises
    ------
    ValueError
        ``name`` is already registered.
    """
    return _registrar(_GANS, "GAN", name, description)


def create_gan(name: str, seed: int | None = None, **kwargs) -> GAN:
    """Build a registered GAN.

    Parameters
    ----------
    name : str
        ``"dcgan"`` (unconditional) or ``"cdcgan"`` (class-conditional); see :func:`list_gans`.
    seed : int, optional
        Seed of the initial weights; the global RNG is left as it was.
    **kwargs
        Passed to the constructor: ``nz``, ``ngf``, ``ndf``, ``spectral_norm`` (and ``num_classes``
        for ``"cdcgan"``).

    Returns
    -------
    GAN
        With ``config`` set so checkpoints can rebuild it.

    Raises
    ------
    ValueError
        Unknown name.
    """
    if name not in _GANS:
        raise ValueError(f"Unknown GAN {name!r}; available: {', '.join(sorted(_GANS))}.")
    fn = _GANS[name][0]
    gan = _build_seeded(fn, seed, kwargs)
    gan.config = {"name": name, "kwargs": dict(kwargs)}
    return gan


def list_gans() -> pd.DataFrame:
    """Table of registered GANs: description and parameters of the generator and discriminator."""
    rows = []
    for name, (_, desc) in _GANS.items():
        gan = create_gan(name, seed=0)
        rows.append({"gan": name, "conditional": gan.conditional,
                     "generator_parameters": sum(p.numel() for p in gan.generator.parameters()),
                     "discriminator_parameters": sum(p.numel() for p in gan.discriminator.parameters()),
                     "description": desc})
    return pd.DataFrame(rows).set_index("gan")


@register_gan("dcgan")
def dcgan(nz: int = 64, ngf: int = 64, ndf: int = 64, spectral_norm: bool = False) -> GAN:
    """Unconditional DCGAN for 28x28 digits (transposed-conv generator, LeakyReLU discriminator)."""
    return GAN(Generator(nz, ngf), Discriminator(ndf, spectral_norm=spectral_norm))


@register_gan("cdcgan")
def cdcgan(nz: int = 64, ngf: int = 64, ndf: int = 64, num_classes: int = 10, spectral_norm: bool = False) -> GAN:
    """Class-conditional DCGAN: label embedding concatenated to z, projection discriminator."""
    if num_classes < 2:
        raise ValueError(f"a conditional GAN needs num_classes >= 2, got {num_classes}.")
    return GAN(Generator(nz, ngf, num_classes), Discriminator(ndf, num_classes, spectral_norm=spectral_norm))
