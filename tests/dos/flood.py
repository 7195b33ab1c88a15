"""A login flood in its own process, so that its work does not slow the client that measures the server.

    python -m tests.dos.flood URL SECONDS CONCURRENCY [ADDRESSES]

Keeps CONCURRENCY logins with random user names and wrong passwords in flight for SECONDS, spread over ADDRESSES
loopback source addresses (127.0.1.1, 127.0.1.2, ...; default 40) so that no per-address limit hides the load.
Prints ``{"started": true}`` when the first requests are out, then one JSON line: the count of each status
(or error) and the number of requests sent. Runs at the lowest CPU priority: in a plant the attacker is another
machine, and here it must not take the CPU the server needs (the tests run both on one machine).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from collections import Counter
from urllib.parse import urlsplit


def request(host: str, name: str) -> bytes:
    body = json.dumps({"user": name, "password": "wrong-password-" + secrets.token_hex(4)}).encode()
    head = (f"POST /api/v1/auth/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


ANSWER_WITHIN_S = 240.0


async def one(host: str, port: int, source: str) -> str:
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    try:
        writer.write(request(f"{host}:{port}", "flood-" + secrets.token_hex(6)))
        await writer.drain()
        # generous: at nice 19 on a loaded machine this process itself may wait minutes for a CPU; a server that
        # never answers still shows as a TimeoutError
        status = await asyncio.wait_for(reader.readline(), ANSWER_WITHIN_S)
        await reader.read()
        return status.split()[1].decode() if status else "no-answer"
    finally:
        writer.close()


async def main(url: str, seconds: float, concurrency: int, addresses: int) -> None:
    os.nice(19)  # the attacker is another machine: it does not take the server's CPU away
    u = urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    counts: Counter[str] = Counter()
    deadline = time.monotonic() + seconds

    async def worker(i: int) -> None:
        source = f"127.0.1.{1 + i % addresses}"
        while time.monotonic() < deadline:
            try:
                counts[await one(host, port, source)] += 1
            except (OSError, TimeoutError) as exc:
                counts[type(exc).__name__] += 1

    tasks = [asyncio.create_task(worker(i)) for i in range(concurrency)]
    await asyncio.sleep(0.2)
    print(json.dumps({"started": True}), flush=True)
    await asyncio.gather(*tasks)
    print(json.dumps({"sent": sum(counts.values()), "statuses": dict(counts)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]),
                     int(sys.argv[4]) if len(sys.argv) > 4 else 40))
