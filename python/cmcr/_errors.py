"""The exceptions: one class per cmcr_status, each also a subclass of the built-in exception a
Python caller would expect (ValueError, OSError, MemoryError), so that `except cmcr.Error`
catches everything the library refuses and `except ValueError` what a bad value makes."""


class Error(Exception):
    """A call into libcmcr failed. `message` is the library's one line (it names the file or
    the argument and the problem); `status` is the cmcr_status number, `status_name` its name
    in cmcr.h ("CMCR_EIO")."""

    status = None
    status_name = None

    def __init__(self, message, status=None, status_name=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if status_name is not None:
            self.status_name = status_name

    def __str__(self):
        return self.message


class ArgumentError(Error, ValueError):
    """CMCR_EINVAL: a bad argument or option."""
    status, status_name = 1, "CMCR_EINVAL"


class FileError(Error, OSError):
    """CMCR_EIO: the operating system refused a read or write (a missing file, a full disk)."""
    status, status_name = 2, "CMCR_EIO"

    def __init__(self, message, status=None, status_name=None):
        Error.__init__(self, message, status, status_name)


class FormatError(Error, ValueError):
    """CMCR_EFORMAT: a file is malformed or truncated."""
    status, status_name = 3, "CMCR_EFORMAT"


class UnsupportedError(Error, ValueError):
    """CMCR_EUNSUPPORTED: well-formed, but something this library refuses (a dtype, an order)."""
    status, status_name = 4, "CMCR_EUNSUPPORTED"


class ShapeError(Error, ValueError):
    """CMCR_ESHAPE: shapes or widths do not match."""
    status, status_name = 5, "CMCR_ESHAPE"


class InvalidValueError(Error, ValueError):
    """CMCR_EVALUE: NaN, Inf or otherwise unusable values."""
    status, status_name = 6, "CMCR_EVALUE"


class OutOfMemoryError(Error, MemoryError):
    """CMCR_ENOMEM: an allocation failed, or a size exceeds the library's limits."""
    status, status_name = 7, "CMCR_ENOMEM"


class StoppedError(Error):
    """CMCR_EINTERRUPTED: the work stopped on request (a callback returned True). Training
    has written a checkpoint first: `checkpoint` is its path (None without one)."""
    status, status_name = 8, "CMCR_EINTERRUPTED"
    checkpoint = None


_BY_STATUS = {c.status: c for c in (ArgumentError, FileError, FormatError, UnsupportedError, ShapeError,
                                    InvalidValueError, OutOfMemoryError, StoppedError)}


def error_for(status, message, status_name=None):
    cls = _BY_STATUS.get(status, Error)
    return cls(message, status, status_name)
