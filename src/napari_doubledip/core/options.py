"""Task options as frozen dataclasses: one declaration per option (default, help, range, face).

Every task has one options class (``frozen=True, kw_only=True``) whose fields are its keyword
options. A field is declared once with :func:`option`; the API signature, the CLI flag and the
widget's form entry of that option are all built from the field, and they share its name (the
CLI flag is ``--name-with-dashes``, the form label ``Name with spaces``).

This module imports neither torch nor Qt.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np

__all__ = ["NET_PRESETS", "GeneratorOptions", "OptionInfo", "TaskOptions", "check_number", "option"]

#: Net presets offered by the CLI help and the widget (``core.network`` defines them).
NET_PRESETS = ("default", "dip-classic", "doubledip")

T = TypeVar("T", bound="TaskOptions")


def option(
    default: Any,
    help: str = "",
    *,
    shown: bool = False,
    choices: tuple[str, ...] = (),
    minimum: float | None = None,
    maximum: float | None = None,
    decimals: int = 3,
    cli_aliases: tuple[str, ...] = (),
    recorded: bool = True,
    net: bool = False,
) -> Any:
    """A task option: a dataclass field with its help text and how the faces show it.

    Parameters
    ----------
    default
        The default value (immutable).
    help
        One sentence: what it does (CLI help and form tooltip).
    shown
        Offer it as a CLI flag and in the widget's form (the others are API keywords only).
    choices
        The text values the CLI and the form offer.
    minimum, maximum, decimals
        Range and precision of a number in the form.
    cli_aliases
        Older spellings of the CLI flag, still accepted (e.g. ``"--start-opacity"``).
    recorded
        Record the value in ``Result.params`` (off for options another record covers).
    net
        The option names a network (its resolved settings are recorded beside it).
    """
    metadata = {
        "help": help,
        "shown": shown,
        "choices": tuple(choices),
        "minimum": minimum,
        "maximum": maximum,
        "decimals": decimals,
        "cli_aliases": tuple(cli_aliases),
        "recorded": recorded,
        "net": net,
    }
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class OptionInfo:
    """What the faces need of one option: name, default, help, choices, range."""

    name: str
    default: Any
    help: str
    shown: bool
    choices: tuple[str, ...]
    minimum: float | None
    maximum: float | None
    decimals: int
    cli_aliases: tuple[str, ...]
    recorded: bool
    net: bool

    @property
    def label(self) -> str:
        """The form label: the name with spaces, first letter capital (``mask_init`` -> ``Mask init``)."""
        text = self.name.replace("_", " ")
        return text[:1].upper() + text[1:]

    @property
    def flag(self) -> str:
        """The CLI flag: ``--mask-init``."""
        return "--" + self.name.replace("_", "-")


def _coerce(default: Any, value: Any) -> Any:
    """``value`` as the type of ``default`` for plain numbers and bools (``1`` -> ``1.0``)."""
    if value is None or default is None or isinstance(value, str):
        return value
    if isinstance(default, bool):
        return bool(value) if isinstance(value, int | float) or hasattr(value, "__bool__") else value
    if isinstance(default, int) and isinstance(value, int | float) and float(value) == int(value):
        return int(value)
    if isinstance(default, float) and not isinstance(value, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    return value


def check_number(name: str, value: Any, *, whole: bool = False) -> None:
    """Raise for a value that is not a finite real number (``whole``: not a whole number).

    Parameters
    ----------
    name
        What to call the value in the message (the option's or argument's name).
    value
        The value to check.
    whole
        Require a whole number (``3`` or ``3.0``; not ``2.5``).

    Raises
    ------
    TypeError
        For a value that is no number (a string, ``None``, a bool, an array).
    ValueError
        For NaN, an infinity, or a fraction where a whole number is needed.
    """
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if whole and not float(value).is_integer():
        raise ValueError(f"{name} must be a whole number, got {value!r}")


def _check_numbers(options: TaskOptions) -> None:
    """Every number option holds a finite number (a whole one where the default is an int)."""
    for f in dataclasses.fields(options):
        value, default = getattr(options, f.name), f.default
        numeric_default = isinstance(default, int | float) and not isinstance(default, bool)
        if numeric_default:
            check_number(f.name, value, whole=isinstance(default, int))
        elif (
            isinstance(value, numbers.Real)
            and not isinstance(value, bool)
            and not math.isfinite(float(value))
        ):
            raise ValueError(f"{f.name} must be a finite number, got {value!r}")
        elif isinstance(value, list | tuple | np.ndarray):
            try:
                values = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                continue  # not numbers: the task's own check()
            if not np.all(np.isfinite(values)):
                raise ValueError(f"{f.name} must hold finite numbers, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class TaskOptions:
    """Base of every task's options: validated (``check``) and normalised on creation.

    Subclasses declare their fields with :func:`option` and raise ``ValueError`` in
    :meth:`check` for values out of range.
    """

    #: Older keyword names still accepted by :meth:`build`: ``{old: new}``.
    deprecated: ClassVar[Mapping[str, str]] = {}

    def __post_init__(self) -> None:
        """Check the values (:meth:`check`), then convert plain numbers to the fields' types."""
        _check_numbers(self)
        self.check()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            coerced = _coerce(f.default, value)
            if coerced is not value:
                object.__setattr__(self, f.name, coerced)

    def check(self) -> None:
        """Raise ``ValueError`` for invalid values (override; called before normalising).

        Number options are already known to be finite numbers (whole where the default is an
        int) when this runs.
        """

    @classmethod
    def info(cls) -> tuple[OptionInfo, ...]:
        """The options, in declaration order."""
        out = []
        for f in dataclasses.fields(cls):
            meta = dict(f.metadata)
            out.append(OptionInfo(name=f.name, default=f.default, **meta))
        return tuple(out)

    @classmethod
    def build(cls: type[T], options: T | None = None, **kwargs: Any) -> T:
        """Options from an options object and/or keywords (keywords win; old names accepted).

        Raises
        ------
        TypeError
            For a keyword that is no option of this task.
        """
        import warnings

        for old, new in cls.deprecated.items():
            if old in kwargs:
                warnings.warn(
                    f"{cls.__name__}: {old!r} is deprecated; use {new!r}", DeprecationWarning, stacklevel=3
                )
                kwargs.setdefault(new, kwargs.pop(old))
        if options is None:
            return cls(**kwargs)
        if not isinstance(options, cls):
            raise TypeError(f"options must be {cls.__name__}, got {type(options).__name__}")
        return dataclasses.replace(options, **kwargs) if kwargs else options

    def record(self) -> dict[str, Any]:
        """The recorded options by name (nets by name, ``"custom"`` when not a preset name)."""
        out: dict[str, Any] = {}
        for info in self.info():
            if not info.recorded:
                continue
            value = getattr(self, info.name)
            out[info.name] = (value if isinstance(value, str) else "custom") if info.net else value
        return out


@dataclass(frozen=True, kw_only=True)
class GeneratorOptions(TaskOptions):
    """Options every DIP task has: its generator network, learning rate and input noise."""

    net: Any = option(
        "default",
        "generator network: 'default' (fast), 'dip-classic', 'doubledip', a dict of settings or a NetConfig",
        net=True,
    )
    lr: float = option(0.01, "Adam learning rate of the generators")
    reg_noise: float = option(1 / 30, "standard deviation of the noise added to the nets' input each step")
    input_std: float = option(0.1, "scale of the fixed uniform noise input (the DIP papers use 0.1)")

    def check(self) -> None:
        """Raise ``ValueError`` for a non-positive learning rate or input noise scale."""
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.reg_noise < 0 or self.input_std <= 0:
            raise ValueError("reg_noise must be >= 0 and input_std > 0")
