"""Synthetic watermarks of several kinds, stamped on public photos (scikit-image's), for the benchmarks.

A mark is a colour per pixel ``W`` ``(Y, X, 3)`` and an opacity ``A`` ``(Y, X)``, both in [0, 1];
it is laid over a photo ``y`` as ``A * W + (1 - A) * y``. Kinds:

- ``logo``: the sample's white ring around "DIP" (``samples.watermark_logo``) at opacity 0.5.
- ``text``: thin white lettering at ``opacity`` (default 0.45) with a faint dark outline (opacity
  0.25) and a dark drop shadow (0.2), drawn with Pillow's bundled font.
- ``colour``: a logo in colour at opacity 0.5: an orange ring, a blue bar, green lettering.
- ``opaque``: a fully opaque badge (a dark red rounded box with white lettering, opacity 1).
"""

from __future__ import annotations

import numpy as np

__all__ = ["KINDS", "make_mark", "photos", "stamp"]

KINDS = ("logo", "text", "colour", "opaque")


def _font(px: int):  # noqa: ANN202 - Pillow's font type
    from PIL import ImageFont

    return ImageFont.load_default(size=max(8, px))


def _layer(shape: tuple[int, int], draw_fn) -> np.ndarray:  # noqa: ANN001
    """Coverage ``(Y, X)`` in [0, 1] of what ``draw_fn(ImageDraw)`` paints (white on black)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (shape[1], shape[0]), 0)
    draw_fn(ImageDraw.Draw(canvas))
    return np.asarray(canvas, np.float32) / 255.0


def _text_at(draw, centre: tuple[float, float], text: str, font, **kw) -> None:  # noqa: ANN001
    box = draw.textbbox((0, 0), text, font=font, **{k: v for k, v in kw.items() if k == "stroke_width"})
    tw, th = box[2] - box[0], box[3] - box[1]
    draw.text((centre[1] - tw / 2 - box[0], centre[0] - th / 2 - box[1]), text, font=font, **kw)


def _over(w: np.ndarray, a: np.ndarray, colour, cover: np.ndarray, opacity: float) -> None:  # noqa: ANN001
    """Composite a layer of one ``colour`` and ``opacity * cover`` over the mark ``(w, a)`` in place."""
    top = opacity * cover
    new_a = top + (1 - top) * a
    safe = np.where(new_a > 0, new_a, 1.0)
    w[:] = (top[..., None] * np.asarray(colour, np.float32) + ((1 - top) * a)[..., None] * w) / safe[
        ..., None
    ]
    a[:] = new_a


def make_mark(
    kind: str, shape: tuple[int, int], opacity: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The mark ``(W, A)`` of ``kind`` on a canvas of ``shape`` ``(Y, X)``, drawn at its centre."""
    h, w = shape
    c = (h / 2, w / 2)
    W = np.zeros((h, w, 3), np.float32)  # noqa: N806
    A = np.zeros((h, w), np.float32)  # noqa: N806
    s = min(h, w)
    if kind == "logo":
        from napari_doubledip.samples import watermark_logo

        cover = np.zeros(shape, np.float32)
        logo = watermark_logo(s)
        y0, x0 = (h - s) // 2, (w - s) // 2
        cover[y0 : y0 + s, x0 : x0 + s] = logo
        _over(W, A, (1, 1, 1), cover, 0.5 if opacity is None else opacity)
    elif kind == "text":
        font = _font(int(s * 0.13))
        text = "© STOCKPIX"

        def shadow(d) -> None:  # noqa: ANN001
            _text_at(d, (c[0] + 2, c[1] + 2), text, font, fill=255)

        def outline(d) -> None:  # noqa: ANN001
            _text_at(d, c, text, font, fill=255, stroke_width=1, stroke_fill=255)

        def letters(d) -> None:  # noqa: ANN001
            _text_at(d, c, text, font, fill=255)

        _over(W, A, (0.05, 0.05, 0.05), _layer(shape, shadow), 0.2)
        _over(W, A, (0.0, 0.0, 0.0), np.clip(_layer(shape, outline) - _layer(shape, letters), 0, 1), 0.25)
        _over(W, A, (1, 1, 1), _layer(shape, letters), 0.45 if opacity is None else opacity)
    elif kind == "colour":
        r = s * 0.3
        op = 0.5 if opacity is None else opacity
        width = max(3, s // 24)
        ring = _layer(
            shape, lambda d: d.ellipse((c[1] - r, c[0] - r, c[1] + r, c[0] + r), outline=255, width=width)
        )
        _over(W, A, (1.0, 0.55, 0.0), ring, op)
        bar = _layer(
            shape,
            lambda d: d.rectangle(
                (c[1] - r * 0.8, c[0] + r * 0.15, c[1] + r * 0.8, c[0] + r * 0.35), fill=255
            ),
        )
        _over(W, A, (0.1, 0.3, 0.9), bar, op)
        font = _font(int(s * 0.14))
        _over(
            W,
            A,
            (0.1, 0.75, 0.2),
            _layer(shape, lambda d: _text_at(d, (c[0] - r * 0.2, c[1]), "GEO", font, fill=255)),
            op,
        )
    elif kind == "opaque":
        bw, bh = s * 0.42, s * 0.16
        box = _layer(
            shape,
            lambda d: d.rounded_rectangle(
                (c[1] - bw / 2, c[0] - bh / 2, c[1] + bw / 2, c[0] + bh / 2), radius=bh / 4, fill=255
            ),
        )
        _over(W, A, (0.55, 0.05, 0.1), box, 1.0)
        font = _font(int(bh * 0.6))
        _over(W, A, (1, 1, 1), _layer(shape, lambda d: _text_at(d, c, "PROOF", font, fill=255)), 1.0)
    else:
        raise ValueError(f"unknown kind {kind!r}; choose one of {KINDS}")
    return W, A


def photos(
    k: int, size: int, jitter: int = 0, seed: int = 0, names: tuple[str, ...] | None = None
) -> list[np.ndarray]:
    """``k`` different clean RGB photos ``(Y, X, 3)`` in [0, 1]: crops of scikit-image's photos.

    The first three are ``astronaut, coffee, chelsea`` at ``size`` (the sample's); more are other
    crops (other places, zooms) of those and of ``rocket``. With ``jitter`` > 0 each photo's
    height and width are ``size`` plus a random 0..jitter pixels. ``names``: other scikit-image
    photos (``data.<name>``, centre crops) instead of the first three, e.g. ones not used for
    tuning (``rocket,cat,immunohistochemistry``).
    """
    from skimage import data, transform

    rng = np.random.default_rng(seed)
    chosen = names or ("astronaut", "coffee", "chelsea")
    sources = [np.asarray(getattr(data, n)())[..., :3] for n in chosen] + [data.rocket()]
    out = []
    for i in range(k):
        src = sources[i % len(sources)] if i >= len(chosen) else sources[i]
        sh, sw = src.shape[:2]
        hh = size + (int(rng.integers(0, jitter + 1)) if jitter else 0)
        ww = size + (int(rng.integers(0, jitter + 1)) if jitter else 0)
        if i < len(chosen):
            side = min(sh, sw)
            top, left = (sh - side) // 2, (sw - side) // 2
            crop = src[top : top + side, left : left + side]
        else:  # another place and zoom of a photo
            side = int(min(sh, sw) * rng.uniform(0.55, 0.85))
            top, left = int(rng.integers(0, sh - side + 1)), int(rng.integers(0, sw - side + 1))
            crop = src[top : top + side, left : left + side]
        img = transform.resize(crop, (hh, ww), anti_aliasing=True, preserve_range=True) / 255.0
        out.append(np.clip(img, 0, 1).astype(np.float32))
    return out


def stamp(
    clean: list[np.ndarray],
    W: np.ndarray,
    A: np.ndarray,
    anchor: str = "centre",
    inset: int = 6,  # noqa: N803
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Lay the mark over each photo: centred, or by a corner (``"bottom-right"``, ...) ``inset`` px in.

    The mark's canvas is cropped to its bounding box first for corner anchors. Returns the
    watermarked images and each image's true opacity map (for the mask's IoU).
    """
    if anchor != "centre":
        ys, xs = np.nonzero(A > 0)
        W, A = (
            W[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1],
            A[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1],
        )  # noqa: N806
    mh, mw = A.shape
    images, alphas = [], []
    for y in clean:
        h, w = y.shape[:2]
        if anchor == "centre":
            top, left = (h - mh) // 2, (w - mw) // 2
        else:
            vert, horiz = anchor.split("-")
            top = inset if vert == "top" else h - mh - inset
            left = inset if horiz == "left" else w - mw - inset
        a = np.zeros((h, w), np.float32)
        wc = np.zeros((h, w, 3), np.float32)
        # clip the mark to the image (a centred canvas larger than the image)
        sy0, sx0 = max(0, -top), max(0, -left)
        ty0, tx0 = max(0, top), max(0, left)
        ny, nx = min(mh - sy0, h - ty0), min(mw - sx0, w - tx0)
        a[ty0 : ty0 + ny, tx0 : tx0 + nx] = A[sy0 : sy0 + ny, sx0 : sx0 + nx]
        wc[ty0 : ty0 + ny, tx0 : tx0 + nx] = W[sy0 : sy0 + ny, sx0 : sx0 + nx]
        images.append(np.clip(a[..., None] * wc + (1 - a[..., None]) * y, 0, 1).astype(np.float32))
        alphas.append(a)
    return images, alphas
