"""The training recipes of ``mnistlab.GAN_RECIPES`` (``GANConfig`` instances) for notebook 07's GANs, judged after the same number of steps; prints one table.

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
    python benchmarks/gan_recipes.py --smoke                                  # seconds: 4 steps, width 8

The headline ratio is the unconditional GAN's Frechet ratio with sngan over dcgan's (below 1: sngan
better). Writes benchmarks/results/gan_recipes.json.
"""
from __future__ import annotations

import sys

import pandas as pd
import torch

from _common import Bench, gan_arguments, parser, row


def main(argv=None) -> int:
    args = gan_arguments(parser(__doc__, device="auto"), argv, steps=2000, width=32, n_eval=2000,
                         steps_help="training steps per GAN and recipe", width_help="ngf = ndf of both nets")

    from mnistlab.data import load_dataset
    from mnistlab.studies import gan as gs
    from mnistlab.training.gan import RECIPES, train_gan
    from mnistlab.training.loop import resolve_device
    from mnistlab.training.pretrained import load_pretrained

    device = resolve_device(args.device)
    bench = Bench("gan_recipes", args, device=device)
    train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test", limit=args.test_limit)
    judge = load_pretrained()
    frechet = gs.FrechetDistance(judge, test)
    floor = float(gs.reference_distances(train, test, judge, n=min(args.n_eval, len(test)), frechet=frechet,
                                         seed=args.seed)["frechet"].iloc[0])
    print(f"{args.steps} steps per run, width {args.width}; train-vs-test floor for {args.n_eval} images: "
          f"{floor:.4f}", flush=True)
    rows = []
    for gan_name in ("dcgan", "cdcgan"):
        for recipe, base in RECIPES.items():
            cfg = base.but(name=f"{gan_name} {recipe}", gan=gan_name, ngf=args.width, ndf=args.width, steps=args.steps)
            run = train_gan(cfg, train, device=device, seed=args.seed, progress=False)
            requested = torch.arange(args.n_eval) % 10 if cfg.conditional else None
            r = gs.evaluate_samples(run, judge, n=args.n_eval, seed=args.seed + 1, frechet=frechet, requested=requested)
            rows.append({"gan": gan_name, "recipe": recipe, "frechet_over_floor": r["frechet"] / floor,
                         "max_share_deviation": r["max_share_deviation"], "cond_accuracy": r["cond_accuracy"],
                         "mean_confidence": r["mean_confidence"], "ms_per_step": 1000 * run.train_seconds / args.steps,
                         "train_seconds": run.train_seconds})
            print(f"{gan_name} with the {recipe} recipe: Frechet {rows[-1]['frechet_over_floor']:.1f}x the floor, "
                  f"largest share gap {r['max_share_deviation']:.3f}, as requested {r['cond_accuracy']:.3f}, "
                  f"{rows[-1]['ms_per_step']:.1f} ms per step", flush=True)
    table = pd.DataFrame(rows).set_index(["gan", "recipe"])
    ratios = table.groupby(level="gan", group_keys=False).apply(lambda t: t / t.xs("dcgan", level="recipe").iloc[0])
    sngan = ratios.xs("sngan", level="recipe")[["frechet_over_floor", "max_share_deviation", "cond_accuracy",
                                                "ms_per_step"]]
    print("\nsngan / dcgan in this run (below 1 is better for the Frechet ratio and the share gap):")
    print(sngan.round(3).to_string())
    print("\n" + table.round(4).to_string())
    get = table.loc
    ratio = float(sngan.loc["dcgan", "frechet_over_floor"])
    readme = [row(f"notebook 07's unconditional GAN after {args.steps:,} steps (width {args.width}): Frechet distance "
                  f"over the train-vs-test floor",
                  ours=f"SNGAN's recipe: {get[('dcgan', 'sngan'), 'frechet_over_floor']:.1f}x the floor, largest "
                       f"class-share gap {get[('dcgan', 'sngan'), 'max_share_deviation']:.3f}",
                  reference=f"DCGAN's recipe: {get[('dcgan', 'dcgan'), 'frechet_over_floor']:.1f}x, "
                            f"{get[('dcgan', 'dcgan'), 'max_share_deviation']:.3f}",
                  ratio=f"{ratio:.2f} (below 1: SNGAN's better)")]
    bench.finish(measured={"steps": args.steps, "width": args.width, "n_eval": args.n_eval, "floor": floor,
                           "runs": rows, "sngan_over_dcgan": sngan.reset_index().to_dict(orient="records")},
                 ratio=ratio, ratio_means="unconditional GAN's Frechet distance with the sngan recipe / with the dcgan "
                                          "recipe, same steps and noise; below 1: sngan better", table=readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
