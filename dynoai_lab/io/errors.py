"""Exceptions raised by the file readers and writers."""

from __future__ import annotations


class FileFormatError(ValueError):
    """A file is not in the format its reader expects.

    The message names the file, what was found and what was expected.
    """


class LogFormatError(FileFormatError):
    """A log file (dyno or ECU recording) cannot be read."""


class TuneFormatError(FileFormatError):
    """A tune file (for example a Power Vision .pvv) cannot be read."""


class PreflightError(LogFormatError):
    """A log cannot be analysed: a required channel is missing or unusable.

    The message names the file, the channel and the fix.
    """
