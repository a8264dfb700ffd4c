#!/usr/bin/env python3
"""Listens for `deploy` user events (e.g. `serf event deploy v1.2.3`) with asyncio and answers
`deploy-status` queries with the last version deployed.

    python3 examples/python/deploy_listener.py --name worker-1 --bind 127.0.0.1:7950 \
        --join 127.0.0.1:7946 [--duration 10]
"""

import argparse
import asyncio

import pyserf


async def listen(node: pyserf.Serf) -> None:
    current = b"none"
    async for ev in node.aevents():
        if isinstance(ev, pyserf.UserEvent) and ev.name == "deploy":
            current = ev.payload
            print(f"deploying {ev.payload.decode(errors='replace')} (ltime {ev.ltime})", flush=True)
        elif isinstance(ev, pyserf.Query):
            if ev.name == "deploy-status":
                ev.respond(current)
            ev.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--bind", default="127.0.0.1:7950")
    ap.add_argument("--join", action="append", default=[])
    ap.add_argument("--duration", type=float, default=None)
    args = ap.parse_args()
    with pyserf.Serf(args.name, bind=args.bind, tags={"role": "worker"}) as node:
        if args.join:
            node.join(args.join, ignore_old=True)
        print(f"{args.name} waiting for deploy events on port {node.port}", flush=True)
        try:
            await asyncio.wait_for(listen(node), args.duration)
        except asyncio.TimeoutError:
            pass
        node.leave()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
