"""The six task widgets: one :class:`TaskSpec` each, all served by :class:`TaskWidget`."""

from __future__ import annotations

from .spec import HintSpec, OutputSpec, ParamSpec, TaskSpec
from .task_widget import TaskWidget

__all__ = [
    "DEHAZE",
    "DENOISE",
    "INPAINT",
    "SEGMENT",
    "SEPARATE",
    "SPECS",
    "WATERMARK",
    "DehazeWidget",
    "DenoiseWidget",
    "InpaintWidget",
    "SegmentWidget",
    "SeparateWidget",
    "WatermarkWidget",
]

DENOISE = TaskSpec(
    name="denoise",
    title="Denoise",
    stream="denoise_stream",
    description="Fit a network to the noisy image; it learns the image before the noise. "
    "Early stop ends the run at the estimated noise level.",
    outputs=(OutputSpec("image", "denoised"),),
    default_steps=3000,
)

INPAINT = TaskSpec(
    name="inpaint",
    title="Inpaint",
    stream="inpaint_stream",
    description="Fill missing pixels: the network only sees the known ones.",
    outputs=(OutputSpec("image", "inpainted"),),
    hint=HintSpec(
        "Mask",
        ("labels", "shapes"),
        required=True,
        binary=True,
        help="Labels or Shapes: nonzero / inside a shape = missing pixel",
    ),
    params=(ParamSpec("keep_known", "Keep known pixels", True, help="Return the known pixels as given"),),
    default_steps=3000,
)

SEGMENT = TaskSpec(
    name="segment",
    title="Segment",
    stream="segment_stream",
    description="Split the image into a foreground and a background layer (Double-DIP). "
    "A few hint strokes (label 1 = foreground, 2 = background) help a lot.",
    outputs=(
        OutputSpec("foreground", "foreground", visible=False),
        OutputSpec("background", "background", visible=False),
        OutputSpec("mask", "soft mask", kind="mask", colormap="magma", visible=False),
        OutputSpec("labels", "mask", kind="labels"),
    ),
    hint=HintSpec(
        "Hints",
        ("labels",),
        required=False,
        binary=False,
        help="Optional Labels layer: paint 1 on the foreground, 2 on the background",
    ),
    params=(
        ParamSpec(
            "edge",
            "Image edge",
            "auto",
            choices=("auto", "background", "free"),
            help="background: what reaches the image's edge unpainted is background (an object "
            "inside the frame; then painting the foreground alone is enough); auto: so when only "
            "the foreground is painted; free: no assumption",
        ),
    ),
    default_net="doubledip",
    default_steps=600,
)

SEPARATE = TaskSpec(
    name="separate",
    title="Separate layers",
    stream="separate_stream",
    description="Split mixtures of the same two transparent layers (e.g. a reflection on a window) "
    "into the two layers. Tick one image, or two or more mixtures of one scene.",
    outputs=(OutputSpec("layer_a", "layer A"), OutputSpec("layer_b", "layer B")),
    multi_input=True,
    default_steps=2000,
)

WATERMARK = TaskSpec(
    name="watermark",
    title="Remove watermark",
    stream="remove_watermark_stream",
    description="Remove a watermark shared by two or more images (or by one image, given a hint "
    "marking roughly where it is).",
    outputs=(
        OutputSpec("clean_{i}", "clean"),
        OutputSpec("watermark", "watermark", visible=False),
        OutputSpec("mask", "watermark mask", kind="mask", visible=False),
    ),
    multi_input=True,
    hint=HintSpec(
        "Hint",
        ("labels", "shapes"),
        required=False,
        binary=True,
        help="Optional Labels or Shapes: nonzero / a box where the watermark may be "
        "(needed with a single image)",
    ),
    params=(
        ParamSpec(
            "watermark",
            "Watermark colour",
            "white",
            choices=("white", "black", "learn"),
            help="The colour of the watermark, or 'learn' to fit it",
        ),
        ParamSpec(
            "mask_init",
            "Starting opacity",
            0.1,
            minimum=0.01,
            maximum=0.9,
            decimals=2,
            help="Where the mask starts: 0.1 suits faint, see-through marks; about 0.5 for nearly "
            "opaque ones (BENCHMARKS.md)",
        ),
    ),
    default_steps=2000,
)

DEHAZE = TaskSpec(
    name="dehaze",
    title="Dehaze",
    stream="dehaze_stream",
    description="Remove haze: split the image into a haze-free image and a transmission map "
    "(the haze colour is estimated from the image).",
    outputs=(
        OutputSpec("image", "dehazed"),
        OutputSpec("transmission", "transmission", kind="mask", colormap="viridis", visible=False),
    ),
    default_steps=1500,
)

#: The widget specs by task name.
SPECS = {spec.name: spec for spec in (DENOISE, INPAINT, SEGMENT, SEPARATE, WATERMARK, DEHAZE)}


# napari instantiates a widget class with ``napari_viewer``; each class only names its spec.


class DenoiseWidget(TaskWidget):
    """The Denoise dock widget."""

    spec = DENOISE


class InpaintWidget(TaskWidget):
    """The Inpaint dock widget."""

    spec = INPAINT


class SegmentWidget(TaskWidget):
    """The Segment dock widget."""

    spec = SEGMENT


class SeparateWidget(TaskWidget):
    """The Separate layers dock widget."""

    spec = SEPARATE


class WatermarkWidget(TaskWidget):
    """The Remove watermark dock widget."""

    spec = WATERMARK


class DehazeWidget(TaskWidget):
    """The Dehaze dock widget."""

    spec = DEHAZE
