"""Every public plot function of every mnistlab.viz module draws into the caller's axes and leaves its layout alone.

For each module ``mnistlab/viz/<module>.py`` there must be ``tests/viz_examples/<module>.py`` with

    EXAMPLES = {"plot_x": lambda: ((args...), {kwargs...}), ...}      # small synthetic data
    NOT_PLOTS = {"tile": "returns an array, draws nothing"}            # optional: public non-plot functions

The one canvas keyword is ``ax``. The test calls each function with the caller's ``ax=``: one Axes,
the grid of Axes the example asks for with ``"ax": n`` or ``"ax": (nrows, ncols)`` in its kwargs, or an
empty Figure for a plot that lays out a grid of its own (``"ax": "figure"``); and again with a SubFigure
of a larger figure. It checks that the plot returned the caller's (top-level) figure, drew into it,
opened no other figure, and left the figure's layout (subplot parameters, layout engine, positions
of the caller's axes) as it was. No public function of ``mnistlab.viz`` takes ``axes=`` or ``fig=``.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import mnistlab.viz  # noqa: E402

EXAMPLES_DIR = Path(__file__).parent / "viz_examples"

#: Modules of mnistlab.viz that hold no plots: palettes and the figure store.
INFRASTRUCTURE = {"store": "saves figures, draws nothing", "style": "palettes only"}

#: The caller's layout marker: unusual subplot parameters a tight_layout or subplots_adjust would change.
MARKER = dict(left=0.211, right=0.837, bottom=0.173, top=0.771, wspace=0.377, hspace=0.419)

VIZ_MODULES = sorted(m.name for m in pkgutil.iter_modules(mnistlab.viz.__path__)
                     if not m.name.startswith("_") and m.name not in INFRASTRUCTURE)


def _public_functions(module) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in dir(module) if not n.startswith("_")]
    return [n for n in names if inspect.isfunction(getattr(module, n, None))
            and getattr(module, n).__module__ == module.__name__]


def _examples(name: str):
    path = EXAMPLES_DIR / f"{name}.py"
    if not path.is_file():
        return None
    return importlib.import_module(f"viz_examples.{name}")


def _cases():
    out = []
    for name in VIZ_MODULES:
        module = importlib.import_module(f"mnistlab.viz.{name}")
        for fn in _public_functions(module):
            out.append(pytest.param(name, fn, id=f"{name}.{fn}"))
    return out


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("name", VIZ_MODULES)
def test_every_viz_module_has_examples(name):
    examples = _examples(name)
    assert examples is not None, (
        f"mnistlab/viz/{name}.py has no examples for the axes contract test: write tests/viz_examples/{name}.py "
        f"with EXAMPLES = {{'plot_x': lambda: ((args...), {{kwargs...}})}} for each of its public functions "
        f"(see tests/viz_examples/embed.py).")
    module = importlib.import_module(f"mnistlab.viz.{name}")
    public = set(_public_functions(module))
    covered = set(getattr(examples, "EXAMPLES", {})) | set(getattr(examples, "NOT_PLOTS", {}))
    missing = sorted(public - covered)
    assert not missing, (f"tests/viz_examples/{name}.py has no example for {missing}: add an EXAMPLES entry "
                         f"(or a NOT_PLOTS entry with the reason, for a function that draws nothing).")
    stale = sorted(covered - public)
    assert not stale, f"tests/viz_examples/{name}.py names functions that mnistlab.viz.{name} does not export: {stale}."
    for fn, reason in getattr(examples, "NOT_PLOTS", {}).items():
        assert isinstance(reason, str) and reason.strip(), f"NOT_PLOTS[{fn!r}] needs a reason."


@pytest.mark.parametrize("name", sorted(m.name for m in pkgutil.iter_modules(mnistlab.viz.__path__)
                                        if not m.name.startswith("_")))
def test_one_canvas_keyword(name):
    """``ax`` is the only canvas keyword: no public function takes ``axes=`` or ``fig=None`` (a function that
    takes a figure to convert, such as ``figure_to_array(fig)``, needs it and is no canvas keyword)."""
    module = importlib.import_module(f"mnistlab.viz.{name}")
    legacy = {}
    for fn in _public_functions(module):
        params = inspect.signature(getattr(module, fn)).parameters
        kw = [k for k in ("axes", "fig") if k in params and (k == "axes" or params[k].default is None)]
        if kw:
            legacy[fn] = kw
    assert not legacy, (f"mnistlab.viz.{name} still takes {legacy}: take ax=None (an Axes, an array of Axes, or a "
                        f"Figure / SubFigure) and open it with mnistlab.viz.common.panels.")


def _target(fn, kwargs: dict):
    """(caller's figure, value to pass as ax=, the caller's axes) for the example's ``"ax"`` spec."""
    if "ax" not in inspect.signature(fn).parameters:
        pytest.fail(f"{fn.__module__}.{fn.__name__} takes no ax=: every public plot function must draw into a "
                    f"caller's axes (or be listed in NOT_PLOTS with the reason it draws nothing).")
    fig = plt.figure(figsize=(8, 6), layout=None)
    fig.subplots_adjust(**MARKER)
    shape = kwargs.pop("ax", None)
    if shape is None:
        ax = fig.add_subplot(111)
        return fig, ax, [ax]
    if shape == "figure":
        return fig, fig, []
    shape = (1, shape) if isinstance(shape, int) else tuple(shape)
    grid = fig.subplots(*shape, squeeze=False)
    value = grid if shape[0] > 1 else grid.ravel()
    return fig, value, list(grid.ravel())


def _example_without_ax(name: str, fn_name: str):
    """(function, args, kwargs less ``ax``) of the function's example; a skip where it has none (reported elsewhere)."""
    examples = _examples(name)
    if examples is None or fn_name not in getattr(examples, "EXAMPLES", {}):
        pytest.skip("no example (reported by the other tests)")
    fn = getattr(importlib.import_module(f"mnistlab.viz.{name}"), fn_name)
    args, kwargs = examples.EXAMPLES[fn_name]()
    return fn, args, {k: v for k, v in kwargs.items() if k != "ax"}


def _drawn(ax) -> bool:
    return ax.has_data() or bool(ax.texts) or bool(ax.child_axes) or any(a.has_data() for a in ax.child_axes)


@pytest.mark.parametrize("name, fn_name", _cases())
def test_plot_draws_into_the_callers_axes(name, fn_name):
    examples = _examples(name)
    if examples is None or fn_name not in getattr(examples, "EXAMPLES", {}):
        if examples is not None and fn_name in getattr(examples, "NOT_PLOTS", {}):
            return  # a documented non-plot helper (checked in test_every_viz_module_has_examples)
        pytest.fail(f"no example for mnistlab.viz.{name}.{fn_name}: add it to tests/viz_examples/{name}.py.")
    fn = getattr(importlib.import_module(f"mnistlab.viz.{name}"), fn_name)
    args, kwargs = examples.EXAMPLES[fn_name]()
    kwargs = dict(kwargs)
    fig, value, caller_axes = _target(fn, kwargs)
    positions = [a.get_position(original=True).bounds for a in caller_axes]
    before = set(plt.get_fignums())
    out = fn(*args, ax=value, **kwargs)
    where = f"mnistlab.viz.{name}.{fn_name}(ax=...)"
    assert out is fig, f"{where} returned {type(out).__name__} {out!r}, not the caller's figure."
    assert set(plt.get_fignums()) <= before, f"{where} opened a figure of its own besides drawing into the caller's."
    assert fig.get_layout_engine() is None, f"{where} switched on a layout engine of the caller's figure."
    pars = fig.subplotpars
    now = {k: getattr(pars, k) for k in MARKER}
    assert now == pytest.approx(MARKER), f"{where} changed the caller's subplot parameters (tight_layout?): {now}."
    for a, bounds in zip(caller_axes, positions):
        assert a.get_position(original=True).bounds == pytest.approx(bounds), f"{where} moved or resized one of the caller's axes."
    drawn = [a for a in (caller_axes or fig.axes) if _drawn(a)]
    assert drawn, f"{where} drew nothing into the caller's axes."
    assert fig.axes, f"{where} left the caller's figure without axes."


@pytest.mark.parametrize("name, fn_name", _cases())
def test_plot_draws_into_a_subfigure(name, fn_name):
    """``ax=`` a SubFigure: the plot adds its panels there, returns the top-level figure, touches nothing else."""
    fn, args, kwargs = _example_without_ax(name, fn_name)
    fig = plt.figure(figsize=(12, 6), layout=None)
    fig.subplots_adjust(**MARKER)
    left, right = fig.subfigures(1, 2)
    keep = left.add_subplot(111)
    position = keep.get_position(original=True).bounds
    before = set(plt.get_fignums())
    out = fn(*args, ax=right, **kwargs)
    where = f"mnistlab.viz.{name}.{fn_name}(ax=subfigure)"
    assert out is fig, f"{where} returned {type(out).__name__}, not the top-level figure of the subfigure."
    assert set(plt.get_fignums()) <= before, f"{where} opened a figure of its own."
    assert fig.get_layout_engine() is None, f"{where} switched on a layout engine of the caller's figure."
    assert {k: getattr(fig.subplotpars, k) for k in MARKER} == pytest.approx(MARKER), f"{where} laid out the figure."
    assert keep.get_position(original=True).bounds == pytest.approx(position), f"{where} moved the caller's other axes."
    assert left.axes == [keep] and not keep.has_data(), f"{where} drew outside its subfigure."
    assert any(_drawn(a) for a in right.axes), f"{where} drew nothing into the subfigure."


@pytest.mark.parametrize("name, fn_name", _cases())
def test_plot_without_axes_makes_its_own_figure(name, fn_name):
    fn, args, kwargs = _example_without_ax(name, fn_name)
    out = fn(*args, **kwargs)
    assert isinstance(out, Figure), f"mnistlab.viz.{name}.{fn_name}() returned {type(out).__name__}, not a Figure."
    assert any(_drawn(a) for a in out.axes), f"mnistlab.viz.{name}.{fn_name}() drew nothing."


def test_the_contract_test_catches_a_plot_that_lays_out_the_callers_figure():
    """The checks above fail on a function that calls tight_layout on a caller's figure."""
    def bad(data, ax=None):
        fig = ax.figure if ax is not None else plt.figure()
        ax = ax or fig.add_subplot()
        ax.plot(data)
        fig.tight_layout()
        return fig

    fig = plt.figure(layout=None)
    fig.subplots_adjust(**MARKER)
    ax = fig.add_subplot(111)
    bad(np.arange(3), ax=ax)
    assert {k: getattr(fig.subplotpars, k) for k in MARKER} != pytest.approx(MARKER)
