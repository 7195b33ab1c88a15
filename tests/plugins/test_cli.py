"""``plantlink plugins`` lists every kind's plugins, loaded through the registry."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.plugins.test_registry import BUILT_INS


def test_plugins_lists_each_group_and_loads_each_plugin() -> None:
    proc = subprocess.run([sys.executable, "-m", "plantlink.cli", "plugins", "--json"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert {g: sorted(names) for g, names in found.items()} == BUILT_INS
    assert all(problem is None for names in found.values() for problem in names.values())
    table = subprocess.run([sys.executable, "-m", "plantlink.cli", "plugins"], capture_output=True, text=True,
                           timeout=120)
    assert table.returncode == 0 and "plantlink.notifiers" in table.stdout and "inproc" in table.stdout
