"""Exceptions of the dream client: one class per wire status (dream.proto
``Status``), each carrying the server's message."""

from __future__ import annotations

from typing import Dict, Optional, Type

__all__ = [
    "DreamError", "RetryableError", "DreamConnectionError", "InternalError", "OutOfMemoryError",
    "InvalidError", "LimitError", "SizeOverflowError", "ParseError", "FormatError",
    "TruncatedError", "ChecksumError", "CorruptError", "RangeError", "BudgetError",
    "InexactError", "CompressError", "EmptyError", "SchemaError", "ExistsError",
    "NotFoundError", "FullError", "ServerIOError", "BusyError", "CancelledError", "AuthError",
    "DeniedError", "ProtocolError", "DeadlineError", "NumericError", "error_for_status",
]


class DreamError(Exception):
    """An error answered by dreamd (or found by the client before sending).

    Attributes:
        status: the wire status number (dream.proto ``Status``), 0 when the
            error is the client's own (e.g. a lost connection).
        message: the server's explanation, naming the field or object at fault.
    """

    status: int = 0

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class RetryableError(DreamError):
    """The same request may succeed later, unchanged (busy, full, timeout)."""


class DreamConnectionError(DreamError, ConnectionError):
    """The connection to dreamd failed or was lost."""


class InternalError(DreamError):
    """Server failure not covered by another status."""
    status = 1


class OutOfMemoryError(DreamError):
    """The server is out of memory."""
    status = 2


class InvalidError(DreamError, ValueError):
    """A request field is invalid (the message names it)."""
    status = 3


class LimitError(DreamError, ValueError):
    """A request exceeds a size limit."""
    status = 4


class SizeOverflowError(DreamError, ValueError):
    """Sizes in the request overflow when multiplied."""
    status = 5


class ParseError(DreamError):
    """Malformed input data."""
    status = 6


class FormatError(DreamError):
    """Unsupported file format or version."""
    status = 7


class TruncatedError(DreamError):
    """Input ends early."""
    status = 8


class ChecksumError(DreamError):
    """Stored data failed its checksum."""
    status = 9


class CorruptError(DreamError):
    """Stored data is inconsistent."""
    status = 10


class RangeError(DreamError, IndexError):
    """Row or column out of range."""
    status = 11


class BudgetError(DreamError, ValueError):
    """Budget too small or invalid."""
    status = 12


class InexactError(DreamError, ValueError):
    """A value cannot be stored exactly."""
    status = 13


class CompressError(DreamError):
    """The compression library failed."""
    status = 14


class EmptyError(DreamError):
    """No data (e.g. training on an empty dataset)."""
    status = 15


class SchemaError(DreamError):
    """Data does not match the dataset's schema."""
    status = 16


class ExistsError(DreamError):
    """The dataset already exists."""
    status = 17


class NotFoundError(DreamError, LookupError):
    """Unknown dataset, job or model."""
    status = 18


class FullError(RetryableError):
    """Store or disk full (retryable)."""
    status = 19


class ServerIOError(DreamError):
    """I/O error on the server."""
    status = 20


class BusyError(RetryableError):
    """Server busy: limit of in-flight work (retryable)."""
    status = 21


class CancelledError(DreamError):
    """The job or request was cancelled."""
    status = 22


class AuthError(DreamError, PermissionError):
    """Authentication required or failed."""
    status = 23


class DeniedError(DreamError, PermissionError):
    """Authenticated, but the token's role does not allow the request."""
    status = 24


class ProtocolError(DreamError):
    """Protocol violation (bad frame, missing body)."""
    status = 25


class DeadlineError(RetryableError, TimeoutError):
    """Deadline exceeded (retryable)."""
    status = 26


class NumericError(DreamError, ArithmeticError):
    """Numerical failure (singular, non-finite)."""
    status = 27


_BY_STATUS: Dict[int, Type[DreamError]] = {
    c.status: c for c in (
        InternalError, OutOfMemoryError, InvalidError, LimitError, SizeOverflowError, ParseError,
        FormatError, TruncatedError, ChecksumError, CorruptError, RangeError, BudgetError,
        InexactError, CompressError, EmptyError, SchemaError, ExistsError, NotFoundError,
        FullError, ServerIOError, BusyError, CancelledError, AuthError, DeniedError,
        ProtocolError, DeadlineError, NumericError)
}


def error_for_status(status: int, message: str) -> DreamError:
    """The exception for a wire status and the server's message (a plain
    DreamError for a status this client does not know)."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        return DreamError(f"{message} (status {status})", status)
    return cls(message or cls.__doc__ or "error", status)
