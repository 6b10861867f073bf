"""The training recipes of ``mnistlab.studies.gan.RECIPES`` for notebook 07's GANs, judged after the same number of steps; prints one table.

* ``dcgan``: DCGAN's own (Radford et al. 2016): non-saturating loss, Adam lr 2e-4 for both nets,
  betas (0.5, 0.999), batch norm in the discriminator.
* ``sngan``: SNGAN's (Miyato et al. 2018): spectral norm in the discriminator, hinge loss, Adam betas
  (0, 0.9), discriminator rate 4e-4 against the generator's 2e-4 (two time-scale rule, Heusel et al. 2017).

Same nets (width 32), seed, data order and noise; every GAN is judged by the shipped classifier on
``--n-eval`` samples of its EMA generator: Frechet distance in the classifier's feature space over the
train-vs-test floor for as many images, the largest gap between a class's share and 10%
(unconditional), the fraction classified as requested (conditional), and the classifier's mean
confidence; then the ratio of each number to the dcgan recipe's in the same run::

    MNISTLAB_DATA=/path/to/data python benchmarks/gan_recipes.py              # 2,000 steps, about 10 min on 2 cores
    python benchmarks/gan_recipes.py --steps 200 --n-eval 500                 # a quick check
"""
from __future__ import annotations

import argparse
import sys

import pandas as pd
import torch

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000, help="training steps per GAN and recipe")
    p.add_argument("--n-eval", type=int, default=2000, help="samples judged per GAN")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)

    from mnistlab.data import load_dataset
    from mnistlab.models.gan import create_gan
    from mnistlab.studies import gan as gs
    from mnistlab.training.pretrained import load_pretrained

    train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    judge = load_pretrained()
    frechet = gs.FrechetDistance(judge, test)
    floor = float(gs.reference_distances(train, test, judge, n=args.n_eval, frechet=frechet, seed=args.seed)["frechet"].iloc[0])
    print(f"{args.steps} steps per run, width {args.width}, {torch.get_num_threads()} torch threads; "
          f"train-vs-test floor for {args.n_eval} images: {floor:.4f}", flush=True)
    rows = []
    for gan_name in ("dcgan", "cdcgan"):
        for recipe, (nets, settings) in gs.RECIPES.items():
            gan = create_gan(gan_name, seed=args.seed, ngf=args.width, ndf=args.width, **nets)
            run = gs.train_gan(gan, train, steps=args.steps, device=args.device, seed=args.seed, progress=False, **settings)
            requested = torch.arange(args.n_eval) % 10 if gan.conditional else None
            r = gs.evaluate_samples(run, judge, n=args.n_eval, seed=args.seed + 1, frechet=frechet, requested=requested)
            rows.append({"gan": gan_name, "recipe": recipe, "frechet_over_floor": r["frechet"] / floor,
                         "max_share_deviation": r["max_share_deviation"], "cond_accuracy": r["cond_accuracy"],
                         "mean_confidence": r["mean_confidence"], "ms_per_step": 1000 * run.train_seconds / args.steps})
            print(f"{gan_name} with the {recipe} recipe: Frechet {rows[-1]['frechet_over_floor']:.1f}x the floor, "
                  f"largest share gap {r['max_share_deviation']:.3f}, as requested {r['cond_accuracy']:.3f}, "
                  f"{rows[-1]['ms_per_step']:.1f} ms per step", flush=True)
    table = pd.DataFrame(rows).set_index(["gan", "recipe"])
    ratio = table.groupby(level="gan", group_keys=False).apply(lambda t: t / t.xs("dcgan", level="recipe").iloc[0])
    print("\nsngan / dcgan in this run (below 1 is better for the Frechet ratio and the share gap):")
    print(ratio.xs("sngan", level="recipe")[["frechet_over_floor", "max_share_deviation", "cond_accuracy",
                                            "ms_per_step"]].round(3).to_string())
    print("\n" + table.round(4).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
