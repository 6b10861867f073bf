"""Reading phone photos of handwriting: accuracy of the shipped model, photo preprocessing against MNIST's steps.

Usage::

    MNISTLAB_DATA=/path/to/data python benchmarks/photo_accuracy.py [--photos 300] [--numbers 300]
        [--seed 0] [--json build/photo_accuracy.json] [--smoke]

Generated photos (mnistlab.data.photos, fixed seed) of MNIST *test* digits: pen ink in black, blue or
red, cream, white or lined paper, a shadow, tilt and rotation up to 15 degrees, a fine pen to a thick
marker, specks, blur, JPEG quality 25-80. Single digits are read both ways on the same photos, with
``find_digits`` (what ``mnistlab predict`` does now) and with MNIST's steps alone (one threshold, one
bounding box: how it read photos before), so the ratio between them is measured in one run; numbers of
four digits are read with ``mnistlab read``'s ``read_number``. Also prints the shipped model's clean
test accuracy, and seconds per photo of both preprocessings (ratio; the load average says whether the
machine was shared). ``--smoke`` makes 12 photos and 4 numbers, to check that the script runs.
Writes benchmarks/results/photo_accuracy.json (smoke: build/bench-smoke/photo_accuracy.json).
"""
from __future__ import annotations

import sys

from _common import Bench, Stopwatch, fmt_x, parser, row


def main(argv=None) -> int:
    p = parser(__doc__, smoke_help="12 photos and 4 numbers: check that it runs")
    p.add_argument("--photos", type=int, default=300, help="single-digit photos (default 300)")
    p.add_argument("--numbers", type=int, default=300, help="photos of 4-digit numbers (default 300)")
    args = p.parse_args(argv)
    if args.smoke:
        args.photos, args.numbers = 12, 4

    import mnistlab as ml
    from mnistlab.data.images import find_digits, to_mnist
    from mnistlab.studies.handwriting import number_accuracy, photo_accuracy

    bench = Bench("photo_accuracy", args)
    test = ml.load_dataset("mnist", "test")
    model = ml.load_pretrained()
    clean = float(ml.evaluate(model, test)["acc"])
    info = ml.pretrained_info()
    print(f"shipped model ({info['file']}): clean MNIST test accuracy {clean:.4f}")

    table, summary, photos = photo_accuracy(test, {"shipped": model}, n=args.photos, seed=args.seed, progress=False)
    acc = summary.set_index("preprocessing")["accuracy"]
    new, old = float(acc["photo (find_digits)"]), float(acc["MNIST steps only"])
    print(f"{args.photos} single-digit photos (seed {args.seed}): photo preprocessing {new:.1%}, "
          f"MNIST's steps only {old:.1%} ({new / max(old, 1e-9):.1f}x as many right)")
    by = {col: table.assign(ok=table["pred_shipped"] == table["label"]).groupby(col)["ok"].mean().round(3).to_dict()
          for col in ("paper", "stroke", "ink")}
    print("  right, by paper:", by["paper"], " by pen:", by["stroke"])

    sample = photos[:min(len(photos), 60)]
    with Stopwatch() as sw:
        for photo in sample:
            find_digits(photo)
    t_new = sw.seconds / len(sample)
    with Stopwatch() as sw:
        for photo in sample:
            to_mnist(photo, photo=False)
    t_old = sw.seconds / len(sample)
    print(f"  preprocessing: {1000 * t_new:.0f} ms per photo, {t_new / t_old:.0f}x MNIST's steps "
          f"({1000 * t_old:.1f} ms), same run")

    numbers, _ = number_accuracy(test, model, n=args.numbers, length=4, seed=args.seed, progress=False)
    exact = float(numbers["exact"].mean())
    print(f"{args.numbers} photos of 4-digit numbers (seed {args.seed}): {exact:.1%} read exactly; "
          f"digits found: {numbers['found'].value_counts().sort_index().to_dict()}")
    found = {str(k): int(v) for k, v in numbers["found"].value_counts().sort_index().items()}
    measured = {
        "seed": args.seed, "model": info["file"], "clean_test_accuracy": clean,
        "photos": {"n": args.photos, "accuracy_photo_preprocessing": new, "accuracy_mnist_steps_only": old,
                   "ratio": new / max(old, 1e-9), "by": {k: {str(a): b for a, b in v.items()} for k, v in by.items()}},
        "seconds_per_photo": {"photo_preprocessing": t_new, "mnist_steps_only": t_old, "ratio": t_new / t_old},
        "numbers": {"n": args.numbers, "length": 4, "exact": exact, "found": found},
    }
    table = [
        row(f"reading {args.photos} generated phone photos of single MNIST test digits (shipped model)",
            ours=f"photo preprocessing (`find_digits`): {new:.1%} right, {1000 * t_new:.0f} ms per photo",
            reference=f"MNIST's steps only: {old:.1%} right, {1000 * t_old:.1f} ms per photo",
            ratio=f"**{fmt_x(new / max(old, 1e-9))} as many right** ({t_new / t_old:.0f}x the time)"),
        row(f"reading {args.numbers} photos of 4-digit numbers (`read_number`)",
            ours=f"{exact:.1%} read exactly ({found.get('4', 0)} with 4 digits found)", reference="-", ratio="-"),
    ]
    bench.finish(measured=measured, ratio=new / max(old, 1e-9),
                 ratio_means="accuracy with the photo preprocessing / with MNIST's steps only, same photos; "
                             "higher: ours reads more", table=table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
