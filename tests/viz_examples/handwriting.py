"""Examples of mnistlab.viz.handwriting for the axes contract test (synthetic pages, no data)."""
import numpy as np
import pandas as pd


def _page():
    page = np.full((120, 240), 230, np.uint8)
    for x in (40, 110, 180):
        page[30:90, x:x + 8] = 30
    return page


def _found():
    from mnistlab.data.images import find_digits

    return find_digits(_page())


def _table():
    rows = [{"setting": s, "value": v, "reading": r, "correct": 8, "photos": 10, "accuracy": 0.8,
             "ci_low": 0.49, "ci_high": 0.94} for s in ("paper", "stroke") for v in ("a", "b") for r in ("new", "old")]
    return pd.DataFrame(rows)


EXAMPLES = {
    "plot_steps": lambda: ((_page(), _found()), {"ax": 7}),
    "plot_readings": lambda: (([_page()] * 3, ["1", "1", "7"], [True, True, False]), {"ax": 3}),
    "plot_accuracy_by": lambda: ((_table(),), {"ax": 2}),
}
