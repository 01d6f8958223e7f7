"""The CDS Hooks load generator: a separate process that drives the real server over loopback.

Reads a plan written by :mod:`bench.cds_bench` (request templates plus, per request, the
template, a fresh ``hookInstance`` and a pre-signed JWT with a fresh ``jti``), opens one
HTTP/1.1 keep-alive connection per concurrent request, and writes every latency and status
to a JSON file. Bounded: the plan's request count and ``max_seconds``; 127.0.0.1 only.

    python -m bench.cds_load PLAN.json OUT.json
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

PLACEHOLDER = b"@@HOOK_INSTANCE@@"


class Conn:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (far less overhead than httpx)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, token: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Authorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def run(plan: dict[str, Any]) -> dict[str, Any]:
    """Send the plan's requests at its concurrency; latencies in ms, statuses, wall time."""
    templates = [Path(p).read_bytes() for p in plan["templates"]]
    requests = plan["requests"]
    concurrency = int(plan["concurrency"])
    deadline = time.perf_counter() + float(plan["max_seconds"])
    conns = [Conn(int(plan["port"])) for _ in range(concurrency)]
    results: list[tuple[int, float, int]] = []
    queue = iter(range(len(requests)))

    async def worker(conn: Conn) -> None:
        for i in queue:
            if time.perf_counter() > deadline:
                return
            t, hook_instance, token = requests[i]
            path = plan["paths"][t]
            body = templates[t].replace(PLACEHOLDER, hook_instance.encode())
            t0 = time.perf_counter()
            status, _ = await conn.post(path, token, body)
            results.append((i, (time.perf_counter() - t0) * 1000, status))

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - started
    await asyncio.gather(*(c.close() for c in conns))
    return {
        "concurrency": concurrency,
        "elapsed_s": elapsed,
        "latencies_ms": [r[1] for r in results],
        "statuses": [r[2] for r in results],
        "templates": [requests[r[0]][0] for r in results],
    }


def main(argv: list[str]) -> int:
    plan = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    out = asyncio.run(run(plan))
    Path(argv[1]).write_text(json.dumps(out), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
