"""Sample inputs with ground truth, generated from scikit-image's bundled photos (no downloads).

Used by the napari sample-data menu, the headless demo, the tests and the benchmarks. Every
image is float32 in [0, 1], ``(Y, X, 3)`` unless a function says otherwise; every function is
deterministic for a given ``seed``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "HELD_OUT_PHOTOS",
    "VALIDATION_PHOTOS",
    "PHOTOS",
    "hazy_photo",
    "mixtures",
    "noisy_photo",
    "photo",
    "photo_with_missing_pixels",
    "segmentation_composite",
    "watermark_logo",
    "watermarked_photos",
]

#: skimage.data photos the samples and benchmarks use.
PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "brick", "grass", "rocket", "gravel")
#: More bundled ``skimage.data`` photos, for composites held out of development (see BENCHMARKS.md).
HELD_OUT_PHOTOS = ("coins", "moon", "cat", "immunohistochemistry", "hubble_deep_field", "clock")
#: Further bundled photos, kept for validating rules set on the others (``motorcycle`` is the left
#: view of ``skimage.data.stereo_motorcycle``).
VALIDATION_PHOTOS = ("retina", "cell", "text", "microaneurysms", "motorcycle")


def photo(name: str, size: int = 128, rgb: bool = True) -> np.ndarray:
    """A centred square crop of an ``skimage.data`` photo, resized to ``size`` x ``size``.

    Parameters
    ----------
    name
        One of :data:`PHOTOS`, :data:`HELD_OUT_PHOTOS` or :data:`VALIDATION_PHOTOS`.
    size
        Output height and width in pixels.
    rgb
        Return ``(Y, X, 3)`` (gray photos are repeated over channels); else ``(Y, X)``
        (colour photos are converted to luminance).
    """
    from skimage import color, data, transform

    known = PHOTOS + HELD_OUT_PHOTOS + VALIDATION_PHOTOS
    if name not in known:
        raise ValueError(f"unknown photo {name!r}; choose one of {known}")
    image = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    image = image[top : top + s, left : left + s]
    image = transform.resize(image, (size, size), anti_aliasing=True, preserve_range=True) / 255.0
    if rgb and image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if not rgb and image.ndim == 3:
        image = color.rgb2gray(image)
    return np.clip(image, 0, 1).astype(np.float32)


def noisy_photo(size: int = 128, sigma: float = 25 / 255, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut with additive Gaussian noise (clipped to [0, 1]).

    Returns
    -------
    noisy, clean
    """
    clean = photo("astronaut", size)
    rng = np.random.default_rng(seed)
    noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 1).astype(np.float32)
    return noisy, clean


def photo_with_missing_pixels(
    size: int = 128, fraction: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The coffee photo with a random ``fraction`` of its pixels missing (set to 0).

    Returns
    -------
    damaged, mask, clean
        ``mask`` is bool ``(Y, X)``, True where a pixel is missing.
    """
    clean = photo("coffee", size)
    rng = np.random.default_rng(seed)
    mask = rng.random((size, size)) < fraction
    damaged = np.where(mask[..., None], 0.0, clean).astype(np.float32)
    return damaged, mask, clean


def _hint_disks(
    region: np.ndarray,
    count: int,
    radius: int,
    margin: float,
    rng: np.random.Generator,
    spread: bool = True,
) -> np.ndarray:
    """``count`` small disks placed at least ``margin`` pixels inside ``region``.

    With ``spread`` the centres are those nearest the centres of a k-means split of the
    candidate positions (a user marks the different parts of a region, not one spot three
    times); otherwise they are drawn at random.
    """
    from scipy import ndimage
    from skimage.draw import disk

    depth = ndimage.distance_transform_edt(region)
    candidates = np.argwhere(depth >= margin)
    if len(candidates) == 0:
        candidates = np.argwhere(depth >= depth.max() * 0.7)
    count = min(count, len(candidates))
    chosen = list(rng.choice(len(candidates), size=count, replace=False))
    if spread:
        pos = candidates.astype(np.float64)
        centres = pos[chosen]
        for _ in range(20):
            assign = ((pos[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
            centres = np.stack(
                [pos[assign == j].mean(0) if np.any(assign == j) else centres[j] for j in range(count)]
            )
        chosen = [int(((pos - c) ** 2).sum(1).argmin()) for c in centres]
    out = np.zeros(region.shape, bool)
    for i in chosen:
        rr, cc = disk(tuple(candidates[i]), radius, shape=region.shape)
        out[rr, cc] = True
    return out & region


def segmentation_composite(
    size: int = 128,
    seed: int = 0,
    foreground: str = "brick",
    background: str = "astronaut",
    n_hints: int = 3,
    spread_hints: bool = True,
    strokes: bool = False,
    match_colours: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured region (``foreground`` photo through the horse silhouette) pasted on ``background``.

    With ``strokes`` the hints are scribbles instead of disks: the skeleton of each region
    shrunk away from the boundary (a line along the horse's body and legs, lines through the
    background), as a user marks every part of each region. With ``match_colours`` the
    foreground photo's colour histogram is matched to the background's (similar colour
    statistics: only texture and structure tell them apart).

    Returns
    -------
    image, true_mask, hints
        ``true_mask`` bool ``(Y, X)`` (True = foreground); ``hints`` uint8 ``(Y, X)``: 0 unknown,
        1 foreground, 2 background — a few small disks well inside the foreground and far out in
        the background, as a user would paint them.
    """
    from skimage import data, transform

    horse = ~data.horse()  # the silhouette is False in skimage's image
    h, w = horse.shape
    pad = (w - h) // 2
    horse = np.pad(horse, ((pad, w - h - pad), (0, 0)))
    true_mask = transform.resize(horse.astype(float), (size, size), order=1) > 0.5
    fg = photo(foreground, size)
    bg = photo(background, size)
    if match_colours:
        from skimage.exposure import match_histograms

        fg = np.clip(match_histograms(fg, bg, channel_axis=-1), 0, 1)
    image = np.where(true_mask[..., None], fg, bg).astype(np.float32)
    hints = np.zeros((size, size), np.uint8)
    if strokes:
        from scipy import ndimage
        from skimage.morphology import skeletonize

        back = skeletonize(ndimage.binary_erosion(~true_mask, iterations=max(2, size // 16)))
        fore = skeletonize(ndimage.binary_erosion(true_mask, iterations=max(1, size // 40)))
        hints[ndimage.binary_dilation(back)] = 2
        hints[ndimage.binary_dilation(fore) & true_mask] = 1
        return image, true_mask, hints
    rng = np.random.default_rng(seed)
    radius = max(2, size // 40)
    hints[_hint_disks(~true_mask, n_hints, radius, size / 8, rng, spread_hints)] = 2
    hints[_hint_disks(true_mask, n_hints, radius, size / 20, rng, spread_hints)] = 1
    return image, true_mask, hints


def mixtures(
    size: int = 128,
    weights: tuple[tuple[float, float], ...] = ((0.7, 0.3), (0.3, 0.7)),
    noise: float = 0.02,
    seed: int = 0,
    layers: tuple[str, str] = ("chelsea", "coffee"),
) -> tuple[list[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Mixtures ``w_a * a + w_b * b + noise`` of the same two photos, one per weight pair.

    Returns
    -------
    images, (layer_a, layer_b)
    """
    a, b = photo(layers[0], size), photo(layers[1], size)
    rng = np.random.default_rng(seed)
    images = [
        np.clip(wa * a + wb * b + rng.normal(0, noise, a.shape), 0, 1).astype(np.float32)
        for wa, wb in weights
    ]
    return images, (a, b)


def watermark_logo(size: int = 128, text: str = "DIP") -> np.ndarray:
    """A centred logo (a ring around some text) as a float ``(Y, X)`` coverage in [0, 1]."""
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    c = size / 2
    r_out, width = size * 0.36, max(2, size // 32)
    draw.ellipse((c - r_out, c - r_out, c + r_out, c + r_out), outline=255, width=width)
    font = ImageFont.load_default(size=max(8, int(size * 0.22)))
    box = draw.textbbox((0, 0), text, font=font)
    tw, th = box[2] - box[0], box[3] - box[1]
    draw.text((c - tw / 2 - box[0], c - th / 2 - box[1]), text, fill=255, font=font)
    return np.asarray(canvas, np.float32) / 255.0


def watermarked_photos(
    size: int = 128,
    alpha: float = 0.5,
    seed: int = 0,
    names: tuple[str, ...] = ("astronaut", "coffee", "chelsea"),
) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
    """Photos sharing one semi-transparent white logo: ``(1 - a) * photo + a * 1``.

    Returns
    -------
    images, alpha_mask, clean
        ``alpha_mask`` float ``(Y, X)``: the watermark's opacity per pixel (``alpha`` on the logo).
    """
    del seed  # the logo is fixed; kept for a uniform signature
    alpha_mask = (alpha * watermark_logo(size)).astype(np.float32)
    clean = [photo(n, size) for n in names]
    images = [((1 - alpha_mask[..., None]) * c + alpha_mask[..., None]).astype(np.float32) for c in clean]
    return images, alpha_mask, clean


def hazy_photo(
    size: int = 128,
    seed: int = 0,
    name: str = "rocket",
    airlight: tuple[float, float, float] = (0.85, 0.88, 0.92),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A photo under synthetic haze ``I = t * J + (1 - t) * A`` with a depth-like transmission.

    Depth grows towards the top of the image, with smooth random variation; ``t = exp(-d)``.

    Returns
    -------
    hazy, clean, transmission, airlight
        ``transmission`` float ``(Y, X)`` in (0, 1]; ``airlight`` ``(3,)``.
    """
    from scipy import ndimage

    clean = photo(name, size)
    rng = np.random.default_rng(seed)
    ramp = np.linspace(1.6, 0.2, size)[:, None] * np.ones((1, size))
    bumps = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), sigma=size / 8)
    bumps *= 0.3 / (np.abs(bumps).max() + 1e-8)
    transmission = np.exp(-np.clip(ramp + bumps, 0.05, None)).astype(np.float32)
    a = np.asarray(airlight, np.float32)
    hazy = (transmission[..., None] * clean + (1 - transmission[..., None]) * a).astype(np.float32)
    return np.clip(hazy, 0, 1), clean, transmission, a
