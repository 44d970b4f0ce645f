"""Type stubs for filemap (the native classes live in filemap._filemap)."""

from ._types import Received as Received

__all__ = [
    "AccessDenied",
    "AlreadyExists",
    "BroadcastReceiver",
    "BroadcastSender",
    "Busy",
    "Corrupt",
    "Error",
    "Event",
    "Inheritable",
    "InvalidArgument",
    "LatestReader",
    "LatestWriter",
    "Lock",
    "Mapping",
    "Message",
    "MpmcReceiver",
    "MpmcSender",
    "NoSpace",
    "NotFound",
    "PeerGone",
    "Received",
    "RpcClient",
    "RpcRequest",
    "RpcServer",
    "SpscReceiver",
    "SpscSender",
    "Timeout",
    "Truncated",
    "Unsupported",
    "View",
]

class Error(Exception): ...
class NotFound(Error, FileNotFoundError): ...
class AlreadyExists(Error, FileExistsError): ...
class AccessDenied(Error, PermissionError): ...
class Timeout(Error, TimeoutError): ...
class PeerGone(Error, BrokenPipeError): ...
class Corrupt(Error, ValueError): ...
class InvalidArgument(Error, ValueError): ...
class Busy(Error): ...
class NoSpace(Error, MemoryError): ...
class Unsupported(Error, NotImplementedError): ...
class Truncated(Error): ...

from ._filemap import (
    Inheritable as Inheritable,
    View as View,
    Mapping as Mapping,
    SpscSender as SpscSender,
    SpscReceiver as SpscReceiver,
    Message as Message,
    MpmcSender as MpmcSender,
    MpmcReceiver as MpmcReceiver,
    RpcClient as RpcClient,
    RpcRequest as RpcRequest,
    RpcServer as RpcServer,
    BroadcastSender as BroadcastSender,
    BroadcastReceiver as BroadcastReceiver,
    Event as Event,
    Lock as Lock,
    LatestWriter as LatestWriter,
    LatestReader as LatestReader,
)
