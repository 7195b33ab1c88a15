"""Sparkplug B host state machine, no network: DDATA messages of many metrics (by alias) decoded into Arrow
batches on one core (the vectorised path of ``sparkplug/wire.py``: metrics by alias with a numeric value). The
ceiling of the MQTT connector's decode before the broker and the bus; ``bench/mqtt_ingest.py`` measures the
whole chain through Mosquitto.

    .venv/bin/python bench/sparkplug_decode.py [--metrics 500] [--messages 2000]

Prints one JSON line per figure.
"""

from __future__ import annotations

import argparse
import json
import time

from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.connectors.mqtt.sparkplug.host import SparkplugHost


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--metrics", type=int, default=500)
    ap.add_argument("--messages", type=int, default=2000)
    args = ap.parse_args()
    n = args.metrics
    host = SparkplugHost("G", {f"N1/D1/m{i}": i + 1 for i in range(n)})
    nb = pb.Payload(timestamp=1, seq=0)
    nb.metrics.add(name="bdSeq", datatype=pb.Int64, long_value=0)
    host.handle("spBv1.0/G/NBIRTH/N1", nb.SerializeToString(), 0)
    db = pb.Payload(timestamp=1, seq=1)
    for i in range(n):
        db.metrics.add(name=f"m{i}", alias=i, datatype=pb.Double, double_value=0.0)
    host.handle("spBv1.0/G/DBIRTH/N1/D1", db.SerializeToString(), 0)
    msgs = []
    for k in range(256):
        d = pb.Payload(timestamp=1_700_000_000_000 + k, seq=(k + 2) % 256)
        for i in range(n):
            d.metrics.add(alias=i, double_value=k + i / 1000, timestamp=1_700_000_000_000 + k)
        msgs.append(d.SerializeToString())
    rows = 0
    t0 = time.perf_counter()
    for j in range(args.messages):
        r = host.handle("spBv1.0/G/DDATA/N1/D1", msgs[j % 256], 0)
        assert not r.issues and r.batch is not None
        rows += r.batch.num_rows
    dt = time.perf_counter() - t0
    print(json.dumps({"name": "sparkplug_decode_samples_per_s_one_core", "value": round(rows / dt),
                      "unit": "samples/s", "metrics_per_message": n}))
    print(json.dumps({"name": "sparkplug_decode_us_per_message", "value": round(dt / args.messages * 1e6, 1),
                      "unit": "us", "metrics_per_message": n}))


if __name__ == "__main__":
    main()
