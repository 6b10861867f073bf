"""The README's speed table, from the benchmark results in benchmarks/results/*.json; prints it as markdown.

    python benchmarks/speed_table.py                      # print the table
    python benchmarks/speed_table.py --write README.md    # replace what stands between the two markers

With ``--write`` the text between ``<!-- speed-table:start -->`` and ``<!-- speed-table:end -->`` (each on a
line of its own) is replaced by the table; the markers stay, nothing else in the file changes, and a file
without both markers in that order is left alone (exit 1). ``make bench`` runs every benchmark, then this.
Smoke results (``"smoke": true``) and files that do not follow the schema of ``_common.py`` are skipped
with a warning. Rows follow ``ORDER``; each benchmark's JSON carries its own rows (its ``table``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import RESULTS_DIR, check_result

START = "<!-- speed-table:start -->"
END = "<!-- speed-table:end -->"
ORDER = ["loader_speed", "train_step", "time_to_accuracy", "time_to_accuracy_cuda", "tsne_speed", "recorder_overhead",
         "parallel_speed", "best_accuracy", "photo_accuracy", "gan_recipes", "gan_gpu", "transfer_gpu"]


class MarkerError(ValueError):
    """The file lacks the two markers, or has them out of order or more than once."""


def load_results(folder=RESULTS_DIR, warn=None, include_smoke: bool = False) -> list[dict]:
    """Every sound, non-smoke result in ``folder``, in ``ORDER`` (others after, by name)."""
    warn = warn or (lambda m: print(f"speed_table: {m}", file=sys.stderr))
    out = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            warn(f"skipping {path.name}: {exc}")
            continue
        problems = check_result(result) if isinstance(result, dict) else ["not a JSON object"]
        if problems:
            warn(f"skipping {path.name}: {'; '.join(problems[:3])}")
            continue
        if result["smoke"] and not include_smoke:
            warn(f"skipping {path.name}: a smoke run")
            continue
        out.append(result)
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(out, key=lambda r: (rank.get(r["benchmark"], len(ORDER)), r["benchmark"]))


def _machine(result: dict) -> str:
    m = result["machine"]
    gpu = f", {m['gpu']}" if m.get("gpu") and str(result.get("device", "")).startswith("cuda") else ""
    return f"{m['cores']} cores ({m['cpu']}){gpu}, torch {result['torch']}"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(results: list[dict]) -> str:
    """The markdown: one line on where and when, then the table (a column per machine only when they differ)."""
    if not results:
        raise ValueError("no benchmark results: run `make bench` first")
    machines = sorted({_machine(r) for r in results})
    dates = sorted(r["date"][:10] for r in results)
    when = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
    one = len(machines) == 1
    lines = [f"Measured by `make bench` ({when}{', on ' + machines[0] if one else ''}). Each benchmark runs ours and "
             "the reference back to back in the same process, so the ratio holds even when the absolute seconds "
             "move with the machine's load; every number is in `benchmarks/results/<script>.json`.", ""]
    head = ["what", "ours", "reference, same run", "ratio", "script"] + ([] if one else ["machine"])
    lines += ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    for r in results:
        script = r["benchmark"].removesuffix("_cuda")
        for row in r["table"]:
            cells = [row["what"], row["ours"], row["reference"], row["ratio"], f"`{script}.py`"]
            lines.append("| " + " | ".join(_cell(c) for c in cells + ([] if one else [_machine(r)])) + " |")
    return "\n".join(lines) + "\n"


def replace_between(text: str, table: str) -> str:
    """``text`` with everything between the two marker lines replaced by ``table`` (markers kept)."""
    if text.count(START) != 1 or text.count(END) != 1:
        raise MarkerError(f"expected {START} and {END} once each, found {text.count(START)} and {text.count(END)}")
    a, b = text.index(START), text.index(END)
    if b < a:
        raise MarkerError(f"{END} comes before {START}")
    head = text[:a + len(START)]
    return head + "\n" + table.strip("\n") + "\n" + text[b:]


def write_table(path, table: str) -> bool:
    """Replace the table in the file at ``path``; True when its text changed."""
    path = Path(path)
    text = path.read_text()
    new = replace_between(text, table)
    if new != text:
        path.write_text(new)
    return new != text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default=str(RESULTS_DIR), help="folder of the result JSON files")
    p.add_argument("--write", metavar="FILE", default=None, help="replace the table between the markers in FILE")
    p.add_argument("--include-smoke", action="store_true", help="keep smoke results (to look at the layout)")
    args = p.parse_args(argv)
    try:
        table = render(load_results(args.results, include_smoke=args.include_smoke))
    except ValueError as exc:
        print(f"speed_table: {exc}", file=sys.stderr)
        return 1
    if args.write is None:
        print(table, end="")
        return 0
    try:
        changed = write_table(args.write, table)
    except (OSError, MarkerError) as exc:
        print(f"speed_table: {args.write}: {exc}", file=sys.stderr)
        return 1
    print(f"speed_table: {args.write} {'updated' if changed else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
