"""mnistlab.viz.draw holds DigitPad, an anywidget canvas (a class, tested in tests/test_draw.py and in a browser)."""
EXAMPLES = {}
