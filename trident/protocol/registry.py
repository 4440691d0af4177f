"""Typed wire messages: the `message` decorator, the tag registry and the codecs.

A message class is a frozen, slotted attrs class with a short tag. On the wire it is the
msgpack array ``[tag, field1, field2, ...]``. For every class this module compiles two
plain functions from the field annotations: an encoder (``msg -> list``) and a decoder
(``list -> msg``) that checks the field count and every field's type. Decoding never
trusts the peer: anything off raises `ProtocolError`.

Supported field types: ``str``, ``int``, ``float``, ``bool``, ``bytes``, ``Serialized``,
``Any`` (any msgpack value, unchecked), another message class (nested), ``list[T]``,
``dict[str, T]`` and ``T | None``.

Decoders take msgpack arrays as tuples or lists. The wire decodes arrays as tuples (see
`trident.protocol.wire`), and the decoders hand out lists as the annotations say:
``list[T]`` fields become lists, and arrays anywhere inside an ``Any`` value become lists
again, so a message decodes to the same value either way.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import attrs

from .errors import InvalidRequest, ProtocolError
from .serialize import Serialized

T = TypeVar("T")

#: tag -> message class
MESSAGE_TYPES: dict[str, type] = {}

# Per class, attached by `message`: the compiled encoder and decoder.
_ENCODE_ATTR = "_trident_encode"
_DECODE_ATTR = "_trident_decode"

Checker = Callable[[Any], Any]  # validates (and possibly converts) one decoded value


@typing.dataclass_transform(frozen_default=True, field_specifiers=(attrs.field,))
def message(tag: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: make `cls` a frozen slotted attrs message registered under `tag`."""

    def decorate(cls: type[T]) -> type[T]:
        if tag in MESSAGE_TYPES:
            raise ValueError(f"message tag {tag!r} is used by {MESSAGE_TYPES[tag].__name__}")
        # attrs compiles __init__ per class; repr, == and hash are shared below instead
        # of compiled for each of the hundred-odd classes (about 17 ms of every process's
        # start-up, which a worker process spends before it can register).
        own = set(vars(cls))
        made: Any = attrs.frozen(cls, repr=False, eq=False)
        made._fields = tuple(field.name for field in attrs.fields(made))
        for name, shared in _SHARED_METHODS.items():
            if name not in own:
                setattr(made, name, shared)
        made.tag = tag
        cls = made
        MESSAGE_TYPES[tag] = cls
        _install_lazy_codecs(cls, tag)
        return cls

    return decorate


def _message_repr(self: Any) -> str:
    fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
    return f"{type(self).__name__}({fields})"


def _message_eq(self: Any, other: Any) -> bool:
    if type(other) is not type(self):
        return NotImplemented
    return all(getattr(self, name) == getattr(other, name) for name in self._fields)


def _message_hash(self: Any) -> int:
    return hash((type(self), *(getattr(self, name) for name in self._fields)))


_SHARED_METHODS = {"__repr__": _message_repr, "__eq__": _message_eq, "__hash__": _message_hash}


def encode(msg: Any) -> list:
    """Turn a message into its msgpack-ready list form (payloads stay `Serialized`)."""
    return getattr(msg, _ENCODE_ATTR)(msg)


def decode(item: Any) -> Any:
    """Turn a decoded msgpack array (a tuple or a list) back into a message; raises
    `ProtocolError` if invalid."""
    if type(item) not in _ARRAYS or not item:
        raise ProtocolError(f"a message must be a non-empty array, got {type(item).__name__}")
    tag = item[0]
    cls = MESSAGE_TYPES.get(tag) if type(tag) is str else None
    if cls is None:
        raise ProtocolError(f"unknown message tag {tag!r}")
    try:
        return getattr(cls, _DECODE_ATTR)(item)
    except ProtocolError as exc:
        # A request can be answered with the error; anything else ends the connection.
        if (
            len(item) > 1
            and type(item[1]) is int
            and getattr(cls, "_fields", ())[:1] == ("request_id",)
        ):
            raise InvalidRequest(str(exc), item[1]) from None
        raise


#: The types a decoded msgpack array may have.
_ARRAYS = (tuple, list)


def thaw(value: Any) -> Any:
    """`value` with every tuple in it, however deep, turned into a list.

    Dicts are updated in place (they are fresh from the decoder); a value that holds no
    tuple is returned as it is.
    """
    kind = type(value)
    if kind is tuple:
        return [thaw(x) if type(x) in _NESTED else x for x in value]
    if kind is dict:
        for k, x in value.items():
            if type(x) in _NESTED:
                value[k] = thaw(x)
    elif kind is list:
        for i, x in enumerate(value):
            if type(x) in _NESTED:
                value[i] = thaw(x)
    return value


_NESTED = (tuple, dict, list)


# --- compilation ---------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or repr(tp)


def _checker(tp: Any, where: str) -> Checker:
    """The function that validates (and where needed converts) a decoded value of `tp`."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return thaw
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        non_none = [o for o in options if o is not type(None)]
        if len(non_none) != 1 or len(options) != 2:
            raise TypeError(f"{where}: only 'T | None' unions are supported, got {tp!r}")
        inner = _checker(non_none[0], where)

        def check_optional(v: Any) -> Any:
            return None if v is None else inner(v)

        return check_optional
    if tp in (str, bytes, bool):

        def check_exact(v: Any, tp: type = tp) -> Any:
            if type(v) is not tp:
                raise ProtocolError(f"{where}: expected {tp.__name__}, got {type(v).__name__}")
            return v

        return check_exact
    if tp is int:

        def check_int(v: Any) -> Any:
            if type(v) is not int:
                raise ProtocolError(f"{where}: expected int, got {type(v).__name__}")
            return v

        return check_int
    if tp is float:

        def check_float(v: Any) -> Any:
            t = type(v)
            if t is float:
                return v
            if t is int:
                return float(v)
            raise ProtocolError(f"{where}: expected float, got {t.__name__}")

        return check_float
    if tp is Serialized:

        def check_payload(v: Any) -> Any:
            if type(v) is not Serialized:
                raise ProtocolError(
                    f"{where}: expected a serialized payload, got {type(v).__name__}"
                )
            return v

        return check_payload
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        item_check = _checker(item_tp, f"{where}[]")

        def check_list(v: Any) -> Any:
            if type(v) not in _ARRAYS:
                raise ProtocolError(f"{where}: expected array, got {type(v).__name__}")
            return [item_check(x) for x in v]

        return check_list
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        if key_tp is not str:
            raise TypeError(f"{where}: dict keys must be str")
        value_check = _checker(value_tp, f"{where}{{}}")

        def check_dict(v: Any) -> Any:
            if type(v) is not dict:
                raise ProtocolError(f"{where}: expected map, got {type(v).__name__}")
            for k in v:
                if type(k) is not str:
                    raise ProtocolError(f"{where}: map keys must be strings")
            return {k: value_check(x) for k, x in v.items()}

        return check_dict
    if isinstance(tp, type) and hasattr(tp, _DECODE_ATTR):
        _ensure_compiled(tp)
        nested_decode = getattr(tp, _DECODE_ATTR)

        def check_nested(v: Any) -> Any:
            if type(v) not in _ARRAYS:
                raise ProtocolError(f"{where}: expected {tp.__name__} array")
            return nested_decode(v)

        return check_nested
    raise TypeError(f"{where}: unsupported field type {_type_name(tp)}")


def _nested_encoder(tp: Any) -> Callable[[Any], Any] | None:
    """An encoder for fields holding nested messages (or lists/optionals of them)."""
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and hasattr(tp, _ENCODE_ATTR):
        _ensure_compiled(tp)
        encoder: Callable[[Any], Any] = getattr(tp, _ENCODE_ATTR)
        return encoder
    if origin in (typing.Union, types.UnionType):
        (inner,) = [o for o in typing.get_args(tp) if o is not type(None)]
        inner_encoder = _nested_encoder(inner)
        if inner_encoder is None:
            return None
        return partial(_encode_optional, inner_encoder)
    if origin is list:
        item_encoder = _nested_encoder(typing.get_args(tp)[0])
        if item_encoder is None:
            return None
        return partial(_encode_list, item_encoder)
    if origin is dict:
        value_encoder = _nested_encoder(typing.get_args(tp)[1])
        if value_encoder is None:
            return None
        return partial(_encode_dict, value_encoder)
    return None


def _encode_optional(encoder: Callable[[Any], Any], value: Any) -> Any:
    return None if value is None else encoder(value)


def _encode_list(encoder: Callable[[Any], Any], value: list[Any]) -> list[Any]:
    return [encoder(x) for x in value]


def _encode_dict(encoder: Callable[[Any], Any], value: dict[str, Any]) -> dict[str, Any]:
    return {k: encoder(x) for k, x in value.items()}


def _simple_type(tp: Any) -> tuple[type, bool] | None:
    """(type, optional) for fields checked inline by an exact type test, else None."""
    exact = (str, bytes, bool, int, Serialized)
    if tp in exact:
        return tp, False
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        non_none = [o for o in options if o is not type(None)]
        if len(options) == 2 and len(non_none) == 1 and non_none[0] in exact:
            return non_none[0], True
    return None


def _install_lazy_codecs(cls: type, tag: str) -> None:
    """Give `cls` codecs that compile the real ones on first use.

    A process uses a fraction of the message types; compiling all of them at import
    would cost every worker process tens of milliseconds of start-up.
    """

    def encode_first(msg: Any) -> list:
        _ensure_compiled(cls)
        return getattr(cls, _ENCODE_ATTR)(msg)

    def decode_first(item: Any) -> Any:
        _ensure_compiled(cls)
        return getattr(cls, _DECODE_ATTR)(item)

    cls._trident_lazy = True  # type: ignore[attr-defined]
    setattr(cls, _ENCODE_ATTR, staticmethod(encode_first))
    setattr(cls, _DECODE_ATTR, staticmethod(decode_first))


def _ensure_compiled(cls: type) -> None:
    if cls.__dict__.get("_trident_lazy"):
        cls._trident_lazy = False  # type: ignore[attr-defined]
        _compile(cls, cls.tag)  # type: ignore[attr-defined]


def _compile(cls: type, tag: str) -> None:
    hints = typing.get_type_hints(cls, include_extras=False)
    fields = [f for f in attrs.fields(cls) if f.name != "tag"]
    names = [f.name for f in fields]
    checks: dict[str, Checker] = {}
    nested: dict[str, Callable[[Any], Any]] = {}
    for name in names:
        checks[name] = _checker(hints[name], f"{tag}.{name}")
        enc = _nested_encoder(hints[name])
        if enc is not None:
            nested[name] = enc

    # Generated code keeps the per-message cost to one function call and no loops.
    namespace: dict[str, Any] = {"cls": cls, "ProtocolError": ProtocolError}
    enc_parts = []
    for name in names:
        if name in nested:
            namespace[f"enc_{name}"] = nested[name]
            enc_parts.append(f"enc_{name}(m.{name})")
        else:
            enc_parts.append(f"m.{name}")
    enc_src = f"def encode(m):\n    return [{tag!r}, {', '.join(enc_parts)}]\n"

    count = len(names) + 1
    dec_lines = [
        "def decode(v):",
        f"    if len(v) != {count}:",
        f"        raise ProtocolError('{tag}: expected {count - 1} fields, got %d' % (len(v) - 1))",
        f"    _, {', '.join(names)}{',' if len(names) == 1 else ''} = v" if names else "    pass",
    ]
    for name in names:
        simple = _simple_type(hints[name])
        if simple is not None:
            tp, optional = simple
            namespace[f"T_{name}"] = tp
            cond = f"type({name}) is not T_{name}"
            if optional:
                cond = f"{name} is not None and {cond}"
            expected = tp.__name__ + (" or nil" if optional else "")
            dec_lines.append(f"    if {cond}:")
            dec_lines.append(
                f"        raise ProtocolError('{tag}.{name}: expected {expected}, got '"
                f" + type({name}).__name__)"
            )
        elif name in checks:
            namespace[f"check_{name}"] = checks[name]
            dec_lines.append(f"    {name} = check_{name}({name})")
    dec_lines.append(f"    return cls({', '.join(names)})")
    exec(enc_src, namespace)
    exec("\n".join(dec_lines) + "\n", namespace)
    setattr(cls, _ENCODE_ATTR, staticmethod(namespace["encode"]))
    setattr(cls, _DECODE_ATTR, staticmethod(namespace["decode"]))
