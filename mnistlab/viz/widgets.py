"""Interactive explorers for JupyterLab (ipywidgets): a confusion-matrix explorer and a predictions browser.

Both are thin views over an :class:`mnistlab.studies.interpret.Interpretation`; their state is
plain Python (``selected``, ``indices``, ``rows``, ``page``), so they are tested without a browser,
and they draw with the same plot functions as the static figures (:mod:`mnistlab.viz.interpret`),
rendered to PNG into an ``ipywidgets.Image`` shown at the PNG's own pixel size (never stretched to
the width of the output area; scaled down, keeping its aspect ratio, only where it does not fit).

Examples
--------
>>> from mnistlab.viz.widgets import ConfusionExplorer, PredictionsBrowser    # doctest: +SKIP
>>> explorer = ConfusionExplorer(interp, model=model)        # click a cell: its digits and saliency maps
>>> explorer                                                  # displays in JupyterLab
>>> explorer.select(4, 9); explorer.indices                   # the same from code
"""
from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm, to_hex
from matplotlib.figure import Figure
import matplotlib

from .interpret import plot_cell, plot_digits

__all__ = ["ConfusionExplorer", "PredictionsBrowser", "figure_png", "png_size"]

SELECTED_BORDER = "3px solid #08306b"   # outline of the selected cell of the confusion explorer


def figure_png(fig: Figure, dpi: int = 90) -> bytes:
    """PNG bytes of a matplotlib figure (for an ``ipywidgets.Image``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels of PNG bytes, read from the IHDR chunk."""
    if len(png) < 24 or png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not PNG bytes")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _show_png(image, png: bytes) -> None:
    """Put ``png`` into the ``ipywidgets.Image`` at its natural size; hide the image when ``png`` is empty.

    The layout width is the PNG's width in CSS pixels, so a flex box (``VBox``) does not stretch it
    to the output's width; the height stays ``auto`` so that the widget CSS's ``max-width: 100%``
    scales it down proportionally on a narrow screen instead of distorting it.
    """
    image.value = png
    if png:
        width, _ = png_size(png)
        image.layout.width, image.layout.height, image.layout.display = f"{width}px", "auto", None
    else:
        image.layout.display = "none"


class _Display:
    """Display the wrapped ``widget`` when the object is the last expression of a cell."""

    widget = None

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


class ConfusionExplorer(_Display):
    """Confusion matrix as a grid of buttons: click (or pick) a cell to see its digits and their saliency maps.

    Parameters
    ----------
    interp : Interpretation
        With images (from ``Interpretation.from_model``).
    model : classifier, ensemble or PixelModel, optional
        When given, each shown digit gets an attribution map toward the predicted class.
    method : str
        Attribution method (``studies.interpret.attribute``).
    max_digits : int
        Digits drawn per cell (``indices`` always holds the whole cell).

    Attributes
    ----------
    widget : ipywidgets.Widget
        What is displayed.
    selected : (int, int)
        The selected (true, predicted) cell.
    indices : ndarray
        Dataset indices of every example in the selected cell, most confident first.
    shown : ndarray
        The first ``max_digits`` of ``indices`` (the drawn ones).
    buttons : dict
        (true, predicted) -> the cell's ``ipywidgets.Button`` (CSS class ``mnistlab-cell-T-P``); the
        selected one is outlined (``layout.border``) and has the CSS class ``mnistlab-cell-selected``.
    """

    def __init__(self, interp, model=None, method: str = "saliency", max_digits: int = 8):
        import ipywidgets as W

        if interp.images is None:
            raise ValueError("ConfusionExplorer needs an Interpretation with images; build it with "
                             "Interpretation.from_model(model, data).")
        self.interp, self.model, self.method, self.max_digits = interp, model, method, max_digits
        counts = interp.confusion().to_numpy()
        C = interp.num_classes
        off = counts[~np.eye(C, dtype=bool)]
        norm = LogNorm(vmin=1, vmax=max(int(off.max()) if off.size else 1, 2))
        cmap = matplotlib.colormaps["Reds"]
        cells = [W.HTML("<b>true \\ pred</b>")] + [W.HTML(f"<b>{c}</b>") for c in interp.classes]
        self.buttons = {}
        for t in range(C):
            cells.append(W.HTML(f"<b>{interp.classes[t]}</b>"))
            for p in range(C):
                n = int(counts[t, p])
                color = "#d9d9d9" if t == p else ("#ffffff" if n == 0 else to_hex(cmap(0.15 + 0.75 * norm(n))))
                b = W.Button(description=str(n), tooltip=f"true {interp.classes[t]} → predicted {interp.classes[p]}: {n}",
                             layout=W.Layout(width="auto", height="28px", padding="0px"))
                b.style.button_color = color
                b.style.font_weight = "bold" if t == p else "normal"
                b.add_class(f"mnistlab-cell-{t}-{p}")
                b.on_click(lambda _b, t=t, p=p: self.select(t, p))
                self.buttons[(t, p)] = b
                cells.append(b)
        grid = W.GridBox(cells, layout=W.Layout(grid_template_columns=f"70px repeat({C}, 48px)", grid_gap="2px"))
        options = [(c, i) for i, c in enumerate(interp.classes)]
        self.true_box = W.Dropdown(options=options, description="true", layout=W.Layout(width="150px"))
        self.pred_box = W.Dropdown(options=options, description="predicted", layout=W.Layout(width="170px"))
        self.true_box.observe(self._on_dropdown, names="value")
        self.pred_box.observe(self._on_dropdown, names="value")
        self.status = W.HTML()
        self.status.add_class("mnistlab-status")
        self.image = W.Image(format="png")
        self.image.add_class("mnistlab-digits")
        self._syncing = False
        self.selected = None
        self.widget = W.VBox([W.HTML(f"<b>Confusion matrix</b> ({len(interp):,} digits, accuracy "
                                     f"{interp.accuracy:.2%}): click a cell"),
                              grid, W.HBox([self.true_box, self.pred_box]), self.status, self.image])
        self.widget.add_class("mnistlab-confusion-explorer")
        pairs = interp.most_confused(1)
        first = (int(pairs["true"].iloc[0]), int(pairs["predicted"].iloc[0])) if len(pairs) else (0, 0)
        self.select(*first)

    def _on_dropdown(self, change):
        if not self._syncing:
            self.select(self.true_box.value, self.pred_box.value)

    def select(self, true: int, predicted: int) -> np.ndarray:
        """Select cell (``true``, ``predicted``): update ``indices``, the drawing and the controls.

        Returns
        -------
        ndarray
            ``indices``: dataset indices of every example in the cell.
        """
        true, predicted = int(true), int(predicted)
        if self.selected is not None:
            old = self.buttons[self.selected]
            old.layout.border = None
            old.remove_class("mnistlab-cell-selected")
        self.selected = (true, predicted)
        new = self.buttons[self.selected]
        new.layout.border = SELECTED_BORDER
        new.add_class("mnistlab-cell-selected")
        self.indices = self.interp.cell(true, predicted)
        self.shown = self.indices[:self.max_digits]
        maps = None
        if self.model is not None and len(self.shown):
            from ..studies.interpret import attribute

            maps = attribute(self.model, self.interp.images_of(self.shown), predicted, self.method).maps
        fig = Figure(figsize=(1.45 * max(len(self.shown), 1), 1.6 * (1 if maps is None else 2)))
        plot_cell(self.interp, true, predicted, maps, self.max_digits, ax=fig)
        fig.tight_layout()
        _show_png(self.image, figure_png(fig))
        names = self.interp.classes
        self.status.value = (f"<span class='mnistlab-selected' data-true='{true}' data-predicted='{predicted}'>"
                             f"true <b>{names[true]}</b> → predicted <b>{names[predicted]}</b>: "
                             f"{len(self.indices)} digit(s); indices {', '.join(map(str, self.shown))}"
                             f"{' …' if len(self.indices) > len(self.shown) else ''}</span>")
        self._syncing = True
        try:
            self.true_box.value, self.pred_box.value = true, predicted
        finally:
            self._syncing = False
        return self.indices


class PredictionsBrowser(_Display):
    """Filter the predictions by true and predicted class, sort by confidence or loss, page through them.

    Parameters
    ----------
    interp : Interpretation
        With images.
    page_size : int

    Attributes
    ----------
    widget : ipywidgets.Widget
    rows : DataFrame
        The filtered, sorted rows of ``interp.predictions``.
    page, pages : int
        The current page and the number of pages, both counted from 1 (as in the page box and the status).
    page_rows : DataFrame
        The rows on the current page (drawn and tabulated).

    Notes
    -----
    "all" in the class dropdowns has the value ``ALL`` (-1), not ``None``: ipywidgets treats a
    ``None`` value as "nothing selected" and the dropdown would go blank when "all" is chosen again.
    """

    ALL = -1

    SORTS = {"confidence, lowest first": ("confidence", True), "confidence, highest first": ("confidence", False),
             "loss, highest first": ("loss", False), "index": ("index", True)}

    def __init__(self, interp, page_size: int = 20):
        import ipywidgets as W

        if interp.images is None:
            raise ValueError("PredictionsBrowser needs an Interpretation with images.")
        self.interp, self.page_size = interp, page_size
        options = [("all", self.ALL)] + [(c, i) for i, c in enumerate(interp.classes)]
        self.true_box = W.Dropdown(options=options, description="true", layout=W.Layout(width="150px"))
        self.pred_box = W.Dropdown(options=options, description="predicted", layout=W.Layout(width="170px"))
        self.sort_box = W.Dropdown(options=list(self.SORTS), value="confidence, lowest first", description="sort",
                                   layout=W.Layout(width="260px"))
        self.errors_box = W.Checkbox(value=False, description="errors only", indent=False)
        self.page_box = W.BoundedIntText(value=1, min=1, max=1, description="page", layout=W.Layout(width="140px"))
        for w in (self.true_box, self.pred_box, self.sort_box, self.errors_box, self.page_box):
            w.observe(self._on_change, names="value")
        for w, name in ((self.true_box, "true"), (self.pred_box, "predicted"), (self.sort_box, "sort"),
                        (self.errors_box, "errors"), (self.page_box, "page")):
            w.add_class(f"mnistlab-{name}")
        self.status = W.HTML()
        self.status.add_class("mnistlab-browser-status")
        self.table = W.HTML()
        self.table.add_class("mnistlab-table")
        self.image = W.Image(format="png")
        self.image.add_class("mnistlab-page-digits")
        self.widget = W.VBox([W.HBox([self.true_box, self.pred_box, self.sort_box, self.errors_box, self.page_box]),
                              self.status, self.image, self.table])
        self.widget.add_class("mnistlab-predictions-browser")
        self._syncing = False
        self.update()

    def _on_change(self, change):
        if not self._syncing:
            self.update(page=self.page_box.value if change["owner"] is self.page_box else 1)

    def _class(self, box) -> int | None:
        """The class chosen in dropdown ``box``, None for "all"."""
        return None if box.value == self.ALL else box.value

    def set_filter(self, true: int | None = None, predicted: int | None = None,
                   sort: str = "confidence, lowest first", errors_only: bool = False) -> pd.DataFrame:
        """Set every control at once (None: all classes) and show page 1; return the filtered rows."""
        if sort not in self.SORTS:
            raise ValueError(f"sort must be one of {list(self.SORTS)}, not {sort!r}.")
        self._syncing = True
        try:
            self.true_box.value = self.ALL if true is None else int(true)
            self.pred_box.value = self.ALL if predicted is None else int(predicted)
            self.sort_box.value, self.errors_box.value = sort, errors_only
            self.page_box.value = 1
        finally:
            self._syncing = False
        return self.update()

    def update(self, page: int = 1) -> pd.DataFrame:
        """Recompute the rows from the controls, show page ``page`` (counted from 1, clipped to the
        pages there are); return the filtered rows."""
        key, ascending = self.SORTS[self.sort_box.value]
        self.rows = self.interp.filter(self._class(self.true_box), self._class(self.pred_box), sort=key,
                                       ascending=ascending, errors_only=self.errors_box.value)
        self.pages = pages = max(1, math.ceil(len(self.rows) / self.page_size))
        self.page = page = min(max(int(page), 1), pages)
        self._syncing = True
        try:
            self.page_box.max = pages
            self.page_box.value = page
        finally:
            self._syncing = False
        self.page_rows = self.rows.iloc[(page - 1) * self.page_size:page * self.page_size]
        self.status.value = (f"{len(self.rows):,} of {len(self.interp):,} predictions; page {page} of {pages}")
        if len(self.page_rows):
            names = self.interp.classes
            titles = [f"#{i} {names[int(r.true)]}→{names[int(r.predicted)]}\n{r.confidence:.2f}"
                      for i, r in zip(self.page_rows.index, self.page_rows.itertuples())]
            fig = Figure(figsize=(1.25 * 10, 1.45 * math.ceil(len(self.page_rows) / 10)))
            plot_digits(self.interp.images_of(self.page_rows.index), titles, ncols=10, ax=fig)
            fig.tight_layout()
            _show_png(self.image, figure_png(fig))
        else:
            _show_png(self.image, b"")
        cols = ["true", "predicted", "confidence", "loss"] + [f"p{k}" for k in range(self.interp.num_classes)]
        self.table.value = self.page_rows[cols].to_html(float_format=lambda v: f"{v:.3f}", border=0)
        return self.rows
