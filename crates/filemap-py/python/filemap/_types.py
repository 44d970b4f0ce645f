"""Small value types the native module returns."""

from typing import NamedTuple


class Received(NamedTuple):
    """A broadcast message: its bytes, its sequence number, and how many
    messages before it this receiver missed (lapped by the sender)."""

    data: bytes
    seq: int
    missed: int
