"""The simulated Sparkplug B edge nodes of ``bench/mqtt_ingest.py``, one per process. A module of its own, light
to import (protobuf, numpy, paho-mqtt): the edge processes are spawned and must not import plantlink's runtime.

Each edge node ``E{i}`` has one device ``D`` with ``metrics`` Double metrics. Its NBIRTH/DBIRTH and the DDATA
metric blocks are encoded once; each DDATA is the payload's header (``timestamp`` = send time in ms, ``seq``
+ 1 mod 256) followed by a pre-encoded block of metrics by alias (protobuf merges concatenated messages). An
edge answers a rebirth request (NCMD) with its births.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb

GROUP = "Bench"
BLOCKS = 16  # distinct pre-encoded metric blocks per edge (values change from message to message)


def births(metrics: int) -> tuple[bytes, bytes]:
    nb = pb.Payload(timestamp=int(time.time() * 1000), seq=0)
    nb.metrics.add(name="bdSeq", datatype=pb.Int64, long_value=0)
    nb.metrics.add(name="Node Control/Rebirth", datatype=pb.Boolean, boolean_value=False)
    db = pb.Payload(timestamp=int(time.time() * 1000), seq=1)
    for k in range(metrics):
        db.metrics.add(name=f"m{k}", alias=k, datatype=pb.Double, double_value=0.0)
    return nb.SerializeToString(), db.SerializeToString()


def metric_blocks(metrics: int, node: int) -> list[bytes]:
    """The DDATA's metrics (by alias, no per-metric timestamp: the payload's applies), encoded once."""
    rng = np.random.default_rng(node)
    out = []
    for _ in range(BLOCKS):
        p = pb.Payload()
        for k, v in enumerate(rng.normal(50.0, 10.0, metrics)):
            p.metrics.add(alias=k, double_value=float(v))
        out.append(p.SerializeToString())
    return out


def ddata(block: bytes, seq: int) -> bytes:
    """A DDATA payload: header fields (timestamp = now, seq) then the metrics (protobuf concatenation merges)."""
    return pb.Payload(timestamp=time.time_ns() // 1_000_000, seq=seq).SerializeToString() + block


def edge(port: int, node: int, metrics: int, msgs_per_s: float, go: Any, stop: Any, sent: Any,
         ready: Any) -> None:
    import paho.mqtt.client as paho

    name = f"E{node}"
    base = f"spBv1.0/{GROUP}"
    nbirth, dbirth = births(metrics)
    blocks = metric_blocks(metrics, node)
    rebirth = threading.Event()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-edge-{node}")
    client.on_message = lambda c, u, m: rebirth.set()
    client.connect("127.0.0.1", port, keepalive=60)
    client.subscribe(f"{base}/NCMD/{name}", qos=0)
    client.loop_start()
    seq = 0

    def born() -> None:
        nonlocal seq
        client.publish(f"{base}/NBIRTH/{name}", nbirth, qos=0)
        client.publish(f"{base}/DBIRTH/{name}/D", dbirth, qos=0)
        seq = 1

    born()
    with ready.get_lock():
        ready.value += 1
    go.wait()
    period = 1.0 / msgs_per_s
    topic = f"{base}/DDATA/{name}/D"
    n, t_next = 0, time.monotonic() + period * (node / 20.0)  # staggered start
    while not stop.is_set():
        if rebirth.is_set():
            rebirth.clear()
            born()
        now = time.monotonic()
        if now < t_next:
            time.sleep(min(t_next - now, 0.05))
            continue
        seq = (seq + 1) % 256
        client.publish(topic, ddata(blocks[n % BLOCKS], seq), qos=0)
        n += 1
        t_next += period
        if now - t_next > 1.0:  # more than a second behind: do not burst to catch up
            t_next = now
    time.sleep(0.2)
    client.loop_stop()
    client.disconnect()
    sent.value = n
