"""Many WHEP subscribers joining a node at once, in their own process (the join storm test's clients).

``python -m tests.sfu.storm_subscribers --base URL --room R --count N --prefix P``
(media token secret in ``VCS_STORM_SECRET``) starts all N joins at once; a
join the node defers (429/503) waits its Retry-After, jittered as the agents
do, and tries again. Prints one JSON line once every join has ended
(``{"joined": [...in order], "failed": {...}, "deferred": n}``), then on each
``REPORT`` line of stdin one JSON line ``{identity: [packets received,
dropped]}`` (dropped: the connection failed or closed after it connected).
``EXIT`` (or end of input) closes every session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys

import httpx

from rtc.consent import tolerate_load
from rtc.ice import restrict_host_addresses
from rtc.whip_client import MediaError, MediaSession, subscribe
from vcs.media_tokens import mint_media_token

SECRET_ENV = "VCS_STORM_SECRET"
JOIN_DEADLINE_S = 300.0  # a join still deferred by then is reported failed


async def run(base: str, room: str, count: int, prefix: str) -> None:
    secret = os.environ[SECRET_ENV]
    url = f"{base}/whep/{room}"
    sessions: dict[str, MediaSession] = {}
    joined: list[str] = []
    failed: dict[str, str] = {}
    deferred = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + JOIN_DEADLINE_S
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:

        async def join(identity: str) -> None:
            nonlocal deferred
            token = mint_media_token(secret, room=room, identity=identity, role="subscribe", ttl=3600)
            while True:
                try:
                    session = await subscribe(http, url, token, kinds=("audio",))
                except MediaError as exc:
                    if exc.status in (429, 503) and exc.retry_after is not None and loop.time() < deadline:
                        deferred += 1
                        await asyncio.sleep(exc.retry_after * (1 + random.random()))
                        continue
                    failed[identity] = str(exc)
                    return
                break
            sessions[identity] = session
            while session.pc.connectionState != "connected":
                if session.dropped.is_set() or loop.time() > deadline:
                    failed[identity] = f"did not connect ({session.pc.connectionState})"
                    return
                await asyncio.sleep(0.05)
            joined.append(identity)

        await asyncio.gather(*(join(f"{prefix}-{i}") for i in range(count)))
        print(json.dumps({"joined": joined, "failed": failed, "deferred": deferred}), flush=True)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while (await reader.readline()).decode().strip() == "REPORT":
            report = {i: [s.counters["audio"].packets, s.dropped.is_set()] for i, s in sessions.items()}
            print(json.dumps(report), flush=True)
        await asyncio.gather(*(s.close() for s in sessions.values()), return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.sfu.storm_subscribers")
    parser.add_argument("--base", required=True)
    parser.add_argument("--room", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    args = parser.parse_args()
    restrict_host_addresses(["127.0.0.1"])
    tolerate_load()  # as every endpoint process does
    asyncio.run(run(args.base, args.room, args.count, args.prefix))


if __name__ == "__main__":
    main()
