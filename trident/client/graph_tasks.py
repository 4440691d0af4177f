"""The functions that run graph tasks on workers (see `graphs`).

A task of a raw graph whose arguments hold nested tasks runs `evaluate` on a tree of
`Call`s; a task of a modern dask graph (a ``dask._task_spec`` node) runs `run_node`
with the values of its dependencies; a literal value runs `identity`. Dependencies
reach these functions already replaced by their values (they travel as futures).
"""

from __future__ import annotations

from typing import Any


class Call:
    """A nested task of a raw graph: ``function(*args)``, evaluated inside its parent."""

    __slots__ = ("args", "function")

    def __init__(self, function: Any, args: tuple):
        self.function = function
        self.args = args

    def __reduce__(self) -> tuple:
        return (Call, (self.function, self.args))

    def __repr__(self) -> str:
        return f"Call({self.function!r}, {self.args!r})"


def evaluate(value: Any) -> Any:
    """`value` with every `Call` in it (inside lists and tuples too) run, innermost first."""
    kind = type(value)
    if kind is Call:
        return value.function(*(evaluate(arg) for arg in value.args))
    if kind is list:
        return [evaluate(item) for item in value]
    if kind is tuple:
        return tuple(evaluate(item) for item in value)
    return value


def identity(value: Any) -> Any:
    """The task of a literal value in a graph."""
    return value


def run_node(node: Any, values: dict[Any, Any]) -> Any:
    """Run a dask graph node with the values of its dependencies, keyed as in the graph."""
    return node(values)
