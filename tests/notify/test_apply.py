"""A ``notifications:`` section added by ``plantlink apply`` starts the notifier in the running plant (the next
alarm is e-mailed through a real SMTP server); one removed stops it (the next alarm is not). No restart."""

from __future__ import annotations

from pathlib import Path

from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.model.plan_text import render
from plantlink.runtime import Runtime
from plantlink.samples import Quality, now_us, numeric_batch
from plantlink.services import services_of
from tests.api.test_oee_downtime import M1
from tests.conftest import _free_port
from tests.reports.cases import REPORT_PLANT
from tests.servers import SmtpInbox
from tests.waiting import wait_for

ERIN = Principal("erin", {"*": "engineer"})


def notifications(port: int) -> str:
    return (f"notifications:\n  smtp: {{host: 127.0.0.1, port: {port}, sender: plantlink@test.local, timeout: 5}}\n"
            "  targets:\n    maint: {email: [maint@test.local]}\n"
            "  routes:\n    - {targets: [maint]}\n")


async def test_a_notifications_section_added_then_removed_by_apply(tmp_path: Path) -> None:
    inbox = SmtpInbox(_free_port()).start()
    rt = Runtime(parse_plant(REPORT_PLANT, "plant.yaml"), tmp_path / "data", flush_interval=0.1)
    await rt.start()
    try:
        assert rt.notifier is None and rt.alarms is not None and rt.alarm_engine is not None
        model = services_of(rt).model
        added = REPORT_PLANT + notifications(inbox.port)
        text = render(model.plan(ERIN, added).to_dict())
        assert "the notifier takes it at once" in text and "next restart" not in text
        assert (await model.apply(ERIN, added)).applied
        notifier = rt.notifier
        assert notifier is not None and rt.alarms.notifier is notifier
        temp = rt.tag_ids[f"{M1}/temp"]
        rt.ingest(numeric_batch([temp], now_us(), [25.0], Quality.GOOD))  # above the hi alarm's 21.8
        msg = await wait_for(lambda: inbox.messages[:1], 30, "the alarm e-mailed")
        assert "temp" in str(msg[0]["Subject"]) and msg[0]["To"] == "maint@test.local"
        rt.ingest(numeric_batch([temp], now_us(), [20.0], Quality.GOOD))  # back to normal
        key = f"{M1}/temp:hi"
        await wait_for(lambda: not rt.alarm_engine.condition(key), 30, "the alarm cleared")  # type: ignore[union-attr]

        assert (await model.apply(ERIN, REPORT_PLANT)).applied  # the section removed
        assert rt.notifier is None and rt.alarms.notifier is None
        assert notifier.on_event not in rt.alarm_engine.listeners
        sent = len(inbox.messages)
        rt.ingest(numeric_batch([temp], now_us(), [26.0], Quality.GOOD))  # an alarm again: nobody is told
        await wait_for(lambda: rt.alarm_engine.condition(key), 30, "the alarm raised again")  # type: ignore[union-attr]
        assert len(inbox.messages) == sent
    finally:
        await rt.stop()
        inbox.stop()
