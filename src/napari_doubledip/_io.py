"""Reading and writing image files for the command line (no torch, no Qt).

TIFF goes through tifffile (any dtype, stacks and 16-bit kept); PNG, JPEG and BMP through
imageio (Pillow as a fallback). Writes are atomic: a file appears complete or not at all.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = [
    "IMAGE_SUFFIXES",
    "expand_inputs",
    "file_digest",
    "read_image",
    "tiff_axes_ambiguous",
    "to_storable",
    "write_image",
]

#: File name endings recognised as images when a folder or a glob is expanded.
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
TIFF_SUFFIXES = (".tif", ".tiff")


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def expand_inputs(
    items: Iterable[str], exclude: Path | None = None, exclude_files: Iterable[Path] = ()
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Turn command-line INPUTS (files, folders, globs) into image files.

    Parameters
    ----------
    items
        Paths of files (taken as given, whatever their ending), folders (their image files,
        recursively, sorted) or glob patterns (``**`` allowed).
    exclude
        The output folder: a folder or glob does not take files from inside it (unless the
        folder named is that folder itself).
    exclude_files
        Files a folder or glob never takes (results recorded by earlier runs).

    Returns
    -------
    files, problems
        The files in order, without duplicates; ``(item, message)`` for each item that named nothing.
    """
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    excluded = exclude.resolve() if exclude is not None else None
    skip = {Path(f).resolve() for f in exclude_files}

    def keep(p: Path, root: Path) -> bool:
        resolved = p.resolve()
        if resolved in skip:
            return False
        if excluded is None or root.resolve() == excluded:
            return True
        try:
            resolved.relative_to(excluded)
        except ValueError:
            return True
        return False

    for item in items:
        path = Path(item)
        if path.is_file():
            found = [path]
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _is_image_name(p) and keep(p, path))
            found = [p for p in found if not any(part.startswith(".") for part in p.relative_to(path).parts)]
            if not found:
                problems.append((item, "folder holds no image files (" + ", ".join(IMAGE_SUFFIXES) + ")"))
        else:
            matches = sorted(glob.glob(item, recursive=True))
            found = [
                Path(m)
                for m in matches
                if Path(m).is_file() and _is_image_name(Path(m)) and keep(Path(m), Path(m).parent)
            ]
            if not found:
                problems.append((item, "no such file, folder or matching image"))
        files.extend(found)
    unique: dict[Path, Path] = {}
    for f in files:
        unique.setdefault(f.resolve(), f)
    return list(unique.values()), problems


def file_digest(path: str | os.PathLike) -> str:
    """SHA-1 of a file's bytes (hex); identifies an input in the sidecars."""
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tiff_axes_ambiguous(path: str | os.PathLike) -> bool:
    """Whether a TIFF's first axis may be frames although tifffile reads it as colour samples.

    True for a 3-D (or more) TIFF without ImageJ or OME metadata whose first axis tifffile calls
    ``S`` or ``C`` (e.g. ``(3, 48, 48)`` written with tifffile's defaults: stored as planar RGB,
    but just as likely a stack of three gray frames).
    """
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        described = tif.is_imagej or tif.is_ome
        return not described and len(series.shape) >= 3 and series.axes[0] in "SC"


def read_image(path: str | os.PathLike, axes: str | None = None) -> tuple[np.ndarray, str]:
    """Read an image file.

    Parameters
    ----------
    path
        A TIFF (tifffile: any dtype, stacks) or a PNG/JPEG/BMP (imageio, else Pillow).
    axes
        The TIFF's axes as tifffile letters (``"TYX"``, ``"TYXS"``, ...), overriding what its
        metadata (or tifffile's guess) says; they must have as many letters as the pixels have
        dimensions. Ignored for other formats.

    Returns
    -------
    array, axes
        The pixels and their axes as tifffile names them (``"YX"``, ``"YXS"`` for colour samples,
        ``"TYX"``, ``"QYX"``, ... for stacks: the first letter is not ``Y``).

    Raises
    ------
    ValueError
        The file cannot be read as an image (its name is in the message).
    """
    path = Path(path)
    forced = axes if axes and path.suffix.lower() in TIFF_SUFFIXES else None
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                array = series.asarray()
                axes = series.axes
        else:
            array = _read_plain(path)
            axes = "YX" if array.ndim == 2 else "YXS"
    except Exception as exc:
        raise ValueError(f"cannot read {path.name} as an image: {type(exc).__name__}: {exc}") from exc
    array = np.asarray(array)
    if array.dtype.kind not in "biuf" or array.size == 0 or array.ndim < 2:
        raise ValueError(f"{path.name} holds no usable pixels (shape {array.shape}, dtype {array.dtype})")
    if len(axes) != array.ndim:  # pragma: no cover - tifffile squeezes consistently
        axes = "YX" if array.ndim == 2 else "Q" * (array.ndim - 2) + "YX"
    if forced is not None:
        if len(forced) != array.ndim:
            raise ValueError(
                f"--axes {forced} names {len(forced)} axes but {path.name} has {array.ndim} "
                f"(shape {array.shape}, read as {axes})"
            )
        axes = forced
    if array.dtype == bool:
        array = array.astype(np.uint8)
    return array, axes


def _read_plain(path: Path) -> np.ndarray:
    """PNG/JPEG/BMP through imageio; Pillow directly when imageio fails (its error is shorter)."""
    try:
        import imageio.v3 as iio

        return np.asarray(iio.imread(path))
    except Exception:
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im)


def to_storable(array: np.ndarray, suffix: str) -> np.ndarray:
    """Convert ``array`` to something the format of ``suffix`` stores.

    PNG and JPEG hold uint8 or uint16: floats are taken as unit range (clipped, scaled to uint8),
    other integers are clipped to uint16 (uint8 when they fit). TIFF stores anything except
    float16 and bool, which become float32 and uint8.
    """
    a = np.asarray(array)
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if suffix.lower() in TIFF_SUFFIXES or suffix == ".npy":
        return a.astype(np.float32) if a.dtype == np.float16 else a
    if a.dtype in (np.uint8, np.uint16):
        return a
    if a.dtype.kind == "f":
        return np.round(np.clip(np.nan_to_num(a), 0, 1) * 255).astype(np.uint8)
    if a.min() >= 0 and a.max() <= 255:
        return a.astype(np.uint8)
    return np.clip(a, 0, 65535).astype(np.uint16)


def write_image(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` atomically to ``path`` in the format its ending names (.tif, .png, .jpg, .npy).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    data = to_storable(array, suffix)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.part{path.suffix}")
    try:
        if suffix in TIFF_SUFFIXES:
            import tifffile

            rgb = data.ndim in (3, 4) and data.shape[-1] in (3, 4)
            tifffile.imwrite(tmp, data, photometric="rgb" if rgb else "minisblack")
        elif suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, data)
        else:
            import imageio.v3 as iio

            if data.ndim == 3 and data.shape[-1] == 1:
                data = data[..., 0]
            iio.imwrite(tmp, data, extension=path.suffix)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
