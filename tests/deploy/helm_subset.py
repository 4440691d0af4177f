"""Render deploy/helm/trident the way ``helm template`` does, for the subset it uses.

`helm` is not installable from a package registry on the machines CI runs on, so the
tests render the chart with this small interpreter of Go templates instead. The chart is
kept to a subset that is easy to interpret exactly, and anything outside it raises
`UnsupportedTemplate`, so the chart cannot silently grow past what is tested:

- actions ``{{ ... }}`` with Helm's whitespace trimming (``{{-`` eats the whitespace
  before the action, newlines included; ``-}}`` the whitespace after it);
- values: ``.Values.a.b``, ``.Release.Name``, ``.Release.Namespace``, ``.Chart.Name``,
  ``.Chart.Version``, ``.Chart.AppVersion``, and double-quoted strings; a missing value
  raises `KeyError` (helm would print ``<no value>``: a typo here is a failure);
- functions ``required "message" X`` (raises `RequiredValueMissing` on an empty value),
  ``not X`` (in conditions), and after a pipe ``| quote``, ``| toYaml``,
  ``| nindent N``;
- ``{{ if X }} ... {{ else }} ... {{ end }}`` with Go's truthiness (empty string, zero,
  empty list or map, false and nil are false).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)


class UnsupportedTemplate(ValueError):
    """The template uses a construct outside the subset this module interprets."""


class RequiredValueMissing(ValueError):
    """A ``required`` value is empty (``helm`` fails the same way)."""


def _split(template: str) -> list[tuple[str, str]]:
    """The template as ("text", s) and ("action", expression) parts, trimmed as Helm does."""
    parts: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    for match in ACTION.finditer(template):
        text = template[pos : match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        parts.append(("text", text))
        parts.append(("action", match.group(2)))
        trim_next = bool(match.group(3))
        pos = match.end()
    tail = template[pos:]
    parts.append(("text", tail.lstrip() if trim_next else tail))
    return parts


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", [], {})


def _to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n")


class _Context:
    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    def lookup(self, path: str) -> Any:
        node: Any = self.scope
        for name in path.lstrip(".").split("."):
            if not isinstance(node, dict) or name not in node:
                raise KeyError(f"no value at {path}")
            node = node[name]
        return node

    def operand(self, word: str) -> Any:
        if word.startswith('"'):
            return shlex.split(word)[0]
        if word.startswith("."):
            return self.lookup(word)
        if re.fullmatch(r"-?\d+", word):
            return int(word)
        raise UnsupportedTemplate(f"operand {word!r}")

    def command(self, words: list[str], piped: list[Any]) -> Any:
        name, args = words[0], [self.operand(w) for w in words[1:]] + piped
        if name.startswith(".") or name.startswith('"'):
            if len(words) != 1 or piped:
                raise UnsupportedTemplate(" ".join(words))
            return self.operand(name)
        if name == "required" and len(args) == 2:
            if not _truthy(args[1]):
                raise RequiredValueMissing(args[0])
            return args[1]
        if name == "not" and len(args) == 1:
            return not _truthy(args[0])
        if name == "quote" and len(args) == 1:
            return '"' + str(args[0]).replace("\\", "\\\\").replace('"', '\\"') + '"'
        if name == "toYaml" and len(args) == 1:
            return _to_yaml(args[0])
        if name == "nindent" and len(args) == 2:
            pad = " " * args[0]
            return "\n" + "\n".join(pad + line if line else line for line in args[1].split("\n"))
        raise UnsupportedTemplate(" ".join(words))

    def evaluate(self, expression: str) -> Any:
        piped: list[Any] = []
        for stage in expression.split("|"):
            words = shlex.split(stage, posix=False)
            if not words:
                raise UnsupportedTemplate(expression)
            piped = [self.command(words, piped)]
        return piped[0]


def render(template: str, scope: dict[str, Any]) -> str:
    """`template` rendered with `scope` (``{"Values": ..., "Release": ..., "Chart": ...}``)."""
    context = _Context(scope)
    out: list[str] = []
    # One frame per open `if`: (branch taken, rendering now).
    stack: list[tuple[bool, bool]] = []
    emitting = True
    for kind, part in _split(template):
        if kind == "text":
            if emitting:
                out.append(part)
            continue
        keyword, _, rest = part.partition(" ")
        if keyword == "if":
            taken = emitting and _truthy(context.evaluate(rest))
            stack.append((taken, emitting))
            emitting = taken
        elif keyword == "else" and not rest:
            if not stack:
                raise UnsupportedTemplate("else without if")
            taken, outer = stack[-1]
            emitting = outer and not taken
        elif keyword == "end" and not rest:
            if not stack:
                raise UnsupportedTemplate("end without if")
            emitting = stack.pop()[1]
        elif part.startswith("/*"):
            continue
        elif emitting:
            value = context.evaluate(part)
            out.append("" if value is None else str(value))
    if stack:
        raise UnsupportedTemplate("if without end")
    return "".join(out)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def render_chart(
    chart: Path,
    values: dict[str, Any] | None = None,
    release: str = "trident",
    namespace: str = "default",
) -> dict[str, str]:
    """Every file of ``chart/templates`` rendered, by file name, as ``helm template
    RELEASE CHART --namespace NAMESPACE --set ...`` would with `values` over the chart's
    values.yaml."""
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    scope = {
        "Values": _merge(yaml.safe_load((chart / "values.yaml").read_text()), values or {}),
        "Release": {"Name": release, "Namespace": namespace, "Service": "Helm"},
        "Chart": {
            "Name": meta["name"],
            "Version": meta["version"],
            "AppVersion": meta["appVersion"],
        },
    }
    return {
        path.name: render(path.read_text(), scope)
        for path in sorted((chart / "templates").iterdir())
        if path.is_file()
    }
