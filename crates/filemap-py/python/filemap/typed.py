"""Typed channels and services over NumPy structured dtypes.

A dtype laid out as a Rust ``#[repr(C)]`` struct (``align=True``: fields at
their C offsets, padded to the struct's alignment) opens the same typed
channel as the Rust program, given the same identity (the Rust side's
``MessageType::named::<T>("...")``, or its default ``std::any::type_name``).
A dtype of another size or alignment, or another identity, raises
``filemap.Corrupt`` (kind Incompatible) naming both types.

    >>> import numpy as np, filemap.typed as ft
    >>> reading = np.dtype([("sensor", "<u4"), ("seq", "<u4"), ("celsius", "<f8")], align=True)
    >>> tx = ft.SpscSender.create("doc-readings", reading, 64, type_name="sensors.Reading/v1")
    >>> rx = ft.SpscReceiver.open("doc-readings", reading, type_name="sensors.Reading/v1")
    >>> tx.send((7, 0, 21.5))
    >>> rx.recv()["celsius"]
    np.float64(21.5)

Every value is copied in and out (``ndarray.tobytes`` / ``numpy.frombuffer``);
waiting releases the GIL, as everywhere in filemap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from . import _filemap
from ._errors import Corrupt
from ._types import Received

__all__ = [
    "BroadcastReceiver",
    "BroadcastSender",
    "MpmcReceiver",
    "MpmcSender",
    "RpcClient",
    "RpcServer",
    "SpscReceiver",
    "SpscSender",
    "message_type",
]


def message_type(dtype: npt.DTypeLike, type_name: str) -> tuple[str, int, int]:
    """The (identity, size, alignment) filemap records for values of ``dtype``."""
    dt = np.dtype(dtype)
    if dt.hasobject:
        raise TypeError(f"{dt} holds Python objects: only plain data can be shared")
    if dt.itemsize == 0:
        raise TypeError(f"{dt} is zero-sized")
    return (type_name, dt.itemsize, dt.alignment)


def _to_bytes(value: Any, dt: np.dtype[Any], many: bool = False) -> bytes:
    arr = np.asarray(value, dtype=dt)
    if not many and arr.ndim != 0:
        raise ValueError(f"one value of {dt} expected, got an array of shape {arr.shape}")
    return arr.tobytes()


def _one(data: bytes, dt: np.dtype[Any], name: str) -> Any:
    if len(data) != dt.itemsize:
        raise Corrupt(
            f"`{name}` delivered a malformed message, which was dropped: it is "
            f"{len(data)} bytes, and a value of {dt} is {dt.itemsize}"
        )
    return np.frombuffer(data, dtype=dt)[0]


def _many(data: bytes, dt: np.dtype[Any], name: str) -> npt.NDArray[Any]:
    if len(data) % dt.itemsize:
        raise Corrupt(
            f"`{name}` delivered a malformed message, which was dropped: it is "
            f"{len(data)} bytes, not a whole number of values of {dt.itemsize}"
        )
    return np.frombuffer(data, dtype=dt).copy()


def _ring_capacity(dt: np.dtype[Any], values: int) -> int:
    # As Rust's typed spsc: a record header of 8 bytes and the value padded
    # to 8, twice over (a message may take at most half the ring).
    return values * (8 + ((dt.itemsize + 7) & ~7)) * 2


class _Typed:
    def __init__(self, inner: Any, dtype: npt.DTypeLike, name: str) -> None:
        self._inner = inner
        self.dtype = np.dtype(dtype)
        self.name = name


class SpscSender(_Typed):
    """The sending end of a typed spsc channel."""

    @classmethod
    def create(cls, name: str, dtype: npt.DTypeLike, values: int, *, type_name: str) -> SpscSender:
        """Creates the channel with room for ``values`` messages of one value."""
        dt = np.dtype(dtype)
        mt = message_type(dt, type_name)
        inner = _filemap.SpscSender.create(name, _ring_capacity(dt, values), message_type=mt)
        return cls(inner, dt, name)

    @classmethod
    def open(cls, name: str, dtype: npt.DTypeLike, *, type_name: str) -> SpscSender:
        mt = message_type(dtype, type_name)
        return cls(_filemap.SpscSender.open(name, message_type=mt), dtype, name)

    def send(self, value: Any, timeout: float | None = None) -> None:
        """Sends one value (a tuple, a structured scalar, a 0-d array)."""
        self._inner.send(_to_bytes(value, self.dtype), timeout)

    def send_array(self, values: Any, timeout: float | None = None) -> None:
        """Sends an array of values as one message."""
        self._inner.send(_to_bytes(values, self.dtype, many=True), timeout)

    def try_send(self, value: Any) -> bool:
        return bool(self._inner.try_send(_to_bytes(value, self.dtype)))


class SpscReceiver(_Typed):
    """The receiving end of a typed spsc channel."""

    @classmethod
    def create(cls, name: str, dtype: npt.DTypeLike, values: int, *, type_name: str) -> SpscReceiver:
        dt = np.dtype(dtype)
        mt = message_type(dt, type_name)
        inner = _filemap.SpscReceiver.create(name, _ring_capacity(dt, values), message_type=mt)
        return cls(inner, dt, name)

    @classmethod
    def open(cls, name: str, dtype: npt.DTypeLike, *, type_name: str) -> SpscReceiver:
        mt = message_type(dtype, type_name)
        return cls(_filemap.SpscReceiver.open(name, message_type=mt), dtype, name)

    def recv(self, timeout: float | None = None) -> Any:
        """The next value (a structured scalar, ``numpy.void``)."""
        return _one(self._inner.recv(timeout), self.dtype, self.name)

    def recv_array(self, timeout: float | None = None) -> npt.NDArray[Any]:
        """The values of the next message, as an array."""
        return _many(self._inner.recv(timeout), self.dtype, self.name)

    def try_recv(self) -> Any | None:
        data = self._inner.try_recv()
        return None if data is None else _one(data, self.dtype, self.name)


class MpmcSender(_Typed):
    """A sending end of a typed mpmc channel."""

    @classmethod
    def create(
        cls, name: str, dtype: npt.DTypeLike, slots: int, *, type_name: str, max_values: int = 1
    ) -> MpmcSender:
        dt = np.dtype(dtype)
        mt = message_type(dt, type_name)
        inner = _filemap.MpmcSender.create(name, slots, dt.itemsize * max_values, message_type=mt)
        return cls(inner, dt, name)

    @classmethod
    def open(cls, name: str, dtype: npt.DTypeLike, *, type_name: str) -> MpmcSender:
        mt = message_type(dtype, type_name)
        return cls(_filemap.MpmcSender.open(name, message_type=mt), dtype, name)

    def send(self, value: Any, timeout: float | None = None) -> None:
        self._inner.send(_to_bytes(value, self.dtype), timeout)

    def send_array(self, values: Any, timeout: float | None = None) -> None:
        self._inner.send(_to_bytes(values, self.dtype, many=True), timeout)


class MpmcReceiver(_Typed):
    """A receiving end of a typed mpmc channel."""

    @classmethod
    def create(
        cls, name: str, dtype: npt.DTypeLike, slots: int, *, type_name: str, max_values: int = 1
    ) -> MpmcReceiver:
        dt = np.dtype(dtype)
        mt = message_type(dt, type_name)
        inner = _filemap.MpmcReceiver.create(name, slots, dt.itemsize * max_values, message_type=mt)
        return cls(inner, dt, name)

    @classmethod
    def open(cls, name: str, dtype: npt.DTypeLike, *, type_name: str) -> MpmcReceiver:
        mt = message_type(dtype, type_name)
        return cls(_filemap.MpmcReceiver.open(name, message_type=mt), dtype, name)

    def recv(self, timeout: float | None = None) -> Any:
        return _one(self._inner.recv(timeout), self.dtype, self.name)

    def recv_array(self, timeout: float | None = None) -> npt.NDArray[Any]:
        return _many(self._inner.recv(timeout), self.dtype, self.name)


class BroadcastSender(_Typed):
    """The sending end of a typed broadcast channel (never waits)."""

    @classmethod
    def create(
        cls, name: str, dtype: npt.DTypeLike, slots: int, *, type_name: str, max_values: int = 1
    ) -> BroadcastSender:
        dt = np.dtype(dtype)
        mt = message_type(dt, type_name)
        inner = _filemap.BroadcastSender.create(name, slots, dt.itemsize * max_values, message_type=mt)
        return cls(inner, dt, name)

    @classmethod
    def open(cls, name: str, dtype: npt.DTypeLike, *, type_name: str) -> BroadcastSender:
        mt = message_type(dtype, type_name)
        return cls(_filemap.BroadcastSender.open(name, message_type=mt), dtype, name)

    def send(self, value: Any) -> None:
        self._inner.send(_to_bytes(value, self.dtype))


class BroadcastReceiver(_Typed):
    """A receiving end of a typed broadcast channel."""

    @classmethod
    def create(
        cls, name: str, dtype: npt.DTypeLike, slots: int, *, type_name: str, max_values: int = 1
    ) -> BroadcastReceiver:
        dt = np.dtype(dtype)
        mt = message_type(dt, type_name)
        inner = _filemap.BroadcastReceiver.create(name, slots, dt.itemsize * max_values, message_type=mt)
        return cls(inner, dt, name)

    @classmethod
    def open(cls, name: str, dtype: npt.DTypeLike, *, type_name: str) -> BroadcastReceiver:
        mt = message_type(dtype, type_name)
        return cls(_filemap.BroadcastReceiver.open(name, message_type=mt), dtype, name)

    def recv(self, timeout: float | None = None) -> Received:
        """A ``Received(data, seq, missed)`` whose ``data`` is the value."""
        r = self._inner.recv(timeout)
        return Received(_one(r.data, self.dtype, self.name), r.seq, r.missed)


class RpcServer:
    """A server of a typed service: requests of ``request_dtype``, responses
    of ``response_dtype``; ``recv_request`` gives ``(value, request)``, and
    ``respond(request, value)`` answers."""

    def __init__(self, inner: _filemap.RpcServer, q: npt.DTypeLike, r: npt.DTypeLike) -> None:
        self._inner = inner
        self.request_dtype = np.dtype(q)
        self.response_dtype = np.dtype(r)

    @classmethod
    def create(
        cls,
        name: str,
        request_dtype: npt.DTypeLike,
        response_dtype: npt.DTypeLike,
        *,
        request_type_name: str,
        response_type_name: str,
        clients: int = 64,
    ) -> RpcServer:
        inner = _filemap.RpcServer.create(
            name,
            clients=clients,
            request_type=message_type(request_dtype, request_type_name),
            response_type=message_type(response_dtype, response_type_name),
        )
        return cls(inner, request_dtype, response_dtype)

    @classmethod
    def open(
        cls,
        name: str,
        request_dtype: npt.DTypeLike,
        response_dtype: npt.DTypeLike,
        *,
        request_type_name: str,
        response_type_name: str,
    ) -> RpcServer:
        inner = _filemap.RpcServer.open(
            name,
            request_type=message_type(request_dtype, request_type_name),
            response_type=message_type(response_dtype, response_type_name),
        )
        return cls(inner, request_dtype, response_dtype)

    def recv_request(self, timeout: float | None = None) -> tuple[Any, _filemap.RpcRequest]:
        req = self._inner.recv_request(timeout)
        return _one(req.data, self.request_dtype, self._inner.name), req

    def respond(self, request: _filemap.RpcRequest, value: Any) -> None:
        request.respond(_to_bytes(value, self.response_dtype))


class RpcClient:
    """A client of a typed service: ``call(value)`` returns the response value."""

    def __init__(self, inner: _filemap.RpcClient, name: str, q: npt.DTypeLike, r: npt.DTypeLike) -> None:
        self._inner = inner
        self.name = name
        self.request_dtype = np.dtype(q)
        self.response_dtype = np.dtype(r)

    @classmethod
    def open(
        cls,
        name: str,
        request_dtype: npt.DTypeLike,
        response_dtype: npt.DTypeLike,
        *,
        request_type_name: str,
        response_type_name: str,
    ) -> RpcClient:
        inner = _filemap.RpcClient.open(
            name,
            request_type=message_type(request_dtype, request_type_name),
            response_type=message_type(response_dtype, response_type_name),
        )
        return cls(inner, name, request_dtype, response_dtype)

    def call(self, value: Any, timeout: float | None = None) -> Any:
        data = self._inner.call(_to_bytes(value, self.request_dtype), timeout)
        return _one(data, self.response_dtype, self.name)
