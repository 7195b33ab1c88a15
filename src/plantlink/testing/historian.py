"""``HistorianContract``: what every ``plantlink.historians`` backend must do (``plantlink.historian.base``).

Subclass it in a test module, name the subclass ``Test...`` and implement ``make_historian``::

    class TestMyHistorian(HistorianContract):
        def make_historian(self, location, retention=None):
            h = MyHistorian(location / "store", retention=retention)
            h.open()
            return h

The suite writes through the interface only: raw ranges (half-open, ordered, limited), the latest value
(the last to arrive, across flushes and a reopen), persistence of every sample accepted before ``close``,
stable tag ids, text tags, downsampling that keeps the extremes, retention, the write-ahead-log position
(``durable_seq``), errors that name the bad field, bad samples refused or flagged one by one (never the
batch), a (tag, time) written again keeping the last, and aggregates: by hand and against an independent
reference on random series (``plantlink.testing.reference``), time-weighted average included, and a late
backfill (an hour after an outage, a clock that jumped back) against numpy computing from the raw samples.
A backend that lacks an aggregate narrows ``aggregates``; one without text tags sets ``text_tags = False``.
"""

from __future__ import annotations

from plantlink.testing._historian_aggregate import AggregateContract
from plantlink.testing._historian_bad import BadInputContract
from plantlink.testing._historian_base import DAY, T0, TAGS, M, S
from plantlink.testing._historian_late import LateDataContract
from plantlink.testing._historian_store import StorageContract


class HistorianContract(StorageContract, AggregateContract, BadInputContract, LateDataContract):
    """The historian suite: storage, aggregates, bad input and late data. Override ``make_historian``."""


__all__ = ["DAY", "T0", "TAGS", "HistorianContract", "M", "S"]
