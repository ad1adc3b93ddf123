"""A training report: one self-contained HTML page (PNGs embedded) plus the PNG files.

Pictures: loss and accuracy curves per epoch and the confusion matrix (matplotlib, the
optional `report` extra; without it the page says so and shows the numbers as tables),
a grid of misclassified test images and the first conv layer's filters (Pillow).
"""
from __future__ import annotations

import base64
import html
import io
import os

import numpy as np
from PIL import Image, ImageDraw

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # plots are optional
    plt = None


def _png_bytes_from_figure(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _png_bytes_from_image(img: Image.Image):
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def curves_png(history):
    """Train/test loss and test accuracy per epoch (matplotlib), or None without it."""
    if plt is None or not history:
        return None
    epochs = [r.epoch for r in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax1.plot(epochs, [r.train_loss for r in history], "o-", label="train")
    ax1.plot(epochs, [r.test_loss for r in history], "s-", label="test")
    ax1.set_xlabel("epoch"), ax1.set_ylabel("loss"), ax1.set_title("Loss"), ax1.legend()
    ax2.plot(epochs, [100 * r.test_accuracy for r in history], "o-", color="tab:green")
    ax2.set_xlabel("epoch"), ax2.set_ylabel("accuracy (%)"), ax2.set_title("Test accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.set_xticks(epochs)
    return _png_bytes_from_figure(fig)


def confusion_png(confusion, class_names):
    """The confusion matrix as a heat map with counts (matplotlib), or None without it."""
    if plt is None:
        return None
    n = len(confusion)
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    im = ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title("Confusion matrix (test)")
    limit = confusion.max() / 2 if confusion.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if confusion[i, j] > limit else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _png_bytes_from_figure(fig)


def mistakes_png(mistakes, class_names, columns=8, scale=3):
    """A grid of misclassified images, each captioned 'predicted (true)'."""
    if not mistakes:
        return None
    h, w = mistakes[0][0].shape
    cell_w, cell_h = w * scale, h * scale + 14
    rows = (len(mistakes) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (img, true, pred) in enumerate(mistakes):
        x, y = (k % columns) * cell_w, (k // columns) * cell_h
        tile = Image.fromarray((255 * img).astype(np.uint8)).resize((w * scale, h * scale),
                                                                   Image.NEAREST)
        sheet.paste(tile.convert("RGB"), (x, y))
        draw.text((x + 2, y + h * scale + 1), f"{class_names[pred][:7]} ({class_names[true][:7]})",
                  fill=(200, 0, 0))
    return _png_bytes_from_image(sheet)


def filters_png(weight, tile=48, columns=8):
    """The first conv layer's filters (out, in, kh, kw), each scaled to its own range and
    enlarged to about `tile` pixels."""
    if weight is None:
        return None
    w = np.asarray(weight, dtype=np.float64).mean(axis=1)   # average over input channels
    count, kh, kw = w.shape
    scale = max(1, tile // max(kh, kw))
    rows = (count + columns - 1) // columns
    pad = 4
    sheet = Image.new("L", (columns * (kw * scale + pad), rows * (kh * scale + pad)), 255)
    for k in range(count):
        f = w[k]
        span = f.max() - f.min()
        f = (f - f.min()) / span if span > 0 else np.zeros_like(f)
        tile = Image.fromarray((255 * f).astype(np.uint8)).resize((kw * scale, kh * scale),
                                                                 Image.NEAREST)
        sheet.paste(tile, ((k % columns) * (kw * scale + pad), (k // columns) * (kh * scale + pad)))
    return _png_bytes_from_image(sheet)


def first_conv_weight(model):
    """The weight array of the model's first Conv2d, or None for models without one."""
    from .nn import Conv2d
    for module in model.modules():
        if isinstance(module, Conv2d):
            return module.weight.numpy()
    return None


def _table(rows, header):
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(directory, history, evaluation, model, class_names, title="Training report",
                 details=None):
    """Write `index.html` and the PNGs into `directory`; returns the HTML file's path."""
    os.makedirs(directory, exist_ok=True)
    pictures = {
        "curves.png": curves_png(history),
        "confusion.png": confusion_png(evaluation.confusion, class_names),
        "misclassified.png": mistakes_png(evaluation.mistakes, class_names),
        "filters.png": filters_png(first_conv_weight(model)),
    }
    for name, data in pictures.items():
        if data is not None:
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)

    def img(name, alt):
        data = pictures[name]
        if data is None:
            return None
        src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        return f'<img src="{src}" alt="{html.escape(alt)}">'

    no_plot = ("<p><em>matplotlib is not installed, so plots are left out "
               "(pip install -e '.[report]').</em></p>")
    epochs = _table([(r.epoch, f"{r.train_loss:.4f}", f"{r.test_loss:.4f}",
                      f"{100 * r.test_accuracy:.2f}%", f"{r.seconds:.1f}",
                      f"{r.samples_per_second:,.0f}") for r in history],
                    ["epoch", "train loss", "test loss", "test accuracy", "seconds", "img/s"])
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        _table(sorted((details or {}).items()), ["setting", "value"]),
        f"<h2>Final test accuracy: {100 * evaluation.accuracy:.2f}%</h2>",
        "<h2>Curves</h2>", img("curves.png", "loss and accuracy curves") or no_plot, epochs,
        "<h2>Confusion matrix</h2>",
        img("confusion.png", "confusion matrix") or
        _table([[class_names[i]] + list(row) for i, row in enumerate(evaluation.confusion)],
               ["true \\ predicted"] + list(class_names)),
        "<h2>Misclassified test images</h2><p>Caption: predicted (true).</p>",
        img("misclassified.png", "misclassified images") or "<p>None kept.</p>",
        "<h2>First convolution layer's filters</h2>",
        img("filters.png", "first conv filters") or "<p>This model has no convolution.</p>",
    ]
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}"
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
            "padding:3px 8px;text-align:right}img{max-width:100%}</style></head><body>"
            + "\n".join(sections) + "</body></html>")
    path = os.path.join(directory, "index.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path
