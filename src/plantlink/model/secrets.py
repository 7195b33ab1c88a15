"""Secret references in the plant model: ``${env:NAME}`` and ``${file:/path/to/secret}``.

Any string value of the plant YAML may be, as its whole value, a reference resolved at load time (before
validation): ``${env:NAME}`` is the environment variable ``NAME``; ``${file:PATH}`` is the content of the
file ``PATH`` (one trailing newline removed; a relative path is relative to the plant file's directory).
A resolved value is a ``SecretValue``: a ``str`` whose ``repr`` is ``'**********'``, so that a validation
message quoting the input (``got '**********'``) cannot disclose it. Fields meant for secrets (passwords)
are pydantic ``SecretStr`` in the config models, which keep them masked in reprs and JSON dumps after.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plantlink.errors import ConfigProblem
from plantlink.model.yamlcompose import Loc
from plantlink.model.yamlmarks import MarkedYaml

MASK = "**********"
_REF = re.compile(r"^\$\{(env|file):([^}]*)\}$")
_EMBEDDED = re.compile(r"\$\{(env|file):")


class SecretValue(str):
    """A string resolved from a secret reference: equal to its text, but shown as ``'**********'``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)


def resolve_secrets(doc: MarkedYaml, path_of: Callable[[Any, Loc], str] | None = None) -> list[ConfigProblem]:
    """Replace every secret reference in ``doc.data`` (in place) by its value; return the problems found.

    A reference that cannot be resolved is left as written and reported at its line and column (naming
    the variable or the file, never a value). ``path_of(data, loc)`` names the place (the loader's
    ``human_path``); by default the keys joined with dots.
    """
    base = Path(doc.file).resolve().parent if Path(doc.file).is_file() else Path.cwd()
    problems: list[ConfigProblem] = []

    def visit(node: Any, loc: Loc) -> Any:
        if isinstance(node, dict):
            for key, value in node.items():
                node[key] = visit(value, (*loc, key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                node[i] = visit(value, (*loc, i))
        elif isinstance(node, str) and "${" in node:
            value, message = _resolve(node, base)
            if message is not None:
                where = path_of(doc.data, loc) if path_of is not None else ".".join(str(p) for p in loc)
                problems.append(doc.problem(loc, message, where))
            return value
        return node

    visit(doc.data, ())
    return problems


def _resolve(text: str, base: Path) -> tuple[str, str | None]:
    """The value of a reference (or ``text`` unchanged) and the problem, if any."""
    m = _REF.match(text)
    if m is None:
        if _EMBEDDED.search(text):
            return text, ("a secret reference must be the whole value: write the value as \"${env:NAME}\" or "
                          "\"${file:/path/to/secret}\" alone, not inside a longer string")
        return text, None
    kind, name = m.group(1), m.group(2).strip()
    if not name:
        return text, f"${{{kind}:...}} needs a {'variable name' if kind == 'env' else 'file path'}"
    if kind == "env":
        value = os.environ.get(name)
        if value is None:
            return text, f"environment variable {name} is not set (referenced as ${{env:{name}}})"
        return SecretValue(value), None
    path = Path(name).expanduser()
    path = path if path.is_absolute() else base / path
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return text, f"secret file not found: {path} (referenced as ${{file:{name}}})"
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        return text, f"cannot read the secret file {path}: {reason}"
    return SecretValue(content.removesuffix("\n").removesuffix("\r")), None
