"""Read and write TunerStudio tunes (``.msq``) and table exports (``.table``).

An ``.msq`` file is XML: an ``<msq>`` root (namespace
``http://www.msefi.com/:msq``) with ``<page>`` elements holding
``<constant>`` and ``<pcVariable>`` elements. An array constant has
``rows``, ``cols``, ``digits`` and ``units`` attributes and its values
as whitespace-separated text, one line per row. Scalars hold one
number; options hold a quoted string (``"MAP"``).

For the Speeduino firmware (signature ``speeduino 2020xx`` to
``202501``) the fuel tables are:

- ``veTable`` [%], 16 x 16, rows on ``fuelLoadBins`` (kPa, or TPS % when
  ``algorithm`` is ``"TPS"``), columns on ``rpmBins`` [rpm];
- ``afrTable`` [AFR] on ``loadBinsAFR`` x ``rpmBinsAFR``, and
  ``lambdaTable`` on the same axes;
- ``stoich`` [1], the stoichiometric AFR.

Speeduino has one VE table for all cylinders, so :class:`MsqTune`
exposes it as ``ve_front`` and ``ve_rear`` with ``shared_ve = True``.
Tables are returned with dims ``("rpm", load)`` as in the rest of the
library, that is transposed from the file's row order.

A TunerStudio ``.table`` export (root ``<tableData>``, namespace
``http://www.EFIAnalytics.com/:table``) contains one table: ``xAxis``,
``yAxis`` and ``zValues`` with ``rows`` x ``cols`` values.

Writing splices new value texts into the original bytes and copies
every other byte, so an unchanged tune is written back byte for byte
and a corrected one differs only in the changed VE values.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from xml.etree.ElementTree import ParseError

import numpy as np
import xarray as xr
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree

from dynoai_lab.io.errors import TuneFormatError
from dynoai_lab.io.files import read_regular_file, write_atomic
from dynoai_lab.io.numbers import is_number
from dynoai_lab.io.tables import check_axes, check_new_values

logger = logging.getLogger(__name__)

MSQ_NAMESPACE = "http://www.msefi.com/:msq"
TABLE_NAMESPACE = "http://www.EFIAnalytics.com/:table"

_ELEMENT = re.compile(
    rb"<(?P<tag>constant|pcVariable|xAxis|yAxis|zValues)\b(?P<attrs>[^>]*)>"
    rb"(?P<body>.*?)</(?P=tag)>",
    re.DOTALL,
)
_NAME = re.compile(rb"\bname\s*=\s*\"([^\"]*)\"")
_TOKEN = re.compile(rb"\S+")

#: Load axis of ``veTable`` by the Speeduino ``algorithm`` option.
_LOAD_AXES = {"MAP": ("map", "kPa"), "TPS": ("tps", "%")}


@dataclass(frozen=True)
class MsqArray:
    """One numeric constant of a tune, as written in the file.

    Attributes
    ----------
    name : str
        The ``name`` attribute.
    units : str
        The ``units`` attribute (``""`` when absent).
    digits : int or None
        Decimals TunerStudio shows for the values.
    shape : tuple of int
        (rows, cols); (1, 1) for a scalar.
    values : numpy.ndarray
        Values as floats, shape :attr:`shape`.
    spans : tuple of tuple of int
        Byte span of each value's text in the file, row-major.
    """

    name: str
    units: str
    digits: int | None
    shape: tuple[int, int]
    values: np.ndarray
    spans: tuple[tuple[int, int], ...]


def _parse_xml(data: bytes, label: str, root_tag: str, namespace: str):
    try:
        root = SafeElementTree.fromstring(data)
    except ParseError as error:
        raise TuneFormatError(
            f"{label} is not valid XML ({error}); expected a TunerStudio "
            f"<{root_tag}> file"
        ) from None
    except DefusedXmlException as error:
        raise TuneFormatError(
            f"{label} uses a forbidden XML feature ({error!r}); a "
            "TunerStudio file has none"
        ) from None
    tag = root.tag.rpartition("}")[2]
    if tag != root_tag:
        raise TuneFormatError(
            f"{label} has root element <{tag}>; expected <{root_tag}>"
        )
    return root


def _arrays(data: bytes, label: str) -> dict[str, MsqArray]:
    """Find every element whose text is all numbers, with byte spans.

    Elements are found with a byte-level scan (the XML parser does not
    report positions); the parse with defusedxml beforehand guarantees
    the file is well-formed XML. An element whose text has no token
    that ``float()`` accepts is an option or a string and is skipped;
    one with some numbers and some other tokens, or numbers that only
    ``float()`` accepts (``1_0``, ``nan``), raises.
    """
    arrays: dict[str, MsqArray] = {}
    for match in _ELEMENT.finditer(data):
        attrs = match["attrs"]
        name_match = _NAME.search(attrs)
        tag = match["tag"].decode()
        if tag in ("constant", "pcVariable") and name_match:
            name = name_match[1].decode("latin-1")
        else:
            name = tag
        tokens = list(_TOKEN.finditer(match["body"]))
        if not tokens or not _numeric_tokens(tokens, label, name):
            continue
        values = np.array([float(t[0]) for t in tokens], dtype=float)
        rows = _int_attr(attrs, b"rows", 0)
        cols = _int_attr(attrs, b"cols", 0)
        if rows == 0 or cols == 0:
            rows, cols = (len(tokens), 1) if rows or not cols else (1, cols)
        if rows * cols != len(tokens):
            raise TuneFormatError(
                f"{label}, {name!r}: {len(tokens)} values, but rows x cols "
                f"is {rows} x {cols}; expected one value per cell"
            )
        start = match.start("body")
        digits_text = _attr(attrs, b"digits")
        arrays.setdefault(
            name,
            MsqArray(
                name=name,
                units=_attr(attrs, b"units") or "",
                digits=int(digits_text) if digits_text else None,
                shape=(rows, cols),
                values=values.reshape(rows, cols),
                spans=tuple(
                    (start + t.start(), start + t.end()) for t in tokens
                ),
            ),
        )
    return arrays


def _numeric_tokens(tokens: list, label: str, name: str) -> bool:
    """Tell whether an element's tokens are numbers; raise if mixed."""
    strict = [is_number(t[0]) for t in tokens]
    if all(strict):
        return True
    if not any(strict) and not any(_float_like(t[0]) for t in tokens):
        return False
    k = strict.index(False)
    raise TuneFormatError(
        f"{label}, {name!r}: value {k} is {tokens[k][0].decode('latin-1')!r}; "
        "expected a decimal number like the other values"
    )


def _float_like(token: bytes) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _attr(attrs: bytes, key: bytes) -> str | None:
    match = re.search(rb"\b" + key + rb"\s*=\s*\"([^\"]*)\"", attrs)
    return match[1].decode("latin-1") if match else None


def _int_attr(attrs: bytes, key: bytes, default: int) -> int:
    text = _attr(attrs, key)
    return int(text) if text else default


def format_value(value: float, digits: int | None) -> str:
    """Format a value the way TunerStudio writes it in ``.msq`` files.

    The value is rounded to ``digits`` decimals and written as Java's
    ``Double.toString`` would for such numbers: always with a point
    (``41.0``), no trailing zeros beyond the first.

    Examples
    --------
    >>> format_value(41.4, 0), format_value(0.97279, 3)
    ('41.0', '0.973')
    """
    if digits is not None:
        value = round(value, digits)
    text = repr(float(value))
    return "0.0" if text == "-0.0" else text


def _splice(data: bytes, edits: dict[tuple[int, int], bytes]) -> bytes:
    pieces, position = [], 0
    for start, end in sorted(edits):
        pieces.append(data[position:start])
        pieces.append(edits[(start, end)])
        position = end
    pieces.append(data[position:])
    return b"".join(pieces)


def _edits(
    array: MsqArray, new: np.ndarray, label: str
) -> dict[tuple[int, int], bytes]:
    """Map spans to new texts for the cells whose value changed."""
    if new.shape != array.shape:
        raise ValueError(
            f"{label}, {array.name!r}: new values have shape {new.shape}; "
            f"expected {array.shape}"
        )
    if not np.all(np.isfinite(new)):
        raise ValueError(
            f"{label}, {array.name!r}: new values contain NaN or infinity; "
            "fill them before writing"
        )
    edits = {}
    for flat, (value, old) in enumerate(
        zip(new.ravel(), array.values.ravel(), strict=True)
    ):
        text = format_value(float(value), array.digits)
        if float(text) != old:
            edits[array.spans[flat]] = text.encode("ascii")
    return edits


class MsqTune:
    """A TunerStudio tune read from an ``.msq`` file.

    Parameters
    ----------
    data : bytes
        Contents of the file.
    path : str or path-like, optional
        File the bytes came from, for messages and :attr:`path`.

    Attributes
    ----------
    shared_ve : bool
        True: one VE table serves every cylinder, so :attr:`ve_front`
        and :attr:`ve_rear` are the same table.
    displacement : None
        The ``.msq`` does not store engine displacement [m³].
    """

    shared_ve = True
    displacement = None

    def __init__(self, data: bytes, path: str | os.PathLike | None = None):
        self.data = bytes(data)
        self.path = Path(path) if path is not None else None
        self._label = str(self.path) if self.path else "<.msq bytes>"
        root = _parse_xml(self.data, self._label, "msq", MSQ_NAMESPACE)
        self.signature = ""
        for element in root.iter():
            if element.tag.endswith("versionInfo"):
                self.signature = element.get("signature", "")
        self.options = {
            element.get("name"): (element.text or "").strip().strip('"')
            for element in root.iter()
            if element.get("name") is not None
        }
        self.arrays = _arrays(self.data, self._label)
        for needed in ("veTable", "rpmBins", "fuelLoadBins"):
            if needed not in self.arrays:
                raise TuneFormatError(
                    f"{self._label} has no {needed!r} constant; expected a "
                    "Speeduino tune with veTable, rpmBins and fuelLoadBins"
                )

    def __repr__(self) -> str:
        return f"MsqTune({self._label!r}, {self.signature!r})"

    @property
    def load_axis(self) -> tuple[str, str]:
        """(dimension, unit) of the VE load axis, from ``algorithm``."""
        algorithm = self.options.get("algorithm", "MAP")
        return _LOAD_AXES.get(algorithm, ("map", "kPa"))

    @property
    def stoichiometric_afr(self) -> float:
        """Stoichiometric AFR [1] (``stoich``, 14.7 when absent)."""
        array = self.arrays.get("stoich")
        return float(array.values[0, 0]) if array is not None else 14.7

    def table(
        self, name: str, rpm_axis: str, load_axis: str, load=None
    ) -> xr.DataArray:
        """Return a table with dims ``("rpm", load)``, axes checked.

        Parameters
        ----------
        name : str
            The table constant, rows on the load axis, columns on rpm.
        rpm_axis, load_axis : str
            Names of the axis constants.
        load : tuple of str, optional
            (dimension, unit) of the load axis; default :attr:`load_axis`.

        Raises
        ------
        TuneFormatError
            If the table does not match its axes, or an axis has fewer
            than two breakpoints or does not strictly increase.
        """
        array = self.arrays[name]
        rpm = self.arrays[rpm_axis].values.ravel()
        loads = self.arrays[load_axis].values.ravel()
        dim, unit = load or self.load_axis
        if array.shape != (loads.size, rpm.size):
            raise TuneFormatError(
                f"{self._label}, {name!r} is {array.shape[0]} x "
                f"{array.shape[1]}; expected {loads.size} x {rpm.size} "
                f"({load_axis} rows x {rpm_axis} columns)"
            )
        units = {"%": "%", "AFR": "1", "Lambda": "1"}.get(
            array.units, array.units
        )
        table = xr.DataArray(
            array.values.T.copy(),
            dims=("rpm", dim),
            coords={
                "rpm": ("rpm", rpm, {"units": "rpm", "source_units": "rpm"}),
                dim: (dim, loads, {"units": unit, "source_units": unit}),
            },
            attrs={"units": units, "source_name": name},
        )
        return check_axes(
            table, f"{self._label}, {name!r} on {rpm_axis} x {load_axis}"
        )

    @cached_property
    def ve(self) -> xr.DataArray:
        """The VE table [%], dims ``("rpm", "map")`` or ``("rpm", "tps")``."""
        array = self.table("veTable", "rpmBins", "fuelLoadBins")
        array.name = "ve"
        array.attrs["long_name"] = "volumetric efficiency, all cylinders"
        return array

    @property
    def ve_front(self) -> xr.DataArray:
        """The VE table; the same as :attr:`ve_rear` (``shared_ve``)."""
        return self.ve

    @property
    def ve_rear(self) -> xr.DataArray:
        """The VE table; the same as :attr:`ve_front` (``shared_ve``)."""
        return self.ve

    @cached_property
    def afr_target(self) -> xr.DataArray | None:
        """Target AFR table [1], dims ``("rpm", "map")``, or None."""
        if "afrTable" not in self.arrays:
            return None
        array = self.table(
            "afrTable", "rpmBinsAFR", "loadBinsAFR", ("map", "kPa")
        )
        array.name = "afr_target"
        array.attrs["long_name"] = "target air-fuel ratio"
        return array

    @cached_property
    def lambda_target(self) -> xr.DataArray | None:
        """Target lambda table [1], dims ``("rpm", "map")``, or None."""
        if "lambdaTable" not in self.arrays:
            return None
        array = self.table(
            "lambdaTable", "rpmBinsAFR", "loadBinsAFR", ("map", "kPa")
        )
        array.name = "lambda_target"
        array.attrs["long_name"] = "target lambda"
        return array

    def with_ve(self, ve) -> MsqTune:
        """Return a copy with a new VE table.

        Parameters
        ----------
        ve : xarray.DataArray or array_like
            New VE [%] with dims ``("rpm", load)`` on the tune's axes
            (see :func:`dynoai_lab.io.tables.check_new_values`). Values
            are rounded to the table's ``digits``.

        Returns
        -------
        MsqTune
            A tune whose bytes differ only in the changed cells' text.
        """
        array = self.arrays["veTable"]
        new = check_new_values(self.ve, ve, f"{self._label}, 'veTable'")
        edits = _edits(array, new.T, self._label)
        if not edits:
            return self
        logger.info("%s, veTable: %d cell(s) changed", self._label, len(edits))
        return MsqTune(_splice(self.data, edits), self.path)

    def write(
        self, path: str | os.PathLike, *, overwrite_readonly: bool = False
    ) -> Path:
        """Write the tune's bytes atomically (temporary file, then rename).

        See :func:`dynoai_lab.io.files.write_atomic` for symlinks and
        read-only destinations.
        """
        path = Path(path)
        write_atomic(path, self.data, overwrite_readonly=overwrite_readonly)
        logger.info("wrote %s (%d bytes)", path, len(self.data))
        return path


def read_msq(path: str | os.PathLike) -> MsqTune:
    """Read a TunerStudio ``.msq`` tune.

    Raises
    ------
    TuneFormatError
        If the file cannot be read, is not XML with an ``<msq>`` root or
        lacks ``veTable``, ``rpmBins`` or ``fuelLoadBins``.

    Examples
    --------
    >>> tune = read_msq("CurrentTune.msq")  # doctest: +SKIP
    >>> tune.ve_front.dims  # doctest: +SKIP
    ('rpm', 'map')
    """
    path = Path(path)
    data = read_regular_file(path, TuneFormatError, "tune")
    tune = MsqTune(data, path)
    logger.info("read %s: %d numeric constants", path, len(tune.arrays))
    return tune


def write_msq(
    tune: MsqTune,
    path: str | os.PathLike,
    ve=None,
    *,
    ve_front=None,
    ve_rear=None,
    overwrite_readonly: bool = False,
) -> MsqTune:
    """Write a TunerStudio tune, optionally with a new VE table.

    Parameters
    ----------
    tune : MsqTune
        The tune to write.
    path : str or path-like
        Destination; written atomically.
    ve : xarray.DataArray or array_like, optional
        New VE [%] on the axes of ``tune.ve``.
    ve_front, ve_rear : xarray.DataArray or array_like, optional
        Accepted for callers that write per-cylinder tables; the tune has
        one VE table, so when both are given they must be equal.
    overwrite_readonly : bool, default False
        Replace a destination without write permission.

    Raises
    ------
    ValueError
        If ``ve_front`` and ``ve_rear`` differ, ``ve`` is given with
        either of them, or the new VE has other dims, coordinates or
        shape than the tune's.
    OSError
        If the destination's folder is missing, the destination is
        read-only (``PermissionError``) or writing fails.
    """
    given = [v for v in (ve_front, ve_rear) if v is not None]
    if given and ve is not None:
        raise ValueError(
            f"{tune.path}: pass either ve= or ve_front=/ve_rear=, not both"
        )
    if len(given) == 2 and not np.allclose(
        np.asarray(ve_front, dtype=float),
        np.asarray(ve_rear, dtype=float),
        rtol=0,
        atol=1e-9,
    ):
        raise ValueError(
            f"{tune.path} has one VE table for all cylinders "
            "(shared_ve=True), but ve_front and ve_rear differ; combine "
            "them into one table and pass ve="
        )
    if given:
        ve = given[0]
    written = tune.with_ve(ve) if ve is not None else tune
    written.write(path, overwrite_readonly=overwrite_readonly)
    return written


class TableFile:
    """A TunerStudio ``.table`` export: one table on its two axes.

    Attributes
    ----------
    shared_ve : bool
        True: the one table is exposed as :attr:`ve_front` and
        :attr:`ve_rear` when it is a VE table.
    afr_target, displacement : None
        A table export contains nothing else.
    """

    shared_ve = True
    afr_target = None
    displacement = None

    def __init__(self, data: bytes, path: str | os.PathLike | None = None):
        self.data = bytes(data)
        self.path = Path(path) if path is not None else None
        self._label = str(self.path) if self.path else "<.table bytes>"
        root = _parse_xml(self.data, self._label, "tableData", TABLE_NAMESPACE)
        self.axis_names = {}
        for element in root.iter():
            tag = element.tag.rpartition("}")[2]
            if tag in ("xAxis", "yAxis"):
                self.axis_names[tag] = element.get("name", tag)
        self.arrays = _arrays(self.data, self._label)
        for needed in ("xAxis", "yAxis", "zValues"):
            if needed not in self.arrays:
                raise TuneFormatError(
                    f"{self._label} has no <{needed}> with numbers; expected "
                    "xAxis, yAxis and zValues"
                )

    def __repr__(self) -> str:
        return f"TableFile({self._label!r})"

    @cached_property
    def ve(self) -> xr.DataArray:
        """The table with dims ``("rpm", load)``; load from the y-axis name.

        ``fuelLoad`` and ``map`` names give ``map`` [kPa], ``tps`` gives
        ``tps`` [%]. The x-axis must be rpm.
        """
        x_name = self.axis_names.get("xAxis", "")
        if x_name.casefold() != "rpm":
            raise TuneFormatError(
                f"{self._label}: the x-axis is {x_name!r}; expected 'rpm'"
            )
        y_name = self.axis_names.get("yAxis", "").casefold()
        dim, unit = ("tps", "%") if "tps" in y_name else ("map", "kPa")
        z = self.arrays["zValues"]
        rpm = self.arrays["xAxis"].values.ravel()
        load = self.arrays["yAxis"].values.ravel()
        if z.shape != (load.size, rpm.size):
            raise TuneFormatError(
                f"{self._label}: zValues is {z.shape[0]} x {z.shape[1]}; "
                f"expected {load.size} x {rpm.size}"
            )
        table = xr.DataArray(
            z.values.T.copy(),
            dims=("rpm", dim),
            coords={
                "rpm": ("rpm", rpm, {"units": "rpm", "source_units": "rpm"}),
                dim: (dim, load, {"units": unit, "source_units": unit}),
            },
            name="ve",
            attrs={"units": "%", "source_name": "zValues"},
        )
        return check_axes(table, f"{self._label}, zValues")

    @property
    def ve_front(self) -> xr.DataArray:
        """The table; the same as :attr:`ve_rear` (``shared_ve``)."""
        return self.ve

    @property
    def ve_rear(self) -> xr.DataArray:
        """The table; the same as :attr:`ve_front` (``shared_ve``)."""
        return self.ve

    def with_ve(self, ve) -> TableFile:
        """Return a copy with new values, see :meth:`MsqTune.with_ve`."""
        z = self.arrays["zValues"]
        new = check_new_values(self.ve, ve, f"{self._label}, zValues")
        # NOTE: a .table does not state digits; values are written with
        # one decimal, as TunerStudio wrote the VE export seen so far.
        z = MsqArray(z.name, z.units, 1, z.shape, z.values, z.spans)
        edits = _edits(z, new.T, self._label)
        return (
            TableFile(_splice(self.data, edits), self.path) if edits else self
        )

    def write(
        self, path: str | os.PathLike, *, overwrite_readonly: bool = False
    ) -> Path:
        """Write the table's bytes atomically, see :meth:`MsqTune.write`."""
        path = Path(path)
        write_atomic(path, self.data, overwrite_readonly=overwrite_readonly)
        return path


def read_table_file(path: str | os.PathLike) -> TableFile:
    """Read a TunerStudio ``.table`` export.

    Raises
    ------
    TuneFormatError
        If the file cannot be read, is not XML with a ``<tableData>``
        root or lacks numeric axes and values.
    """
    path = Path(path)
    data = read_regular_file(path, TuneFormatError, "table")
    return TableFile(data, path)
