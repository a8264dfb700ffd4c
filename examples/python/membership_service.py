#!/usr/bin/env python3
"""Registers this process in a Serf cluster with tags and prints membership changes.

    python3 examples/python/membership_service.py --name web-1 --bind 127.0.0.1:7946 \
        --tag role=web --join 127.0.0.1:7947 [--duration 10]
"""

import argparse
import time

import pyserf


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--bind", default="127.0.0.1:7946")
    ap.add_argument("--tag", action="append", default=[], help="key=value")
    ap.add_argument("--join", action="append", default=[])
    ap.add_argument("--duration", type=float, default=None, help="seconds to run (default: forever)")
    args = ap.parse_args()
    tags = dict(t.split("=", 1) for t in args.tag)

    with pyserf.Serf(args.name, bind=args.bind, tags=tags) as node:
        print(f"{args.name} listening on port {node.port} with tags {tags}", flush=True)
        if args.join:
            print(f"joined via {node.join(args.join)} node(s)", flush=True)
        end = None if args.duration is None else time.monotonic() + args.duration
        try:
            while end is None or time.monotonic() < end:
                ev = node.poll_event(timeout=0.5)
                if isinstance(ev, pyserf.MemberEvent):
                    for m in ev.members:
                        print(f"{ev.type.value}: {m.name} {m.address} {m.status.value} {m.tags}",
                              flush=True)
                    alive = sorted(m.name for m in node.members()
                                   if m.status is pyserf.MemberStatus.ALIVE)
                    print(f"  alive now: {alive}", flush=True)
                elif isinstance(ev, pyserf.Query):
                    ev.close()
        except KeyboardInterrupt:
            pass
        node.leave()


if __name__ == "__main__":
    main()
