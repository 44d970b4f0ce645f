"""filemap: shared memory between processes, the Win32 way.

Named and unnamed mappings with views (zero-copy into NumPy through the
buffer protocol), spsc/mpmc/broadcast channels and events across processes,
with the Win32 lifetime: a name disappears when the last process holding it
lets go, crashes included. Blocking calls release the GIL, and Ctrl-C
interrupts them.

    >>> import filemap
    >>> m = filemap.Mapping.create("demo", 4096)
    >>> v = m.view()
    >>> v.write_at(0, b"hello")
    >>> bytes(memoryview(v)[:5])
    b'hello'
"""

from ._errors import (
    AccessDenied,
    AlreadyExists,
    Busy,
    Corrupt,
    Error,
    InvalidArgument,
    NoSpace,
    NotFound,
    PeerGone,
    Timeout,
    Truncated,
    Unsupported,
)
from ._types import Received
from ._filemap import (
    BroadcastReceiver,
    BroadcastSender,
    Event,
    Inheritable,
    LatestReader,
    LatestWriter,
    Lock,
    Mapping,
    Message,
    MpmcReceiver,
    MpmcSender,
    RpcClient,
    RpcRequest,
    RpcServer,
    SpscReceiver,
    SpscSender,
    View,
)

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
