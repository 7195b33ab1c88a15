"""OPC UA connector: one subscription per device, a batch per publish response, reconnect and re-subscribe.

Lifecycle: ``start`` launches one background task that connects (``timeout`` from the device config),
creates a subscription (the device's ``publishing_interval``), one monitored item per point (its sampling
interval, an absolute deadband filter when the tag has a deadband) and then watches the connection: the
asyncua watchdog probes the server every ``watchdog_interval``, a dropped socket or a bad subscription
status ends the session at once, and a subscription silent for three keep-alive periods counts as lost.
On loss the device goes RECONNECTING, all points are emitted BAD once, and the task reconnects with
exponential back-off between ``reconnect_min`` and ``reconnect_max``, re-creating the subscription.

Security (endpoint choice, server certificate trust, client certificate, user identity) is applied to each new
client by ``security.configure``; certificates are kept under ``pki_dir`` (default: ``pki`` in the data
directory). A server refused for its security (no secure endpoint, an untrusted certificate), or one that
refuses plantlink's certificate, makes the device DOWN with what to do, logged once per reason, and is
retried with the same back-off. Messages name the endpoint
without any ``user:password@`` it may carry, and never a password.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from asyncua import Client, ua
from pydantic import BaseModel, ValidationError

from plantlink.connectors.base import BatchSink, Connector, DeviceState, Point
from plantlink.connectors.opcua.config import OpcUaDevice, OpcUaPoint
from plantlink.connectors.opcua.delivery import BatchingSubscription, ChangeDecoder
from plantlink.connectors.opcua.security import SecurityError, configure, own_certificate_refused, redact_url
from plantlink.connectors.opcua.values import builtin_variant_type, to_variant
from plantlink.connectors.processing import PointProcessor
from plantlink.errors import ConfigError, ConfigProblem, DeviceUnavailable, PointError
from plantlink.tasks import cancel_and_wait

log = logging.getLogger("plantlink.connectors.opcua")

#: Status codes a server answers when it cannot apply a deadband filter to an item; retried without.
_FILTER_REFUSED = {
    ua.StatusCodes.BadFilterNotAllowed,
    ua.StatusCodes.BadMonitoredItemFilterUnsupported,
    ua.StatusCodes.BadDeadbandFilterInvalid,
    ua.StatusCodes.BadMonitoredItemFilterInvalid,
}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _as_model(model: type[BaseModel], value: BaseModel, device: str, where: str) -> Any:
    if isinstance(value, model):
        return value
    try:
        data = value.model_dump()
        data.pop("device", None)
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([ConfigProblem(f"device {device}", None, None, where, str(exc))]) from None


class OpcUaConnector(Connector):
    protocol = "opcua"

    def __init__(self, device_id: str, config: BaseModel, points: Sequence[Point], sink: BatchSink):
        super().__init__(device_id, config, points, sink)
        self.cfg: OpcUaDevice = _as_model(OpcUaDevice, config, device_id, "")
        self.sources: list[OpcUaPoint] = [
            _as_model(OpcUaPoint, p.source, device_id, p.path) for p in self.points
        ]
        self.node_ids = [ua.NodeId.from_string(s.node) for s in self.sources]
        #: The endpoint as messages name it (without credentials).
        self.where = redact_url(self.cfg.endpoint)
        self.processor = PointProcessor(self.points)
        self.decoder = ChangeDecoder(self.points, self.processor, device_id)
        self._index = {p.tag_id: i for i, p in enumerate(self.points)}
        #: Raw data changes received from the server (before deadband), for diagnostics and benchmarks.
        self.changes = 0
        #: Indices of points whose monitored item the server refused at the last subscribe.
        self.unsubscribed: list[int] = []
        self._client: Client | None = None
        self._subscription: BatchingSubscription | None = None
        self._subscribed_at = 0.0
        self._session_open = False
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._lost_reason = ""
        self._marked_bad = False
        self._refused: str | None = None
        self._warned_nodes: set[int] = set()
        self._write_types: dict[int, ua.VariantType] = {}

    # -- lifecycle ------------------------------------------------------------------------------------

    @property
    def pki_dir(self) -> Path:
        """Where this client's certificate and the certificates trusted at first use are kept."""
        if self.cfg.pki_dir is not None:
            return self.cfg.pki_dir
        return self.data_dir / "pki" if self.data_dir is not None else Path("pki")

    async def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        if self.cfg.security == "none":
            log.warning("opcua device %s connects without security (security: none in the plant model): values "
                        "and writes are neither signed nor encrypted, and any server answering at %s is accepted",
                        self.device_id, self.where)
        self.health.set_state(DeviceState.CONNECTING)
        self._task = asyncio.create_task(self._run(), name=f"opcua:{self.device_id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait([task], f"opcua device {self.device_id}")
        await self._drop_client()
        self.health.set_state(DeviceState.STOPPED)

    async def _run(self) -> None:
        delay = self.cfg.reconnect_min
        while True:
            refused = False
            try:
                await self._connect()
                await self._subscribe()
                self._marked_bad = False
                self.health.set_state(DeviceState.CONNECTED)
                delay = self.cfg.reconnect_min
                reason = await self._watch()
            except asyncio.CancelledError:
                raise
            except SecurityError as exc:
                reason, refused = f"{self.where}: {exc}", True
            except Exception as exc:
                reason = f"{self.where}: {_describe(exc)}"
                hint = own_certificate_refused(exc, self.cfg, self.pki_dir)
                if hint is not None:
                    reason, refused = f"{reason}; {hint[0]}", hint[1]
            await self._drop_client()
            try:
                self._mark_lost(reason, refused)
            except Exception:
                log.exception("opcua device %s: cannot mark the points bad", self.device_id)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max(self.cfg.reconnect_max, self.cfg.reconnect_min))

    async def _connect(self) -> None:
        client = Client(self.cfg.endpoint, timeout=self.cfg.timeout, watchdog_intervall=self.cfg.watchdog_interval)
        client.name = client.description = f"plantlink {self.device_id}"
        client.session_timeout = max(60_000, int(self.cfg.keepalive * 6_000))
        client.connection_lost_callback = self._on_connection_lost
        self._lost = asyncio.Event()
        self._client = client
        self._session_open = False
        await asyncio.wait_for(configure(client, self.cfg, self.device_id, self.pki_dir),
                               timeout=self.cfg.timeout)
        await asyncio.wait_for(client.connect(), timeout=self.cfg.timeout)
        self._session_open = True

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        self._subscription = None
        if client is None:
            return
        if not self._session_open:  # connect failed: no session or background tasks to close
            client.disconnect_socket()
            return
        self._session_open = False
        try:
            await asyncio.wait_for(client.disconnect(), timeout=min(1.0, self.cfg.timeout))
        except Exception as exc:
            log.debug("opcua device %s: disconnect: %s", self.device_id, _describe(exc))
        finally:
            client.disconnect_socket()

    def _mark_lost(self, reason: str, refused: bool = False) -> None:
        """The session ended or could not start: RECONNECTING, or DOWN when the server was refused for its
        security (a person must act; it is still retried); every point BAD once."""
        if refused:
            if reason != self._refused:
                log.error("opcua device %s refused (retrying): %s", self.device_id, reason)
            self._refused = reason
            self.health.set_state(DeviceState.DOWN, reason)
        else:
            if self.health.state == DeviceState.CONNECTING:  # DeviceHealth logs only the loss of a good device
                log.warning("opcua device %s cannot connect (retrying): %s", self.device_id, reason)
            self._refused = None
            self.health.set_state(DeviceState.RECONNECTING, reason)
        if not self._marked_bad:
            self._marked_bad = True
            self._emit_all(self.decoder.bad(np.arange(len(self.points))))

    async def _on_connection_lost(self, exc: Exception) -> None:
        self._signal_lost(f"connection lost: {_describe(exc)}")

    def _on_status(self, status: ua.StatusCode) -> None:
        if not status.is_good():
            self._signal_lost(f"subscription status {status.name}")

    def _signal_lost(self, reason: str) -> None:
        if not self._lost.is_set():
            self._lost_reason = f"{self.where}: {reason}"
            self._lost.set()

    async def _watch(self) -> str:
        """Return (with the reason) when the connection or the subscription is lost."""
        sub = self._subscription
        assert sub is not None
        params = sub.parameters
        keepalive = params.RequestedPublishingInterval / 1000 * max(params.RequestedMaxKeepAliveCount, 1)
        stale_after = 3 * keepalive + self.cfg.timeout
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), timeout=self.cfg.watchdog_interval)
            if self._lost.is_set():
                return self._lost_reason
            quiet = time.monotonic() - (sub.last_publish_at or self._subscribed_at)
            if quiet > stale_after:
                return f"{self.where}: no publish response for {quiet:.1f}s"

    # -- subscription ---------------------------------------------------------------------------------

    def _subscription_params(self) -> ua.CreateSubscriptionParameters:
        interval_ms = self.cfg.publishing_interval * 1000
        keepalive_count = max(1, math.ceil(self.cfg.keepalive / self.cfg.publishing_interval))
        return ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=interval_ms,
            RequestedLifetimeCount=keepalive_count * 10,
            RequestedMaxKeepAliveCount=keepalive_count,
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
            Priority=0,
        )

    def _request(self, i: int, with_filter: bool = True) -> ua.MonitoredItemCreateRequest:
        point, source = self.points[i], self.sources[i]
        sampling = source.sampling_interval if source.sampling_interval is not None else self.cfg.sampling_interval
        # Enough queue to keep every sample taken between two publish responses (bounded).
        queue = 100 if sampling <= 0 else min(100, max(1, math.ceil(self.cfg.publishing_interval / sampling)))
        params = ua.MonitoringParameters(
            ClientHandle=i + 1, SamplingInterval=sampling * 1000, QueueSize=queue, DiscardOldest=True
        )
        if with_filter and point.tag.deadband > 0 and point.tag.type in ("float", "int"):
            # The tag's deadband is in engineering units; the server compares raw values.
            raw_deadband = point.tag.deadband / abs(float(self.processor.gain[i]))
            params.Filter = ua.DataChangeFilter(
                Trigger=ua.DataChangeTrigger.StatusValue,
                DeadbandType=ua.DeadbandType.Absolute,
                DeadbandValue=raw_deadband,
            )
        return ua.MonitoredItemCreateRequest(
            ItemToMonitor=ua.ReadValueId(NodeId=self.node_ids[i], AttributeId=ua.AttributeIds.Value),
            MonitoringMode=ua.MonitoringMode.Reporting,
            RequestedParameters=params,
        )

    async def _subscribe(self) -> None:
        client = self._client
        assert client is not None
        sub = BatchingSubscription(client.uaclient.session, self._subscription_params(), self._on_changes,
                                   self._on_status)
        await sub.init()
        self._subscription = sub
        self._subscribed_at = time.monotonic()
        failed = await self._create_items(sub, list(range(len(self.points))), with_filter=True)
        refused = [i for i, code in failed.items() if code in _FILTER_REFUSED]
        if refused:
            log.info("opcua device %s: server refused deadband filters on %d items; deadband applied "
                     "client-side", self.device_id, len(refused))
            for i in refused:
                del failed[i]
            failed.update(await self._create_items(sub, refused, with_filter=False))
        self.unsubscribed = sorted(failed)
        for i, code in failed.items():
            self._warn_unsubscribed(i, code)
        if failed:
            self._emit_all(self.decoder.bad(self.unsubscribed))

    async def _create_items(self, sub: BatchingSubscription, idx: list[int], with_filter: bool) -> dict[int, int]:
        """Create monitored items for points ``idx``; return the failed ones with their status codes."""
        if not idx:
            return {}
        results = await sub.create_monitored_items([self._request(i, with_filter) for i in idx])
        return {i: r.value for i, r in zip(idx, results, strict=True) if isinstance(r, ua.StatusCode)}

    def _warn_unsubscribed(self, i: int, code: int) -> None:
        status = ua.StatusCode(ua.UInt32(code))
        p = self.points[i]
        level = logging.DEBUG if i in self._warned_nodes else logging.WARNING
        self._warned_nodes.add(i)
        log.log(level, "opcua device %s: tag %s (node %s) cannot be subscribed: %s (%s); the tag stays BAD",
                self.device_id, p.path, self.sources[i].node, status.name, status.doc)

    def _on_changes(self, items: list[ua.MonitoredItemNotification]) -> None:
        try:
            self.changes += len(items)
            self._emit_all(self.decoder.decode(items))
        except Exception:
            log.exception("opcua device %s: cannot decode %d data changes", self.device_id, len(items))

    def _emit_all(self, batches: list[Any]) -> None:
        try:
            for batch in batches:
                self.emit(batch)
        except Exception:
            log.exception("opcua device %s: the sink refused a batch", self.device_id)

    # -- writes ---------------------------------------------------------------------------------------

    async def write(self, point: Point, value: Any) -> None:
        """Write ``value`` (engineering units: the tag's scaling is inverted) with the node's own type."""
        i = self._index.get(point.tag_id)
        if i is None:
            raise PointError(f"tag {point.path} is not a point of opcua device {self.device_id}")
        where = f"opcua device {self.device_id}, tag {point.path} (node {self.sources[i].node})"
        if not point.tag.writable:
            raise PointError(f"{where}: the tag is not writable (set writable: true in the plant model)")
        client = self._client
        if client is None or not self.health.ok:
            raise DeviceUnavailable(f"{where}: device is {self.health.state.value}: {self.health.last_error}")
        node = client.get_node(self.node_ids[i])
        try:
            vtype = self._write_types.get(i) or await self._variant_type(node, i, where)
            variant = to_variant(self._unscale(i, value), vtype, where)
            await node.write_value(ua.DataValue(variant))
        except ua.UaStatusCodeError as exc:
            raise PointError(f"{where}: the server refused the write: {exc}") from None
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise DeviceUnavailable(f"{where}: {_describe(exc)}") from None

    async def _variant_type(self, node: Any, i: int, where: str) -> ua.VariantType:
        """The node's variant type: from its current value, else from its DataType attribute."""
        dv = await node.read_data_value(raise_on_bad_status=False)
        vtype: ua.VariantType | None = dv.Value.VariantType if dv.Value is not None else None
        if vtype is None or vtype == ua.VariantType.Null:
            vtype = builtin_variant_type(await node.read_data_type())
        if vtype is None:
            raise PointError(f"{where}: the node's data type is not a built-in type; cannot write it")
        self._write_types[i] = vtype
        return vtype

    def _unscale(self, i: int, value: Any) -> Any:
        if self.points[i].tag.scaling is None or isinstance(value, str | bool):
            return value
        return (float(value) - float(self.processor.offset[i])) / float(self.processor.gain[i])
