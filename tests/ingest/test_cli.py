"""``plantlink ingest`` refuses settings under which a site's next owner could fetch before its redeliveries."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from plantlink.cli import app
from tests.ingest.rig import write_plant


def test_ack_wait_must_be_below_half_the_lease_ttl(tmp_path: Path) -> None:
    plant = write_plant(tmp_path)
    res = CliRunner().invoke(app, ["ingest", str(plant), "--data-dir", str(tmp_path / "d"), "--ack-wait", "20",
                                   "--lease-ttl", "30"])
    assert res.exit_code == 1
    assert "must be below half the lease ttl" in res.output
