"""Load YAML keeping where every value stands, so that errors can name file, line and column."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from plantlink.errors import ConfigError, ConfigProblem
from plantlink.model.textfile import check_text
from plantlink.model.yamlcompose import Loc, YamlStop, compose


class MarkedYaml:
    """A YAML document as plain Python data plus a map from each value's location to (line, column)."""

    def __init__(self, file: str, data: Any, marks: dict[Loc, tuple[int, int]], problems: list[ConfigProblem],
                 key_marks: dict[Loc, tuple[int, int]] | None = None):
        self.file = file
        self.data = data
        self.marks = marks
        self.key_marks = key_marks or {}
        self.problems = problems

    def mark(self, loc: Loc, at_key: bool = False) -> tuple[int | None, int | None]:
        """The line and column of the value at ``loc`` (or of its key), else of the nearest enclosing value."""
        loc = tuple(loc)
        if at_key and loc in self.key_marks:
            return self.key_marks[loc]
        while loc:
            if loc in self.marks:
                return self.marks[loc]
            loc = loc[:-1]
        return self.marks.get((), (None, None))

    def problem(self, loc: Loc, message: str, path: str = "", at_key: bool = False) -> ConfigProblem:
        line, col = self.mark(loc, at_key)
        return ConfigProblem(self.file, line, col, path, message)


def load_marked(text: str, file: str, path_of: Callable[[Any, Loc], str] | None = None) -> MarkedYaml:
    """Parse ``text`` with bounded work (see ``yamlcompose``); every problem becomes a located ConfigProblem.

    ``data`` is None when the document is empty or null, or when it could not be read whole (then
    ``problems`` says why). ``path_of(data, loc)`` names the place of a problem (the loader's ``human_path``).
    """
    try:
        composed = compose(check_text(text, file))
    except ConfigError as exc:
        return MarkedYaml(file, None, {}, exc.problems)
    except YamlStop as exc:
        line, col = exc.mark if exc.mark is not None else (None, None)
        return MarkedYaml(file, None, {}, [ConfigProblem(file, line, col, "", exc.message)])
    except yaml.MarkedYAMLError as exc:
        m = exc.problem_mark
        line, col = (m.line + 1, m.column + 1) if m is not None else (None, None)
        msg = f"YAML syntax error: {exc.problem}" + (f" ({exc.context})" if exc.context else "")
        return MarkedYaml(file, None, {}, [ConfigProblem(file, line, col, "", msg)])
    except yaml.YAMLError as exc:
        return MarkedYaml(file, None, {}, [ConfigProblem(file, None, None, "", f"YAML error: {exc}")])
    if composed.empty:
        return MarkedYaml(file, None, {}, [ConfigProblem(file, 1, 1, "", "the file is empty")])
    data = composed.data
    problems = [ConfigProblem(file, mark[0], mark[1], path_of(data, loc) if path_of is not None else "", message)
                for loc, mark, message in composed.problems]
    return MarkedYaml(file, None if composed.broken else data, composed.marks, problems, composed.key_marks)
