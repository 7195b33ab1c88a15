"""Values as people read them: display names, unit symbols, codes as words, numbers rounded sensibly.

The HMI, notifications and reports format through here, so a value reads the same everywhere. The plant
model gives each tag an optional ``display_name``, ``decimals`` (float tags) and ``value_texts`` (the words
for the codes of an int or bool tag); units written in ASCII (``degC``) are shown as their symbols (``°C``).
"""

from __future__ import annotations

from collections.abc import Mapping

#: ASCII spellings of units (as PLC programmers and CSV headers write them) -> the symbol people read.
UNIT_SYMBOLS: Mapping[str, str] = {
    "degC": "°C", "deg C": "°C", "celsius": "°C",
    "degF": "°F", "deg F": "°F", "fahrenheit": "°F",
    "deg": "°", "degree": "°", "degrees": "°",
    "percent": "%", "pct": "%",
    "um": "µm", "micron": "µm", "uS": "µS", "us": "µs",
    "m2": "m²", "m^2": "m²", "m3": "m³", "m^3": "m³", "m3/h": "m³/h", "m^3/h": "m³/h",
    "mm2": "mm²", "mm^2": "mm²", "Nm": "N·m", "ohm": "Ω", "kohm": "kΩ",
}


def unit_symbol(unit: str) -> str:
    """``degC`` -> ``°C``; a unit with no known ASCII spelling is shown as written."""
    return UNIT_SYMBOLS.get(unit.strip(), unit.strip())


def number_text(value: float, decimals: int | None = None) -> str:
    """A float with thousands separators: ``decimals`` places when given, else by magnitude (1 place from
    100, 2 from 1, 3 significant digits below 1)."""
    if decimals is not None:
        return f"{value:,.{decimals}f}"
    mag = abs(value)
    return f"{value:,.1f}" if mag >= 100 else f"{value:,.2f}" if mag >= 1 else f"{value:.3g}"


def value_text(value: float | str | bool | None, unit: str = "", type_: str = "float",
               reason: str | None = None, *, decimals: int | None = None,
               texts: Mapping[int, str] | None = None) -> str:
    """A value as shown to people; no value is a dash, with why when known (``— (+inf)``). A code with a
    word (``texts``) is the word; an unknown code says so (``code 7``)."""
    if value is None:
        return f"— ({reason})" if reason else "—"
    if isinstance(value, str):
        return value
    symbol = unit_symbol(unit)
    with_unit = (lambda text: f"{text} {symbol}") if symbol else (lambda text: text)
    if type_ in ("int", "bool") and texts:
        code = int(value)
        return texts.get(code, f"code {code}")
    if type_ == "bool":
        return "ON" if value else "OFF"
    if type_ == "int":
        return with_unit(f"{value:,.0f}")
    return with_unit(number_text(float(value), decimals))


#: Alarm states (ISA-18.2) as people read them: the HMI, the API's texts and notifications.
ALARM_STATE_TEXT: Mapping[str, str] = {
    "normal": "Normal", "unack_active": "Active, unacknowledged", "ack_active": "Active, acknowledged",
    "rtn_unack": "Cleared, unacknowledged", "latched": "Latched (reset needed)", "shelved": "Shelved",
    "suppressed": "Suppressed", "out_of_service": "Out of service",
}


def alarm_state_text(state: str) -> str:
    return ALARM_STATE_TEXT.get(state, state.replace("_", " "))
