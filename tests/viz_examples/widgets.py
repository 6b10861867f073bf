"""mnistlab.viz.widgets holds ipywidgets explorers (classes, tested in tests/test_widgets.py, tests/test_interpret.py and in a browser)."""
EXAMPLES = {}
NOT_PLOTS = {"figure_png": "returns PNG bytes of a figure; draws nothing",
             "png_size": "reads the pixel size of PNG bytes; draws nothing"}
