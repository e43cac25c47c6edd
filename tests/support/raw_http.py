"""Raw HTTP/1.1 over a socket, for tests of what a well-behaved client never sends."""

import asyncio
import time


async def exchange(port: int, *parts: bytes, pause_s: float = 0.0) -> tuple[bytes, float]:
    """Send ``parts`` (``pause_s`` apart) on one connection and read until the server
    closes it; the reply and how long the connection lived."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    for part in parts:
        writer.write(part)
        await asyncio.sleep(pause_s)
    reply = await asyncio.wait_for(reader.read(), 15)
    writer.close()
    return reply, time.monotonic() - started
