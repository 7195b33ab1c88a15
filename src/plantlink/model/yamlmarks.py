"""Load YAML keeping where every value stands, so that errors can name file, line and column."""

from __future__ import annotations

from typing import Any

import yaml

from plantlink.errors import ConfigProblem

Loc = tuple[str | int, ...]


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


def load_marked(text: str, file: str) -> MarkedYaml:
    """Parse ``text``; a syntax error or a duplicate key becomes a problem with its position."""
    marks: dict[Loc, tuple[int, int]] = {}
    key_marks: dict[Loc, tuple[int, int]] = {}
    problems: list[ConfigProblem] = []
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        m = exc.problem_mark
        line, col = (m.line + 1, m.column + 1) if m is not None else (None, None)
        msg = f"YAML syntax error: {exc.problem}" + (f" ({exc.context})" if exc.context else "")
        return MarkedYaml(file, None, marks, [ConfigProblem(file, line, col, "", msg)])
    if node is None:
        return MarkedYaml(file, None, marks, [ConfigProblem(file, 1, 1, "", "the file is empty")])
    constructor = yaml.SafeLoader("")

    def build(n: yaml.Node, loc: Loc) -> Any:
        marks[loc] = (n.start_mark.line + 1, n.start_mark.column + 1)
        if isinstance(n, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for k, v in n.value:
                key = constructor.construct_object(k, deep=True)  # type: ignore[no-untyped-call]
                if key in out:
                    problems.append(
                        ConfigProblem(file, k.start_mark.line + 1, k.start_mark.column + 1, "",
                                      f"duplicate key {key!r} (each key may appear once in a mapping)")
                    )
                out[key] = build(v, (*loc, key))
                key_marks[(*loc, key)] = (k.start_mark.line + 1, k.start_mark.column + 1)
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(v, (*loc, i)) for i, v in enumerate(n.value)]
        return constructor.construct_object(n, deep=True)  # type: ignore[no-untyped-call]

    data = build(node, ())
    return MarkedYaml(file, data, marks, problems, key_marks)
