"""Examples for tests/test_viz_contract.py: one small call per public function of each mnistlab.viz module.

``tests/viz_examples/<module>.py`` holds ``EXAMPLES = {"plot_x": lambda: ((args...), {kwargs...})}``
(small synthetic data; ``"axes": n`` or ``"axes": (nrows, ncols)`` in the kwargs says how many axes
a multi-panel plot needs) and optionally ``NOT_PLOTS = {"name": "why it draws nothing"}``.
"""
