"""Errors raised while encoding or decoding wire data and user data."""

import pickle

from .._public import publish


class ProtocolError(Exception):
    """A peer sent something that is not a valid trident message.

    Raised by the decoders for unknown tags, wrong field types, wrong field counts,
    truncated or oversized frames. The receiving actor closes that one connection and
    logs the message of this exception as the reason.
    """


class SerializationError(pickle.PicklingError, TypeError):
    """A value could not be pickled to travel to or from the cluster.

    Raised by `Client.submit` and `Client.map` for unpicklable functions or arguments,
    by coordination primitives and datasets for unpicklable values, and reported as a
    task's error when its result cannot be pickled. Also a `TypeError` and a
    `pickle.PicklingError`, so existing handlers of either keep working.

    Attributes:
        what: what was being pickled (``"the arguments of task 'f-…'"``).
        path: where inside it the culprit sits (``"args[1]['conn']"``).
        type_name: the type that cannot be pickled (``"_thread.lock"``).
        reason: the pickler's own message.
    """

    def __init__(self, what: str, path: str, type_name: str, reason: str):
        self.what = what
        self.path = path
        self.type_name = type_name
        self.reason = reason
        super().__init__(f"cannot pickle {what}: {path} -> {type_name} ({reason})")

    def __reduce__(self) -> tuple:
        return (SerializationError, (self.what, self.path, self.type_name, self.reason))


publish(globals())
