"""Plant-model check benchmark: how long loading takes for valid models by size, and for the worst files
that are refused (at the limits), in CPU seconds of this process (connector plugins imported beforehand).

Figures (one JSON line each):
- model_check_valid_<n>_tags: a valid model of n Modbus tags (flow style, 100 tags a machine).
- model_check_refused_<case>: a file refused at a limit or by its content: over the size limit (40 MB),
  billion laughs, nesting 1,000,000 deep, a million-value list (the value limit reached without aliases),
  a UTF-16 file.
- model_check_cli_process: CPU seconds (user + system) of a whole ``plantlink check`` process refusing a
  file, start-up included, and its wall time.
Run: .venv/bin/python bench/model_check.py [--tags 1000 10000 20000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from plantlink.errors import ConfigError
from plantlink.model import load_plant
from plantlink.model.yamlcompose import MAX_VALUES

HEAD = """enterprise: Acme
devices:
  plc1: {protocol: modbus, host: 127.0.0.1, port: 5020}
  ua1: {protocol: opcua, endpoint: "opc.tcp://127.0.0.1:4840/"}
sites:
  - name: windsor
    timezone: America/Toronto
    areas:
      - name: a
        lines:
          - name: l
            machines:
"""


def valid_model(tags: int) -> str:
    out = [HEAD]
    for m in range(-(-tags // 100)):
        out.append(f"              - name: m{m}\n                tags:\n")
        for t in range(min(100, tags - 100 * m)):
            out.append(f"                  - {{name: t{t}, unit: degC, description: a tag, "
                       f"source: {{device: plc1, address: {2 * t}, type: float32}}}}\n")
    out.append("  - {name: detroit, timezone: America/Detroit}\n")  # a use of the OPC UA device is not needed
    return "".join(out)


def laughs() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
    return "\n".join(lines) + "\n"


def emit(name: str, value: float, unit: str, **extra: object) -> None:
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit, **extra}), flush=True)


def measure(path: Path) -> tuple[float, str]:
    start = time.process_time()
    try:
        load_plant(path)
        outcome = "ok"
    except ConfigError as exc:
        outcome = str(exc.problems[0])[len(str(path)):][:90]
    return time.process_time() - start, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, nargs="*", default=[1_000, 10_000, 20_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plant.yaml"
        path.write_text(valid_model(10), encoding="utf-8")
        load_plant(path)  # import the connector plugins once
        for n in args.tags:
            path.write_text(valid_model(n), encoding="utf-8")
            spent, outcome = measure(path)
            emit(f"model_check_valid_{n}_tags", spent, "s", bytes=path.stat().st_size, outcome=outcome)
        cases: dict[str, Callable[[Path], None]] = {
            "over_size_limit_40MB": lambda p: p.write_bytes(b"# " + b"x" * 97 + b"\n" * 1 + b"#" * 40_000_000),
            "billion_laughs": lambda p: p.write_text(laughs()),
            "nesting_1M_deep": lambda p: p.write_text("a: " + "[" * 1_000_000 + "]" * 1_000_000),
            "value_limit_list": lambda p: p.write_bytes(b"- 1\n" * (MAX_VALUES + 1)),
            "utf16": lambda p: p.write_bytes(valid_model(1000).encode("utf-16")),
        }
        for name, make in cases.items():
            make(path)
            spent, outcome = measure(path)
            emit(f"model_check_refused_{name}", spent, "s", bytes=path.stat().st_size, outcome=outcome)
        cli_process(path)


def cli_process(path: Path) -> None:
    """``plantlink check`` as a person runs it, on the last file (refused)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "plantlink.cli", "check", str(path)], capture_output=True,
                         text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    emit("model_check_cli_process", cpu, "s", wall_s=round(wall, 3), exit=res.returncode)


if __name__ == "__main__":
    main()
