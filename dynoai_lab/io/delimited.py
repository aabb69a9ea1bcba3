"""Shared parsing of delimited text logs (CSV, semicolon, tab).

The ECU and logger readers decode the file, find the header row, then
call :func:`parse_rows` and :func:`numeric_columns`. What this module
handles for all of them: UTF-16 with a byte-order mark, UTF-8 with or
without one, cp1252 as a fallback; comma, semicolon or tab separators;
quoted fields; decimal commas in semicolon or tab separated files;
trailing separators; enum words (``On``, ``Off``...) in numeric
columns; and ragged rows, which raise :class:`LogFormatError` unless
only the last line is cut short.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from dynoai_lab.io.errors import LogFormatError
from dynoai_lab.io.files import read_regular_file

logger = logging.getLogger(__name__)

#: Words that loggers write in numeric columns, with their values.
ENUM_WORDS = {
    "on": 1.0,
    "off": 0.0,
    "yes": 1.0,
    "no": 0.0,
    "true": 1.0,
    "false": 0.0,
    "active": 1.0,
    "inactive": 0.0,
    "high": 1.0,
    "low": 0.0,
}

_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$")


def read_text(path: Path, what: str) -> str:
    """Read and decode a text log; raise LogFormatError if unreadable."""
    raw = read_regular_file(path, LogFormatError, what)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        logger.info("%s is not UTF-8; decoding it as cp1252", path)
        return raw.decode("cp1252")


def sniff_delimiter(line: str) -> str:
    """Return the separator of a header line: tab, semicolon or comma."""
    counts = {d: line.count(d) for d in ("\t", ";", ",")}
    return max(counts, key=lambda d: (counts[d], d == ","))


def split_line(line: str, delimiter: str) -> list[str]:
    """Split one line into stripped fields, honouring quotes."""
    fields = next(csv.reader([line], delimiter=delimiter), [])
    return [field.strip() for field in fields]


def parse_rows(
    path: Path,
    lines: list[str],
    delimiter: str,
    n_columns: int,
    first_line_number: int,
) -> list[list[str]]:
    """Split data lines into rows of ``n_columns`` fields.

    A trailing empty field (a line ending in a separator) is dropped.
    A row with more fields than the header, or with fewer on any line
    but the last, raises :class:`LogFormatError`. A short last line is
    padded with blanks and a warning is logged.
    """
    rows = []
    reader = csv.reader(lines, delimiter=delimiter)
    for offset, fields in enumerate(reader):
        number = first_line_number + offset
        if len(fields) > n_columns and fields[-1].strip() == "":
            fields = fields[:-1]
        if len(fields) > n_columns:
            raise LogFormatError(
                f"{path}, line {number}: {len(fields)} fields, but the "
                f"header has {n_columns}; expected one field per column"
            )
        if len(fields) < n_columns:
            if offset != len(lines) - 1:
                raise LogFormatError(
                    f"{path}, line {number}: {len(fields)} fields, but the "
                    f"header has {n_columns}; expected one field per "
                    "column (only the last line may be cut short)"
                )
            logger.warning(
                "%s: last line has %d of %d fields; the missing cells are "
                "read as NaN",
                path,
                len(fields),
                n_columns,
            )
            fields = fields + [""] * (n_columns - len(fields))
        rows.append([field.strip() for field in fields])
    return rows


def numeric_columns(
    path: Path,
    headers: list[str],
    rows: list[list[str]],
    *,
    decimal_comma: bool,
) -> list[np.ndarray]:
    """Turn rows of text into one float array per column.

    Blank cells become NaN. Enum words of :data:`ENUM_WORDS` become 1 or
    0. A column whose other non-blank cells are all text stays an object
    array of str; in a mostly numeric column, other text becomes NaN
    and a warning names the column.
    """
    if not rows:
        return [np.array([], dtype=float) for _ in headers]
    table = np.array(rows, dtype=object).reshape(len(rows), len(headers))
    columns = []
    for index, header in enumerate(headers):
        cells = pd.Series(table[:, index], dtype=object)
        if decimal_comma:
            cells = cells.where(
                ~cells.str.match(_DECIMAL_COMMA),
                cells.str.replace(",", ".", regex=False),
            )
        blank = cells == ""
        numbers = pd.to_numeric(cells.where(~blank), errors="coerce")
        bad = ~blank & numbers.isna()
        if bad.any():
            words = cells[bad].str.casefold().map(ENUM_WORDS)
            numbers[bad] = words
            still_bad = bad & numbers.isna()
            if still_bad.all() or still_bad.sum() == (~blank).sum():
                columns.append(cells.to_numpy(dtype=object))
                continue
            if still_bad.any():
                logger.warning(
                    "%s: column %r contains %d cells that are not numbers "
                    "(first %r); reading them as NaN",
                    path,
                    header,
                    int(still_bad.sum()),
                    cells[still_bad].iloc[0],
                )
        columns.append(numbers.to_numpy(dtype=float))
    return columns


def is_number(text: str) -> bool:
    """Tell whether a field is a number (decimal comma allowed)."""
    try:
        float(text.replace(",", "."))
    except ValueError:
        return False
    return True
