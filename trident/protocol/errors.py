"""Errors raised while encoding or decoding wire data and user data."""

import pickle

from .._public import publish


class ProtocolError(Exception):
    """A peer sent something that is not a valid trident message.

    Raised by the decoders for unknown tags, wrong field types, wrong field counts,
    truncated or oversized frames. The receiving actor closes that one connection and
    logs the message of this exception as the reason.
    """


class InvalidRequest(ProtocolError):
    """A request whose tag is known but whose fields fail validation.

    The request still carries a usable `request_id`, so the receiver can answer that
    one request with an error instead of closing the connection (see `InvalidBatch`).
    """

    def __init__(self, reason: str, request_id: int):
        self.reason = reason
        self.request_id = request_id
        super().__init__(reason)


class InvalidBatch(ProtocolError):
    """A packet whose messages all decoded except some requests (`InvalidRequest`).

    Raised by `decode_batch` after decoding the rest: `messages` holds the valid
    messages in order, `rejected` the invalid requests. A receiver that answers requests
    handles the messages and answers each rejected request with an error; any other
    receiver treats it as the `ProtocolError` it is and closes the connection.
    """

    def __init__(self, messages: list, rejected: list[InvalidRequest]):
        self.messages = messages
        self.rejected = rejected
        super().__init__("; ".join(r.reason for r in rejected))


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
