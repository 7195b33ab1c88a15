"""The contract suites are honest: run (as a third party would, in pytest-asyncio's strict mode and without
this project's pytest settings) against plugins broken on purpose, the tests that check the broken promise
fail and the others pass."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BROKEN = '''
import pytest

from plantlink.bus import InProcBus
from plantlink.historian import open_historian
from plantlink.notify import EmailChannel
from plantlink.testing.bus import BusContract
from plantlink.testing.historian import HistorianContract
from plantlink.testing.notifier import NotifierContract
from tests.conftest import _free_port
from tests.servers import SmtpInbox


class TwaIsMean:
    """A historian that answers the plain mean where the time-weighted one is asked for."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def aggregate(self, tag_ids, start, end, interval, aggregates=("min", "max", "mean", "twa", "first", "last",
                                                                    "count")):
        asked = list(aggregates)
        t = self.inner.aggregate(tag_ids, start, end, interval, [*asked, "mean"] if "mean" not in asked else asked)
        if "twa" in asked:
            t = t.set_column(t.schema.get_field_index("twa"), "twa", t.column("mean"))
        return t.select(["tag_id", "bucket", *asked])


class TestTwaIsMean(HistorianContract):
    def make_historian(self, location, retention=None):
        return TwaIsMean(open_historian("duckdb", path=location / "h.duckdb", retention=retention))


class EveryOtherBus(InProcBus):
    """A bus that loses every other batch."""

    n = 0

    def publish(self, batch):
        self.n += 1
        if self.n % 2:
            super().publish(batch)


class TestEveryOtherBus(BusContract):
    def make_bus(self):
        return EveryOtherBus()


class Swallowing(EmailChannel):
    """An e-mail channel that hides its failures."""

    async def send(self, target, n):
        try:
            await super().send(target, n)
        except Exception:
            pass


class TestSwallowing(NotifierContract):
    kind = "email"

    @pytest.fixture(autouse=True)
    def _registered(self):
        from plantlink import plugins

        plugins.register(plugins.NOTIFIERS, "email", Swallowing)  # in this process only: it replaces the built-in

    @pytest.fixture
    def receiver(self):
        inbox = SmtpInbox(_free_port()).start()
        yield inbox
        inbox.stop()

    def port(self, receiver):
        return receiver.port

    def settings(self, port):
        return {"smtp": {"host": "127.0.0.1", "port": port, "sender": "p@test.local", "timeout": 5},
                "targets": {"t": {"email": ["ops@test.local"]}}}

    def received(self, receiver):
        return [m.as_string() for m in receiver.messages]
'''


def test_broken_plugins_fail_the_tests_of_what_they_break(tmp_path: Path) -> None:
    (tmp_path / "test_broken.py").write_text(BROKEN, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = strict\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PLANTLINK_TEST_TIMEOUT": "3"}  # what fails, fails fast
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-p", "no:xdist", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    failed = set(re.findall(r"^FAILED \S+::(Test\w+::test_\w+)", out, re.M))
    passed = set(re.findall(r"^PASSED \S+::(Test\w+::test_\w+)", out, re.M))
    assert proc.returncode == 1, out[-3000:]
    assert {"TestTwaIsMean::test_minute_buckets_by_hand", "TestTwaIsMean::test_sub_minute_and_unaligned_ranges_by_hand",
            "TestTwaIsMean::test_twa_without_carried_value_starts_at_first_sample",
            "TestTwaIsMean::test_bad_quality_only_bucket_is_absent_and_bad_value_not_carried",
            "TestEveryOtherBus::test_every_subscriber_gets_every_batch_in_order_unchanged",
            "TestEveryOtherBus::test_a_slow_subscriber_holds_up_no_one_and_loses_nothing",
            "TestSwallowing::test_a_receiver_that_is_down_is_an_error_not_swallowed",
            "TestSwallowing::test_the_notifier_counts_sent_and_failed_deliveries"} <= failed, out[-3000:]
    # what the broken plugins still do right passes: the suites single out the broken promise
    assert {"TestTwaIsMean::test_raw_is_half_open_ordered_and_limited", "TestTwaIsMean::test_text_tags",
            "TestEveryOtherBus::test_closing_the_bus_ends_every_subscription",
            "TestSwallowing::test_a_notification_arrives_once_with_its_facts"} <= passed, out[-3000:]
