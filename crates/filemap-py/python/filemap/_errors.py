"""filemap's exceptions: one base class, `Error`, and subclasses that also
derive from the matching built-in, so `except FileNotFoundError` catches a
missing mapping too. Every message names the object and the cause, as the
Rust library's errors do."""


class Error(Exception):
    """Any filemap error."""


class NotFound(Error, FileNotFoundError):
    """No mapping of that name exists (or its file is gone)."""


class AlreadyExists(Error, FileExistsError):
    """Create-new found the name taken (or taken by something else)."""


class AccessDenied(Error, PermissionError):
    """The OS refused the access, or more access was asked than held."""


class Timeout(Error, TimeoutError):
    """A wait ran out of time."""


class PeerGone(Error, BrokenPipeError):
    """The other end closed its end or its process died."""


class Corrupt(Error, ValueError):
    """A segment's header or contents are damaged or of another kind."""


class InvalidArgument(Error, ValueError):
    """A name, size, offset, range or token that does not fit."""


class Busy(Error):
    """A role only one process may hold is held by a live process."""


class NoSpace(Error, MemoryError):
    """The system cannot give the memory (or disk) asked for."""


class Unsupported(Error, NotImplementedError):
    """Not available on this platform or with these settings."""


class Truncated(Error):
    """Another process shrank the object under this view."""
