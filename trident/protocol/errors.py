"""Errors raised while encoding or decoding wire data."""


class ProtocolError(Exception):
    """A peer sent something that is not a valid trident message.

    Raised by the decoders for unknown tags, wrong field types, wrong field counts,
    truncated or oversized frames. The receiving actor closes that one connection and
    logs the message of this exception as the reason.
    """
