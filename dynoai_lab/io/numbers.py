"""Strict parsing of decimal numbers written in tune files.

Python's ``float()`` also accepts underscores (``"6_5"`` is 65),
``"nan"``, ``"inf"`` and ``"infinity"``, none of which an ECU tool
writes in a table cell. :data:`NUMBER` accepts only plain decimal
notation with an optional sign, point and exponent, with surrounding
whitespace allowed.
"""

from __future__ import annotations

import re

#: A finite decimal number: ``12``, ``-0.5``, ``.5``, ``5.``, ``1e-3``.
NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")
NUMBER_BYTES = re.compile(NUMBER.pattern.encode("ascii"))


def is_number(text: str | bytes) -> bool:
    """Tell whether a text is a finite decimal number (see :data:`NUMBER`).

    Examples
    --------
    >>> is_number(" 6.5 "), is_number("6_5"), is_number("nan")
    (True, False, False)
    """
    pattern = NUMBER_BYTES if isinstance(text, bytes) else NUMBER
    return pattern.fullmatch(text) is not None


def parse_number(text: str | bytes) -> float:
    """Convert a decimal number text to float, strictly.

    Raises
    ------
    ValueError
        If the text is not a finite decimal number (see :data:`NUMBER`).
    """
    if not is_number(text):
        raise ValueError(f"{text!r} is not a decimal number")
    return float(text)
