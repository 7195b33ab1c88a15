"""The samples stream on NATS JetStream and what publishes into it.

Stream ``PLANTLINK_SAMPLES`` keeps every message on ``plantlink.samples.<site>.<edge>.batch`` (file storage,
limits retention). A message is one edge batch in the Arrow IPC format of :mod:`plantlink.edge.payload`. Two
ways in, one subject layout:

- a native NATS publisher (:func:`publish_batch`) sends with a ``Nats-Msg-Id`` of ``<site>.<edge>@<epoch>:<seq>``:
  JetStream drops a resend of the same batch within the stream's duplicate window (two minutes);
- an edge speaking MQTT to nats-server's MQTT port with ``root: plantlink/samples/<site>``: its topic
  ``plantlink/samples/<site>/<edge>/batch`` is the NATS subject ``plantlink.samples.<site>.<edge>.batch``, which
  the stream captures. Those messages carry no message id; a resend is removed later, by the historian keeping
  one row per (tag, time).

Each site has its own durable pull consumer (``ingest-<site>``, explicit acks): see :mod:`plantlink.ingest.worker`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

STREAM = "PLANTLINK_SAMPLES"
SUBJECT_ROOT = "plantlink.samples"
SUBJECTS = f"{SUBJECT_ROOT}.*.*.batch"
MSG_ID = "Nats-Msg-Id"
_BAD = re.compile(r"[^A-Za-z0-9_-]")


def token(name: str) -> str:
    """A site or edge name as one subject token (and a consumer or key name): what is not a letter, digit, ``_``
    or ``-`` becomes ``_``."""
    return _BAD.sub("_", name) or "_"


def batch_subject(site: str, edge: str) -> str:
    return f"{SUBJECT_ROOT}.{token(site)}.{token(edge)}.batch"


def site_filter(site: str) -> str:
    return f"{SUBJECT_ROOT}.{token(site)}.*.batch"


def mqtt_root(site: str) -> str:
    """The ``edge.central.root`` an MQTT edge of ``site`` uses to land in the stream through nats-server's MQTT."""
    return f"plantlink/samples/{token(site)}"


def consumer_name(site: str) -> str:
    return f"ingest-{token(site)}"


def msg_id(site: str, edge: str, epoch: str, seq: int) -> str:
    return f"{token(site)}.{edge}@{epoch}:{seq}"


@dataclass(frozen=True)
class ConsumerSettings:
    """A site consumer's redelivery: ``ack_wait`` seconds after a delivery without an acknowledgement the message
    goes out again; at most ``max_ack_pending`` messages are out unacknowledged (the worker's fetch size)."""

    ack_wait: float = 10.0
    max_ack_pending: int = 32


async def ensure_stream(js: Any) -> None:
    """Create the samples stream if it does not exist (an existing one is left as it is)."""
    from nats.js import api
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(STREAM)
    except NotFoundError:
        await js.add_stream(api.StreamConfig(name=STREAM, subjects=[SUBJECTS], storage=api.StorageType.FILE,
                                             duplicate_window=120.0))


async def ensure_consumer(js: Any, site: str, settings: ConsumerSettings) -> None:
    """The site's durable pull consumer, created if missing (an existing one keeps its position and config)."""
    from nats.js import api
    from nats.js.errors import NotFoundError

    name = consumer_name(site)
    try:
        await js.consumer_info(STREAM, name)
    except NotFoundError:
        await js.add_consumer(STREAM, api.ConsumerConfig(
            durable_name=name, name=name, filter_subject=site_filter(site), ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.ALL, ack_wait=settings.ack_wait,
            max_ack_pending=settings.max_ack_pending, max_deliver=-1))


async def publish_batch(js: Any, site: str, edge: str, seq: int, payload: bytes, epoch: str = "",
                        timeout: float = 10.0) -> bool:
    """Publish one encoded edge batch (``PathTable.encode``) into the stream and wait for JetStream's
    acknowledgement (the batch is stored). Returns False when JetStream recognised it as a duplicate of a batch
    it already has (same site, edge, epoch and sequence number within the duplicate window)."""
    ack = await js.publish(batch_subject(site, edge), payload, timeout=timeout,
                           headers={MSG_ID: msg_id(site, edge, epoch, seq)})
    return not ack.duplicate
