"""Draw a digit with the mouse in JupyterLab and watch the model read it (an anywidget).

:class:`DigitPad` is a canvas: the reader draws white strokes on black; at the end of every stroke
(and a few times a second while drawing) the canvas pixels go to Python, which turns them into an
MNIST digit (:func:`mnistlab.data.images.to_mnist`), predicts it and explains the prediction with a
saliency map (:func:`mnistlab.studies.interpret.attribute`). The widget shows the prediction, the
ten probabilities as bars, the 28 x 28 image the model saw and the saliency map. Its state is plain
Python (``prediction``, ``probabilities``, ``image``, ``saliency``), so it is tested without a browser
through :meth:`DigitPad.set_drawing`.

Examples
--------
>>> from mnistlab.viz.draw import DigitPad          # doctest: +SKIP
>>> pad = DigitPad()                                 # the shipped pretrained model
>>> pad                                              # last line of a cell: draw in it
>>> pad.prediction, pad.probabilities                # what the model read
"""
from __future__ import annotations

import anywidget
import matplotlib
import numpy as np
import traitlets
from ipywidgets.widgets.trait_types import bytes_serialization
from matplotlib.colors import to_hex

from .interpret import ATTRIBUTION_CMAP
from .style import class_colors

__all__ = ["DigitPad"]

_ESM = r"""
function render({ model, el }) {
  const size = model.get("canvas_size");
  el.classList.add("mnistlab-pad");
  el.innerHTML = `
    <div class="mnistlab-pad-left">
      <canvas class="mnistlab-pad-canvas" width="${size}" height="${size}"
              style="width:${size}px;height:${size}px"></canvas>
      <button class="mnistlab-pad-clear jupyter-button">Clear</button>
    </div>
    <div class="mnistlab-pad-right">
      <div class="mnistlab-pad-prediction"></div>
      <div class="mnistlab-pad-bars"></div>
      <div class="mnistlab-pad-images">
        <figure><canvas class="mnistlab-pad-seen" width="28" height="28"></canvas><figcaption>model input</figcaption></figure>
        <figure><canvas class="mnistlab-pad-saliency" width="28" height="28"></canvas><figcaption>saliency</figcaption></figure>
      </div>
    </div>`;
  const canvas = el.querySelector(".mnistlab-pad-canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const label = el.querySelector(".mnistlab-pad-prediction");
  const bars = el.querySelector(".mnistlab-pad-bars");
  const wipe = () => { ctx.fillStyle = "black"; ctx.fillRect(0, 0, size, size); };
  wipe();
  for (let k = 0; k < 10; k++) {
    bars.insertAdjacentHTML("beforeend",
      `<div class="mnistlab-pad-bar"><div class="mnistlab-pad-fill"></div><span>${k}</span></div>`);
  }

  // drawing: white round strokes; pixels (red channel, size x size bytes) go to Python
  let drawing = false, last = null, lastSent = 0;
  const send = () => {
    const rgba = ctx.getImageData(0, 0, size, size).data;
    const gray = new Uint8Array(size * size);
    for (let i = 0; i < gray.length; i++) gray[i] = rgba[4 * i];
    model.set("drawing", new DataView(gray.buffer));
    model.save_changes();
    lastSent = Date.now();
  };
  const point = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * size / r.width, (e.clientY - r.top) * size / r.height];
  };
  const line = (a, b) => {
    ctx.strokeStyle = "white"; ctx.lineWidth = model.get("pen_width");
    ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
  };
  canvas.addEventListener("pointerdown", (e) => {
    e.preventDefault(); e.stopPropagation();
    canvas.setPointerCapture(e.pointerId);
    drawing = true; last = point(e); line(last, last);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const p = point(e); line(last, p); last = p;
    if (Date.now() - lastSent > model.get("throttle_ms")) send();
  });
  const end = () => { if (drawing) { drawing = false; send(); } };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  el.querySelector(".mnistlab-pad-clear").addEventListener("click", () => {
    wipe(); model.set("drawing", new DataView(new ArrayBuffer(0))); model.save_changes();
  });
  model.on("msg:custom", (msg) => { if (msg && msg.type === "clear") wipe(); });

  // outputs, drawn from the synced state
  const paint = (selector, name) => {
    const c = el.querySelector(selector), g = c.getContext("2d"), dv = model.get(name);
    g.clearRect(0, 0, 28, 28);
    if (dv && dv.byteLength === 28 * 28 * 4) {
      const px = new Uint8ClampedArray(dv.buffer, dv.byteOffset, dv.byteLength);
      g.putImageData(new ImageData(new Uint8ClampedArray(px), 28, 28), 0, 0);
    }
  };
  const update = () => {
    const probs = model.get("_probabilities"), colors = model.get("_colors"), pred = model.get("_prediction");
    label.textContent = model.get("label");
    label.dataset.prediction = pred < 0 ? "" : String(pred);
    bars.querySelectorAll(".mnistlab-pad-fill").forEach((f, k) => {
      const p = probs.length === 10 ? probs[k] : 0;
      f.style.height = `${Math.round(100 * p)}%`;
      f.style.background = colors[k] || "#888";
      f.style.opacity = k === pred ? "1" : "0.55";
      f.title = `${k}: ${(100 * p).toFixed(1)}%`;
    });
    paint(".mnistlab-pad-seen", "_image");
    paint(".mnistlab-pad-saliency", "_saliency");
  };
  for (const name of ["label", "_probabilities", "_image", "_saliency", "_prediction"]) {
    model.on(`change:${name}`, update);
  }
  update();
}
export default { render };
"""

_CSS = """
.mnistlab-pad { display: flex; gap: 18px; align-items: flex-start; font-family: sans-serif; }
.mnistlab-pad-left { display: flex; flex-direction: column; gap: 6px; align-items: flex-start; }
.mnistlab-pad-canvas { outline: 1px solid #888; cursor: crosshair; touch-action: none; flex: none; }
.mnistlab-pad-prediction { font-size: 28px; font-weight: bold; min-height: 36px; }
.mnistlab-pad-bars { display: flex; gap: 4px; height: 110px; align-items: stretch; margin: 6px 0 4px; }
.mnistlab-pad-bar { width: 22px; display: flex; flex-direction: column; justify-content: flex-end;
                    align-items: center; font-size: 12px; }
.mnistlab-pad-fill { width: 100%; min-height: 1px; }
.mnistlab-pad-images { display: flex; gap: 12px; }
.mnistlab-pad-images figure { margin: 0; text-align: center; font-size: 12px; }
.mnistlab-pad-images canvas { width: 112px; height: 112px; image-rendering: pixelated;
                              border: 1px solid #ccc; display: block; }
"""

_EMPTY_LABEL = "draw a digit"


def _rgba(values: np.ndarray, cmap: str, vmin: float, vmax: float) -> bytes:
    """RGBA bytes (28 * 28 * 4) of a 28 x 28 map through a matplotlib colormap."""
    scaled = (np.asarray(values, np.float64) - vmin) / max(vmax - vmin, 1e-12)
    return matplotlib.colormaps[cmap](np.clip(scaled, 0, 1), bytes=True).tobytes()


class DigitPad(anywidget.AnyWidget):
    """A canvas to draw a digit on; shows the model's prediction, its probabilities and a saliency map.

    Displays itself in JupyterLab (make it the last line of a cell). Each finished stroke (and,
    while drawing, every ``throttle_ms``) sends the canvas to Python, which updates the outputs;
    the same happens from code with :meth:`set_drawing`.

    Parameters
    ----------
    model : classifier, optional
        Any mnistlab classifier (with its declared preprocessing); by default the shipped
        pretrained model (:func:`mnistlab.training.pretrained.load_pretrained`).
    method : str
        Attribution method for the map (see :func:`mnistlab.studies.interpret.attribute`).
    canvas_size : int
        Side of the square canvas, in CSS pixels (and canvas pixels).
    pen_width : int
        Stroke width in canvas pixels (about a tenth of ``canvas_size`` looks like MNIST).
    throttle_ms : int
        Least time between two sends while a stroke is being drawn.

    Attributes
    ----------
    prediction : int or None
        The predicted class of the current drawing; ``None`` when the pad is empty.
    probabilities : ndarray (10,) or None
        The model's class probabilities (they sum to 1).
    image : ndarray (28, 28) uint8 or None
        The MNIST-style digit the model saw (from ``to_mnist``).
    saliency : ndarray (28, 28) float or None
        Signed attribution toward the predicted class (positive: raises its score).
    label : str
        The text shown above the bars, e.g. ``"7 (98.5%)"``.

    Notes
    -----
    The DOM has stable CSS classes: ``mnistlab-pad`` (the whole widget), ``mnistlab-pad-canvas``,
    ``mnistlab-pad-prediction`` (its ``data-prediction`` holds the class, empty when none),
    ``mnistlab-pad-clear``, ``mnistlab-pad-bars``, ``mnistlab-pad-seen`` and ``mnistlab-pad-saliency``.
    """

    _esm = _ESM
    _css = _CSS
    # the browser sends a DataView, which arrives as a memoryview: bytes_serialization makes it bytes
    drawing = traitlets.Bytes(b"", help="canvas pixels from the browser, canvas_size**2 grayscale bytes").tag(
        sync=True, **bytes_serialization)
    canvas_size = traitlets.Int(280).tag(sync=True)
    pen_width = traitlets.Int(22).tag(sync=True)
    throttle_ms = traitlets.Int(200).tag(sync=True)
    label = traitlets.Unicode(_EMPTY_LABEL).tag(sync=True)
    _prediction = traitlets.Int(-1).tag(sync=True)
    _probabilities = traitlets.List(traitlets.Float()).tag(sync=True)
    _image = traitlets.Bytes(b"").tag(sync=True)
    _saliency = traitlets.Bytes(b"").tag(sync=True)
    _colors = traitlets.List(traitlets.Unicode()).tag(sync=True)

    def __init__(self, model=None, *, method: str = "saliency", canvas_size: int = 280, pen_width: int = 22,
                 throttle_ms: int = 200, **kwargs):
        if model is None:
            from ..training.pretrained import load_pretrained

            model = load_pretrained()
        super().__init__(canvas_size=canvas_size, pen_width=pen_width, throttle_ms=throttle_ms,
                         _colors=[to_hex(c) for c in class_colors(10)], **kwargs)
        self.model, self.method = model, method
        self.prediction = self.probabilities = self.image = self.saliency = None

    @traitlets.observe("drawing")
    def _on_drawing(self, change):
        data, n = change["new"], self.canvas_size
        if not data:
            self.clear()
            return
        if len(data) != n * n:
            self.label = f"unexpected drawing of {len(data)} bytes (want {n * n})"
            return
        try:
            self.set_drawing(np.frombuffer(data, np.uint8).reshape(n, n))
        except ValueError as exc:  # e.g. ink everywhere: say so on the pad rather than in the kernel log
            self._reset(f"cannot read the drawing: {exc}")

    def set_drawing(self, drawing) -> int | None:
        """Read a drawing as the canvas would send it, and update every output.

        Parameters
        ----------
        drawing : array_like (H, W)
            Grayscale pixels in 0..255 (light ink on dark, or dark on light: ``to_mnist`` decides
            by the border), at least 8 x 8. A blank drawing clears the pad. The canvas in the
            browser is not redrawn.

        Returns
        -------
        int or None
            ``prediction``.

        Raises
        ------
        ValueError
            If ``drawing`` is not a 2-D array of at least 8 x 8 pixels.
        """
        from ..data.images import to_mnist
        from ..studies.interpret import attribute
        from ..training.loop import predict

        array = np.asarray(drawing)
        if array.ndim != 2 or min(array.shape) < 8 or not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"DigitPad.set_drawing needs a 2-D grayscale array (H, W) of numbers, at least 8 x 8; "
                             f"got shape {array.shape} of {array.dtype}.")
        array = np.clip(np.nan_to_num(array.astype(np.float64)), 0, 255).astype(np.uint8)
        if array.min() == array.max():
            self.clear()
            return None
        digit = to_mnist(array)                                    # uint8 tensor (28, 28)
        x = digit[None]
        probs = predict(self.model, x)[0]
        pred = int(probs.argmax())
        sal = attribute(self.model, x, pred, self.method).maps[0]
        self.image, self.probabilities, self.prediction, self.saliency = digit.numpy(), probs, pred, sal
        vmax = float(np.abs(sal).max()) or 1.0
        with self.hold_sync():
            self._image = _rgba(self.image, "gray_r", 0, 255)
            self._saliency = _rgba(sal, ATTRIBUTION_CMAP, -vmax, vmax)
            self._probabilities = [float(p) for p in probs]
            self._prediction = pred
            self.label = f"{pred} ({probs[pred]:.1%})"
        return pred

    def clear(self) -> None:
        """Empty the canvas and every output (``prediction`` and the arrays become ``None``)."""
        self._reset(_EMPTY_LABEL)
        self.send({"type": "clear"})

    def _reset(self, label: str) -> None:
        self.prediction = self.probabilities = self.image = self.saliency = None
        with self.hold_sync():
            self._image = self._saliency = b""
            self._probabilities = []
            self._prediction = -1
            self.label = label
