"""The C library: its declarations, where it is found, its errors, and the callback plumbing.

cffi in ABI mode: the declarations are read from cmcr.h itself (the copy installed in this
package, or include/cmcr.h of the source tree this package sits in), so there is no second,
hand-written copy of the API to drift, and nothing is compiled when the package is installed.
Every C call is made with the GIL released (cffi does so for every call through a library
opened with ffi.dlopen); callbacks from C take it again.
"""
import logging
import os
import re
import threading
import traceback

import cffi

from . import _errors

_HERE = os.path.dirname(os.path.abspath(__file__))
SONAME = "libcmcr.so.0"


# ------------------------------------------------------------------ the header

def _header_path():
    """cmcr.h: the copy installed beside this file, else include/cmcr.h of the source tree."""
    for p in (os.path.join(_HERE, "cmcr.h"), os.path.join(_HERE, "..", "..", "include", "cmcr.h")):
        if os.path.isfile(p):
            return os.path.normpath(p)
    raise ImportError("cmcr: cannot find cmcr.h (neither %s nor the source tree's include/cmcr.h); "
                      "install the package with `cmake --install`" % os.path.join(_HERE, "cmcr.h"))


def cdef_from_header(text):
    """The header as cffi's cdef() takes it: comments and preprocessor lines removed (the
    C++-only blocks with their contents), CMCR_API dropped, integer #defines kept."""
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    out, live = [], []
    for line in text.split("\n"):
        s = line.strip()
        if s.startswith("#"):
            d = s[1:].strip()
            if re.match(r"if(n?def)?\b", d):
                live.append(not re.match(r"ifdef\s+__cplusplus\b", d))
            elif d.startswith("else"):
                live[-1] = not live[-1]
            elif d.startswith("endif"):
                live.pop()
            elif all(live):
                m = re.match(r"define\s+(\w+)\s+(-?\d+)\s*$", d)
                if m:
                    out.append("#define %s %s" % m.groups())
                    continue
            out.append("")
            continue
        out.append(re.sub(r"\bCMCR_API\s+", "", line) if all(live) else "")
    return "\n".join(out)


HEADER = _header_path()
with open(HEADER, encoding="utf-8") as _f:
    _HEADER_TEXT = _f.read()
_m = re.search(r'#define\s+CMCR_VERSION_STRING\s+"([^"]*)"', _HEADER_TEXT)
HEADER_VERSION = _m.group(1) if _m else None

ffi = cffi.FFI()
ffi.cdef(cdef_from_header(_HEADER_TEXT))
ffi.cdef("void free(void *);")  # libc's, for the strings the library allocates


# ------------------------------------------------------------------ the library

def _candidates():
    """Where the library is looked for, in order: $CMCR_LIBRARY (an explicit choice wins), the
    path an installed package records relative to itself (_install.py, written by `cmake
    --install`), then the loader's default search (LD_LIBRARY_PATH, ld.so.cache)."""
    env = os.environ.get("CMCR_LIBRARY")
    if env:
        return [("$CMCR_LIBRARY", env)]
    out = []
    try:
        from . import _install  # written by cmake --install: LIBRARY relative to this folder
        out.append(("installed beside the package", os.path.normpath(os.path.join(_HERE, _install.LIBRARY))))
    except ImportError:
        pass
    out.append(("the loader's search path", SONAME))
    return out


def _open():
    tried = []
    for how, path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append("%s (%s): no such file" % (path, how))
            continue
        try:
            return ffi.dlopen(path), path
        except OSError as e:
            tried.append("%s (%s): %s" % (path, how, str(e).splitlines()[0]))
    raise ImportError("cmcr: cannot load libcmcr: " + "; ".join(tried) +
                      " (build it with cmake, and set CMCR_LIBRARY to build/libcmcr.so.0 or install it)")


lib, LIBRARY = _open()
if os.sep not in LIBRARY:  # found by the loader: say which file it is
    try:
        with open("/proc/self/maps") as _maps:
            for _l in _maps:
                if "/libcmcr.so" in _l:
                    LIBRARY = _l.split()[-1]
                    break
    except OSError:
        pass
VERSION = ffi.string(lib.cmcr_version()).decode()
if HEADER_VERSION != VERSION:
    raise ImportError("cmcr: %s is version %s but its header %s says %s: install both from one build"
                      % (LIBRARY, VERSION, HEADER, HEADER_VERSION))


# Debian 12's OpenBLAS does not recognise some recent CPUs and falls back to slow kernels; it
# reads OPENBLAS_CORETYPE only when it loads, which NumPy has done before this package can set
# it, and a Python program cannot restart itself as the cmcr command does: say what to do.
# (CMCR_TEST_BLAS_CORE pretends OpenBLAS picked another set, as for the command's test.)
_picked = os.environ.get("CMCR_TEST_BLAS_CORE")
_better = lib.cmcr_blas_better_core(_picked.encode() if _picked else ffi.NULL)
if _better != ffi.NULL:
    import warnings
    warnings.warn("cmcr: OpenBLAS picked the slow %s kernels for this CPU; start Python with "
                  "OPENBLAS_CORETYPE=%s in the environment for fast matrix products"
                  % (_picked or ffi.string(lib.cmcr_blas_core()).decode(), ffi.string(_better).decode()),
                  RuntimeWarning, stacklevel=2)


# ------------------------------------------------------------------ errors

def text(p):
    """A C string (NULL: None) as str; bytes that are not UTF-8 shown as escapes."""
    if p == ffi.NULL:
        return None
    return ffi.string(p).decode("utf-8", "backslashreplace")


def last_error():
    return text(lib.cmcr_last_error())


def error(status, message=None):
    """The exception for a failed call in this thread (the library's message by default)."""
    if message is None:
        message = last_error() or text(lib.cmcr_status_name(status))
    return _errors.error_for(int(status), message)


def check(status):
    """After a C call: a Ctrl-C that landed in the log callback during it, else the error."""
    e = getattr(_pending, "exc", None)
    if e is not None:
        _pending.exc = None
        raise e
    if status != lib.CMCR_OK:
        raise error(status)


def free_string(p):
    """A malloc'd C string as str, freed."""
    try:
        return text(p)
    finally:
        if p != ffi.NULL:
            lib.free(p)


def cstr(s, what="a name"):
    """str or path-like -> bytes for a const char * argument (None -> NULL)."""
    if s is None:
        return ffi.NULL
    if isinstance(s, (str, os.PathLike)):
        s = os.fsencode(s)
    if not isinstance(s, bytes):
        raise TypeError("%s must be a str or path, not %s" % (what, type(s).__name__))
    if b"\0" in s:
        raise _errors.ArgumentError("%s contains a NUL byte: %r" % (what, s))
    return s


# ------------------------------------------------------------------ callbacks

class Callback:
    """A Python function as a C callback for the duration of one C call. The callback types
    of cmcr.h end with a `void *user`, which fn does not get.

    Any exception the function raises, KeyboardInterrupt from a Ctrl-C included, makes the
    callback return `stop` (asking the C work to stop) and is kept; `reraise()` raises it after
    the C call has returned. A function returning True also asks to stop."""

    def __init__(self, ctype, fn, stop=1):
        self.exc = None

        def call(*args):
            try:
                return stop if fn(*args[:-1]) else 0
            except BaseException as e:  # noqa: B902 -- re-raised after the C call
                self.exc = e
                return stop

        def onerror(exc_type, exc_value, tb):  # an exception cffi caught around call()
            if self.exc is None and exc_value is not None:
                self.exc = exc_value
            return stop

        self.c = ffi.callback(ctype, call, error=stop, onerror=onerror)

    def reraise(self):
        if self.exc is not None:
            e, self.exc = self.exc, None
            raise e


# ------------------------------------------------------------------ the log

_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}
_log_lock = threading.Lock()
# A KeyboardInterrupt raised (by the SIGINT handler) while the log callback ran: it cannot cross
# the C frames, so it is kept here and raised by check() when the call returns, in the thread
# it was raised in (the main thread: the only one Python delivers signals to).
_pending = threading.local()
_log_state = {"callback": None, "fn": None, "installed": []}
logger = logging.getLogger("cmcr")


def _log_onerror(exc_type, exc_value, tb):
    # cffi calls this for an exception that escaped the callback: a Ctrl-C is kept for check();
    # anything else is printed, as an exception in a callback with nowhere to go.
    if isinstance(exc_value, KeyboardInterrupt):
        _pending.exc = exc_value
    elif exc_value is not None:
        traceback.print_exception(exc_type, exc_value, tb)
    return None


def set_log(fn="logging"):
    """Where the library's diagnostics go: "logging" (the default at import: the `cmcr` logger
    of Python's logging module, levels mapped), a function fn(level, message) with the
    logging level number, or None (silence). It may be called from the library's threads."""
    if fn == "logging":
        def fn(level, message):
            logger.log(level, "%s", message)
    elif fn is not None and not callable(fn):
        raise TypeError("set_log takes a function(level, message), 'logging' or None")
    with _log_lock:
        if fn is None:
            lib.cmcr_set_log(ffi.NULL, ffi.NULL)
            _log_state.update(callback=None, fn=None)
            return

        def bridge(level, message, user):
            try:
                fn(_LEVELS.get(int(level), logging.DEBUG), text(message))
            except KeyboardInterrupt as e:
                _pending.exc = e

        cb = ffi.callback("cmcr_log_fn", bridge, onerror=_log_onerror)
        lib.cmcr_set_log(cb, ffi.NULL)
        # Every callback ever installed stays alive: another thread may still be inside the
        # previous one when it is replaced.
        _log_state["installed"].append(cb)
        _log_state.update(callback=cb, fn=fn)


set_log("logging")
