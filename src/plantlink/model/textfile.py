"""Read a plant model file as text, refusing what is not plain UTF-8 YAML text before any parsing.

Every refusal is a ``ConfigError`` whose problem names the file, the line and column (or the limit) and
what to do: a file over ``MAX_FILE_BYTES``, a UTF-16 or UTF-32 file, bytes that are not UTF-8 (a Latin-1 or
Windows-1252 file), NUL bytes and the other control characters that YAML does not allow.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from plantlink.errors import ConfigError, ConfigProblem

#: The largest plant model file read (a plant of 20,000 tags takes 5 to 10 MB).
MAX_FILE_BYTES = 16 * 1024 * 1024

_BOMS = (  # longest first: the UTF-32 LE mark begins with the UTF-16 LE mark
    (codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"),
)
#: Characters YAML 1.1 does not allow in a stream (C0 and C1 controls but tab, LF, CR and NEL; surrogates;
#: U+FFFE and U+FFFF).
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _problem(file: str, message: str, line: int | None = None, column: int | None = None) -> ConfigError:
    return ConfigError([ConfigProblem(file, line, column, "", message)])


def _too_large(file: str, size: str) -> ConfigError:
    return _problem(file, f"the file is {size}: a plant model may be at most {MAX_FILE_BYTES // (1024 * 1024)} MiB "
                          f"({MAX_FILE_BYTES:,} bytes); split the plant or remove what is not plant model")


def read_model_file(path: Path) -> str:
    """The text of the plant model at ``path`` (at most ``MAX_FILE_BYTES`` read, whatever the file is)."""
    file = str(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _problem(file, f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise _too_large(file, f"larger than {MAX_FILE_BYTES:,} bytes")
    return decode_model(raw, file)


def decode_model(raw: bytes, file: str) -> str:
    """``raw`` as text: UTF-8 (an initial UTF-8 byte order mark is dropped), else a located ConfigError.
    ``parse_plant`` then refuses the characters YAML does not allow (``check_text``)."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            raise _problem(file, f"the file is {name}; save it as UTF-8", 1, 1)
    raw = raw.removeprefix(codecs.BOM_UTF8)
    if len(raw) >= 4 and ((raw[1] == 0 and raw[3] == 0) or (raw[0] == 0 and raw[2] == 0)):
        raise _problem(file, "the file looks like UTF-16 (every other byte is NUL); save it as UTF-8", 1, 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _problem(file, f"byte {exc.start} (0x{raw[exc.start]:02x}) is not UTF-8: save the file as UTF-8 "
                             "(it may be Latin-1 or Windows-1252 text, or not text at all)", line, column) from None
    return text  # its characters are checked with the YAML (check_text)


def check_text(text: str, file: str) -> str:
    """``text`` without an initial byte order mark, if it is within the size limit and holds only characters
    YAML allows; else a ConfigError at the first offending character."""
    if len(text) > MAX_FILE_BYTES:
        raise _too_large(file, f"{len(text):,} characters long")
    text = text.removeprefix("\ufeff")
    bad = _NOT_PRINTABLE.search(text)
    if bad is not None:
        pos = bad.start()
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        code = ord(bad.group())
        kind = "control character" if code < 0x20 or 0x7F <= code <= 0x9F else "character"
        what = "a NUL byte" if code == 0 else f"the {kind} U+{code:04X}"
        raise _problem(file, f"{what} is not allowed in a YAML file (is this a text file?)", line, column)
    return text
