"""The watermark task's cleaned candidates that do not depend on the generators, and the choice per part.

With the mark's support from the K images (:func:`~napari_doubledip.core.priors.watermark.estimate_support`),
each part of the mark is cleaned by whichever of several inversions suits it: the generators'
or one of these, from the images alone (the same whatever the number of steps run):

- the white fit: the opacity fitted over the images filled in under the strokes;
- the per-pixel fit of opacity and colour (:func:`fit_overlay`), an opaque patch filled in
  (beside it, the opacity from the photos' attenuated differences: :func:`beside_opaque`);
- the matte: one shared opacity that leaves the fewest edges in the K photos, a gain per
  image and channel (:func:`matte_candidate`; made only when the photos take the mark
  differently);
- the shared-colour matte: opacity AND colour per pixel, shared by the K photos, that leave
  the fewest edges (:func:`shared_colour_matte`: a text mark's dark outline and shadow),
  started in a mark's wide strokes from the regions whose photos' differences are attenuated
  (:func:`region_start`: a colour logo's ring and bar).

Per part, the first three and the generators' inversion are compared by what is left of the
mark's shared outline (:func:`pick_per_part`; the matte must clearly win, :data:`MATTE_HANDICAP`);
where one from the images alone was taken, the shared-colour matte replaces it when the K
photos keep clearly fewer edges with it (:func:`edge_energy`, the matting model's own prior,
which sees a dark outline that the mark's light outline does not: :data:`SHARED_MARGIN`);
where the mark has wide strokes, it may replace the generators' inversion too. Last, a part
whose cleaned photos differ far more than the inputs around it is given back
(:func:`amplified_parts`: no mark was there).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from ..postprocess import invert_overlay, refine_opacity
from ..priors.mark_regions import amplified_parts, beside_opaque, region_start
from ..priors.matting import matte_candidate, shared_colour_matte
from ..priors.watermark import edge_energy, fit_overlay, pick_per_part

#: The matting candidate is taken on a part only where it leaves under 0.85 of the others' outline
#: (the generators' improves with the steps: on the sample logo at 150 steps the matte's score was
#: 0.89 of theirs on a part where the generators' was nearer the clean photos).
MATTE_HANDICAP = 1 / 0.85
#: The shared-colour matte replaces an inversion from the images alone on a part where the K photos
#: keep under this fraction of its edges: text kind 0.95 (vs the matte; +7.2 dB), held-out photos
#: 0.93 and 0.91; the sample logo at 32-64 px, where it was 0.5-0.8 dB worse (its colour took the
#: photos' hues): 0.98; fotolia1-3: 1.07 and 1.08.
SHARED_MARGIN = 0.97
#: The matting candidate is made only when some photo's gain on the shared opacity is further from 1.
MATTE_GAIN_SPREAD = 0.05

Candidate = tuple[np.ndarray, np.ndarray, np.ndarray]

__all__ = ["MATTE_GAIN_SPREAD", "MATTE_HANDICAP", "SHARED_MARGIN", "DataCandidates"]


class DataCandidates:
    """Mixin of :class:`~napari_doubledip.core.tasks.watermark.WatermarkTask`: the candidates from the images alone.

    Uses the task's ``units`` ``(K, C, Y, X)``, ``support``, ``outline``, ``fill``,
    ``fill_area``, ``opaque``, ``rim``, ``opaque_fill``, ``initial_colour`` and ``opts``; the matte and the
    shared-colour matte, and the per-pixel fit, are computed once and kept.
    """

    units: np.ndarray
    fill: np.ndarray
    fill_area: np.ndarray
    rim: np.ndarray
    opaque: np.ndarray
    opaque_fill: np.ndarray
    initial_colour: np.ndarray
    opts: Any
    _matte_cache: Candidate | None = None
    _matte_done: bool = False
    _shared_cache: Candidate | None = None
    _wide_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    _fit_cache: tuple[Candidate, np.ndarray] | None = None

    support: Any
    outline: Any

    def _invert(self, under: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> list[np.ndarray]:
        """The K images with the overlay inverted, ``under`` taken where the mask is nearly opaque."""
        return invert_overlay(self.units, under, mask, colour, self.opts.opaque_from, self.opts.opaque_full)

    def _pick_candidates(
        self, cleaned: np.ndarray, mask: np.ndarray, colour: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per part of the support: the generators' inversion (``cleaned``, ``mask``, ``colour``) or a data one.

        Returns the combined ``(cleaned, mask, colour planes)``.
        """
        support, outline = self.support, self.outline
        flat = np.broadcast_to(colour[:, None, None], (len(colour), *mask.shape))
        alt_mask = refine_opacity(self.units, self.fill, self.fill_area.astype(np.float32), colour)
        data = [(np.stack(self._invert(self.fill, alt_mask, colour)), alt_mask, flat)]
        fitted, under = self._fitted()
        fit_mask, fit_colour = fitted[1], fitted[2]
        data.append(fitted)
        candidates = [(cleaned, mask, flat), *data]
        handicap = [1.0, 1.0, 1.0]
        matte = self._matte(alt_mask, under)
        if matte is not None:
            candidates.append(matte)
            handicap.append(MATTE_HANDICAP)
        choices: list[int] = []
        cleaned, mask, colours = pick_per_part(
            self.units, candidates, support, outline, handicap=handicap, choices=choices
        )
        # where an inversion from the images alone was taken, or where the mark has wide strokes
        # (:func:`region_start`; the generators' candidate at 30 steps left the colour logo's
        # outline weaker than the fills did but kept the mark: 22.0 dB vs the matte's 36):
        # the shared-colour matte instead, when the K photos keep clearly fewer edges with it
        # (not over an opaque patch, filled in: a fill has fewer edges than any inversion, and
        # the fill over the patch alone is nearest)
        wide = self._wide(alt_mask, fit_mask, fit_colour)[2]
        if any(choices) or wide.any():
            self._take_shared(cleaned, mask, colours, choices, wide, (alt_mask, fit_mask, fit_colour, under))
        # never worse than the inputs: a part whose cleaned photos differ far more than the photos
        # around it was no mark (chance edges: the colour logo by a corner at K = 2, 3)
        refused = amplified_parts(self.units, cleaned, mask, support)
        cleaned[:, :, refused] = self.units[:, :, refused]
        mask[refused] = 0.0
        return cleaned, mask, colours

    def _fitted(self) -> tuple[Candidate, np.ndarray]:
        """The per-pixel fit's candidate (inverted images, opacity, colour), and the images under the mark; once.

        :func:`fit_overlay` over the fill; an opaque patch and its 1-px rim filled in whole (the
        fit's 3-px window ramps the opacity down over the patch's edge pixels, which were then
        half inverted: badge 25.5 -> 26.1 dB); just outside the patch, the opacity along the
        patch's colour (:func:`beside_opaque`: the fit over the fill found opacity there where
        there was none: badge 26.13 -> 26.31 dB; a 6-px band 26.00). ``under``: the fill, the
        patch's own fill over the rim (taken where nearly opaque). They depend on the images
        alone, not on the generators, so every snapshot reuses them.
        """
        if self._fit_cache is None:
            fit_mask, fit_colour = fit_overlay(self.units, self.fill, self.fill_area)
            fit_mask = np.where(self.rim, 1.0, fit_mask)
            band, beside, beside_colour = beside_opaque(self.units, self.opaque, self.rim)
            fit_mask = np.where(band, beside, fit_mask).astype(np.float32)
            fit_colour = np.where(band[None], beside_colour, fit_colour).astype(np.float32)
            under = np.where(self.rim, self.opaque_fill, self.fill)
            self._fit_cache = (
                (np.stack(self._invert(under, fit_mask, fit_colour)), fit_mask, fit_colour),
                under,
            )
        return self._fit_cache

    def _take_shared(
        self,
        cleaned: np.ndarray,
        mask: np.ndarray,
        colours: np.ndarray,
        choices: list[int],
        wide: np.ndarray,
        start: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    ) -> None:
        """The shared-colour matte on the parts where it may replace the choice, in place (see above)."""
        support = self.support
        alt_mask, fit_mask, fit_colour, under = start
        shared = self._shared(alt_mask, fit_mask, fit_colour, under)
        ours, theirs = edge_energy(cleaned), edge_energy(shared[0])
        parts, _ = ndimage.label(support)
        for label, choice in enumerate(choices, start=1):
            where = parts == label
            if (
                (choice or wide[where].any())
                and not self.opaque[where].any()
                and theirs[where].mean() < SHARED_MARGIN * ours[where].mean()
            ):
                cleaned[:, :, where] = shared[0][:, :, where]
                mask[where] = shared[1][where]
                colours[:, where] = shared[2][:, where]

    def _matte(self, start: np.ndarray, under: np.ndarray) -> Candidate | None:
        """The candidate of the matting model: one shared opacity, a gain per image and channel.

        :func:`~napari_doubledip.core.priors.matting.sparse_opacity` from ``start`` over the
        support, :func:`~napari_doubledip.core.priors.matting.fit_gains`, inverted
        (``under`` where nearly opaque); in the mark's initial colour. None (no candidate) when
        every gain is within :data:`MATTE_GAIN_SPREAD` of 1: the mark is blended alike into
        every photo, which the other candidates model (and the generators' improves with the
        steps beyond the matte: sample logo at 600 steps 34.8 dB without it, 33.2 with it).
        Computed once (it does not depend on the generators) and kept.
        """
        if not self._matte_done:
            self._matte_done = True
            assert self.support is not None
            o = self.opts
            self._matte_cache, self.gains = matte_candidate(
                self.units,
                self.support,
                start,
                self.initial_colour,
                under,
                o.opaque_from,
                o.opaque_full,
                MATTE_GAIN_SPREAD,
            )
        return self._matte_cache

    def _wide(
        self, start: np.ndarray, fit_mask: np.ndarray, fit_colour: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The shared-colour matte's start and the mark's wide strokes (:func:`region_start`); once.

        The white fit's opacity ``start`` and, where the per-pixel fit saw a mark, its colour
        halfway to grey (else grey: a colour at 0 or 1 hardly moves through its sigmoid); in
        the regions that the photos' attenuated differences show to be the mark's (strokes
        wider than the fill under the outline reaches: the colour logo's ring and bar), their
        opacity and colour. Returns ``(opacity, colour, wide strokes)``.
        """
        if self._wide_cache is None:
            assert self.support is not None and self.outline is not None
            colour = np.where(fit_mask[None] > 0, 0.5 * (fit_colour + 0.5), 0.5)
            self._wide_cache = region_start(self.units, self.support, self.outline, start, colour)
        return self._wide_cache

    def _shared(
        self, start: np.ndarray, fit_mask: np.ndarray, fit_colour: np.ndarray, under: np.ndarray
    ) -> Candidate:
        """The matting model with the mark's opacity AND colour per pixel, shared by the K images; once.

        :func:`~napari_doubledip.core.priors.matting.shared_colour_matte` from the white fit's
        opacity ``start`` and, where the per-pixel fit (:func:`fit_overlay`) saw a mark, its
        colour halfway to grey (else grey: a colour at 0 or 1 hardly moves through its
        sigmoid); inverted, ``under`` where nearly opaque.
        """
        if self._shared_cache is None:
            assert self.support is not None
            start, colour, _ = self._wide(start, fit_mask, fit_colour)
            alpha, colour = shared_colour_matte(self.units, self.support, start, colour)
            self._shared_cache = np.stack(self._invert(under, alpha, colour)), alpha, colour
        return self._shared_cache
