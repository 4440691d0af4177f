"""Errors of the scheduler's state machine."""


class InvalidMessage(Exception):
    """A peer sent a well-formed message that its role may not send."""
