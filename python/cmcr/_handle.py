"""Handles on library objects (models, encoders) shared between threads.

A handle counts the calls using it; close() marks it closed and the object is freed when the
last of those calls returns, so closing a model from one thread while another projects with it
never frees memory under the other's feet. Calls started after close() are refused."""
import threading

from ._errors import ArgumentError
from ._lib import ffi


class Handle:
    def __init__(self, pointer, free, what):
        self._ptr = pointer
        self._free = free
        self._what = what
        self._lock = threading.Lock()
        self._users = 0
        self._closed = False

    def acquire(self):
        with self._lock:
            if self._closed:
                raise ArgumentError("%s is closed" % self._what)
            self._users += 1
            return self._ptr

    def release(self):
        with self._lock:
            self._users -= 1
            p = self._take()
        if p is not None:
            self._free(p)

    def _take(self):  # under the lock: the pointer to free now, if it is time
        if self._closed and self._users == 0 and self._ptr is not None:
            p, self._ptr = self._ptr, None
            return p
        return None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False

    def close(self):
        with self._lock:
            self._closed = True
            p = self._take()
        if p is not None:
            self._free(p)

    @property
    def closed(self):
        return self._closed

    def __del__(self):
        try:
            if self._ptr is not None and self._ptr != ffi.NULL:
                self._free(self._ptr)
                self._ptr = None
        except Exception:  # interpreter shutdown: the library may be gone already
            pass


class Closable:
    """close(), .closed and `with` for an object that keeps its library object in self._h."""

    def close(self):
        self._h.close()

    @property
    def closed(self):
        return self._h.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
