"""Apply and roll back VE corrections with an exact, hashed history.

Every applied correction records the table before it, the ratio applied
and the table after it, each with a SHA-256 digest of its axes and
values. Rolling back returns the recorded table itself, so the earlier
table comes back bit for bit, also after the history has been saved to
NetCDF and loaded again (float64 round-trips exactly through NetCDF).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from dynoai_lab.output import write_netcdf


class HistoryError(ValueError):
    """A rollback or load that would not restore the recorded table."""


def table_digest(table):
    """Return the SHA-256 of a table's dims, axes and float64 values.

    Parameters
    ----------
    table : xarray.DataArray
        A tune table on its axes.

    Returns
    -------
    str
        Hex digest; equal digests mean bit-identical axes and values.
    """
    digest = hashlib.sha256()
    for dim in table.dims:
        digest.update(dim.encode())
        axis = np.ascontiguousarray(table[dim].values, dtype="<f8")
        digest.update(axis.tobytes())
    values = np.ascontiguousarray(table.values, dtype="<f8")
    digest.update(str(values.shape).encode())
    digest.update(values.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Change:
    """One applied correction of one table.

    Attributes
    ----------
    table : str
        Which table changed, for example ``ve_front``.
    label : str
        What the change was (an iteration, a pull file).
    before, after : xarray.DataArray
        The table before and after.
    ratio : xarray.DataArray
        The ratio applied, ``after = before · ratio``.
    before_sha256, after_sha256 : str
        Digests from :func:`table_digest`.
    """

    table: str
    label: str
    before: xr.DataArray
    after: xr.DataArray
    ratio: xr.DataArray
    before_sha256: str
    after_sha256: str


class TableHistory:
    """The ordered record of corrections applied to a tune's tables."""

    def __init__(self):
        self.changes: list[Change] = []

    def __len__(self):
        return len(self.changes)

    def apply(self, name, table, ratio, label="", decimals=None):
        """Multiply a table by a ratio and record the change.

        Parameters
        ----------
        name : str
            Table name, for example ``ve_front``.
        table : xarray.DataArray
            The table now in use [%].
        ratio : xarray.DataArray or numpy.ndarray
            Ratio per cell [1], same shape as ``table``.
        label : str
            Description kept with the change.
        decimals : int, optional
            Round the new table to this many decimals, the way a tune
            file writes them (for example
            :meth:`dynoai_lab.io.pvv.PvvTune.ve_decimals`). The recorded
            table is then what the file stores, so a rollback still
            matches after saving and reading the tune again.

        Returns
        -------
        xarray.DataArray
            The new table.
        """
        ratio = np.asarray(ratio, dtype=float)
        if ratio.shape != table.shape:
            raise ValueError(
                f"ratio shape {ratio.shape} does not match table {name!r} "
                f"shape {table.shape}"
            )
        if not np.all(np.isfinite(ratio)) or np.any(ratio <= 0):
            raise ValueError(
                f"ratio for table {name!r} must be finite and > 0"
            )
        before = table.copy(deep=True)
        values = before.values * ratio
        if decimals is not None:
            # Through the decimal text, exactly as a writer rounds.
            values = np.array(
                [float(f"{v:.{int(decimals)}f}") for v in values.ravel()]
            ).reshape(values.shape)
        after = before.copy(data=values)
        ratio_table = before.copy(data=ratio)
        ratio_table.attrs = {"units": "1", "long_name": "ratio applied"}
        self.changes.append(
            Change(
                name,
                label,
                before,
                after,
                ratio_table,
                table_digest(before),
                table_digest(after),
            )
        )
        return after.copy(deep=True)

    def rollback(self, name, current):
        """Undo the last change of one table.

        Parameters
        ----------
        name : str
            Table name.
        current : xarray.DataArray
            The table now in use; it must be the last change's result.

        Returns
        -------
        xarray.DataArray
            The table as it was before that change, bit for bit.

        Raises
        ------
        HistoryError
            When the table has no recorded change, or ``current`` is
            not what the last change produced (it was edited since).
        """
        for index in range(len(self.changes) - 1, -1, -1):
            change = self.changes[index]
            if change.table != name:
                continue
            if table_digest(current) != change.after_sha256:
                raise HistoryError(
                    f"table {name!r} differs from what change "
                    f"{change.label!r} produced (SHA-256 "
                    f"{change.after_sha256[:12]}...); it was edited "
                    "since, so rolling back would lose that edit"
                )
            del self.changes[index]
            restored = change.before.copy(deep=True)
            if table_digest(restored) != change.before_sha256:
                raise HistoryError(
                    f"recorded table {name!r} before {change.label!r} no "
                    "longer matches its SHA-256; the history is corrupt"
                )
            return restored
        raise HistoryError(f"no recorded change of table {name!r} to undo")

    def to_dataset(self):
        """Return the history as one xarray Dataset (for NetCDF)."""
        variables = {}
        for index, change in enumerate(self.changes):
            for part in ("before", "after", "ratio"):
                array = getattr(change, part)
                dims = tuple(f"c{index}_{d}" for d in array.dims)
                coords = {f"c{index}_{d}": array[d].values for d in array.dims}
                variables[f"c{index}_{part}"] = xr.DataArray(
                    array.values,
                    dims=dims,
                    coords=coords,
                    attrs={
                        "table": change.table,
                        "label": change.label,
                        "dims": " ".join(array.dims),
                        "before_sha256": change.before_sha256,
                        "after_sha256": change.after_sha256,
                        "units": array.attrs.get("units", ""),
                    },
                )
        ds = xr.Dataset(variables)
        ds.attrs["changes"] = len(self.changes)
        return ds

    def save(self, path):
        """Write the history to NetCDF, atomically."""
        return write_netcdf(self.to_dataset(), Path(path))

    @classmethod
    def load(cls, path):
        """Read a history written by :meth:`save` and check its digests."""
        history = cls()
        with xr.open_dataset(path) as ds:
            ds = ds.load()
        for index in range(int(ds.attrs.get("changes", 0))):
            parts = {}
            for part in ("before", "after", "ratio"):
                var = ds[f"c{index}_{part}"]
                dims = var.attrs["dims"].split()
                parts[part] = xr.DataArray(
                    var.values,
                    dims=dims,
                    coords={d: var[f"c{index}_{d}"].values for d in dims},
                    attrs={"units": var.attrs.get("units", "")},
                )
            attrs = ds[f"c{index}_before"].attrs
            change = Change(
                attrs["table"],
                attrs["label"],
                parts["before"],
                parts["after"],
                parts["ratio"],
                attrs["before_sha256"],
                attrs["after_sha256"],
            )
            for part, key in (
                ("before", "before_sha256"),
                ("after", "after_sha256"),
            ):
                if table_digest(getattr(change, part)) != getattr(change, key):
                    raise HistoryError(
                        f"{path}: change {index} ({change.label!r}) table "
                        f"{part} does not match its recorded SHA-256"
                    )
            history.changes.append(change)
        return history
