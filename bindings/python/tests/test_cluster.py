"""Three pyserf nodes in one process, on loopback."""

import time

import pyserf
from conftest import wait_until


def _drain_queries(node: pyserf.Serf, answer: bytes, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ev = node.poll_event(0.05)
        if isinstance(ev, pyserf.Query):
            ev.respond(answer)
            ev.close()


def test_three_nodes(make_node):
    a = make_node("a", tags={"role": "web"})
    b = make_node("b", tags={"role": "db"})
    c = make_node("c")
    assert b.join([f"127.0.0.1:{a.port}"]) == 1
    assert c.join(f"127.0.0.1:{b.port}", ignore_old=True) >= 1

    def alive(n):
        return {m.name for m in n.members() if m.status is pyserf.MemberStatus.ALIVE}

    for n in (a, b, c):
        assert wait_until(lambda: alive(n) == {"a", "b", "c"}), n.members()
    me = a.local_member()
    assert me.name == "a" and me.tags == {"role": "web"} and me.port == a.port

    # member-join events arrive
    joined = set()
    for ev in a.events(timeout=1.0):
        if isinstance(ev, pyserf.MemberEvent) and ev.type is pyserf.EventType.MEMBER_JOIN:
            joined |= {m.name for m in ev.members}
    assert joined == {"a", "b", "c"}
    list(b.events(timeout=0.2)), list(c.events(timeout=0.2))

    # tags update propagates
    c.set_tags({"role": "cache", "zone": "z1"})
    c.delete_tags(["zone"])

    def c_tags_on_a():
        return next(m.tags for m in a.members() if m.name == "c")

    assert wait_until(lambda: c_tags_on_a() == {"role": "cache"}), c_tags_on_a()
    updates = [ev for ev in a.events(timeout=1.0) if isinstance(ev, pyserf.MemberEvent)]
    assert any(ev.type is pyserf.EventType.MEMBER_UPDATE for ev in updates)

    # user event reaches everyone, payload as bytes (with a NUL inside)
    a.send_event("deploy", b"v1\x00x", coalesce=False)
    for n in (a, b, c):
        got = [ev for ev in n.events(timeout=1.5) if isinstance(ev, pyserf.UserEvent)]
        assert [(e.name, e.payload, e.coalesce) for e in got] == [("deploy", b"v1\x00x", False)]

    # query with responses: b and c answer, filtered by tag regex to exclude a
    resp = a.query("whoami", b"?", filter_tags={"role": "db|cache"}, request_ack=True,
                   timeout=3.0)
    import threading
    ts = [threading.Thread(target=_drain_queries, args=(n, n.name.encode(), 2.0))
          for n in (b, c)]
    for t in ts:
        t.start()
    t0 = time.monotonic()
    updates = list(resp)
    for t in ts:
        t.join()
    assert resp.done
    assert resp.responses == {"b": b"b", "c": b"c"}
    assert sorted(resp.acks) == ["b", "c"]
    assert any(isinstance(u, pyserf.QueryReply) for u in updates)
    assert time.monotonic() - t0 < 3.5
    resp.close()
    assert not any(isinstance(ev, pyserf.Query) for ev in a.events(timeout=0.3))

    # stats, coordinates
    st = a.stats()
    assert st["members"] == 3
    a.coordinate()
    if wait_until(lambda: _has_coord(a, "b"), timeout=3):
        assert a.rtt("b") >= 0.0

    # graceful leave
    c.leave()
    assert wait_until(lambda: any(m.name == "c" and m.status is pyserf.MemberStatus.LEFT
                                  for m in a.members()))
    left = [ev for ev in a.events(timeout=1.0) if isinstance(ev, pyserf.MemberEvent)
            and ev.type is pyserf.EventType.MEMBER_LEAVE]
    assert [m.name for ev in left for m in ev.members] == ["c"]
    assert c.members()  # readable after leave
    try:
        c.send_event("x", b"")
        raise AssertionError("send after leave should fail")
    except pyserf.StoppedError:
        pass


def _has_coord(n, name):
    try:
        n.coordinate(name)
        return True
    except pyserf.NotFoundError:
        return False


def test_keys(make_node):
    k1 = "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s="
    k2 = "HvY8ubRZMgafUOWvrOadwOckVa1wN3QWAo46FVKbVN8="
    a = make_node("ka", encrypt_key=k1)
    b = make_node("kb", encrypt_key=k1)
    b.join(f"127.0.0.1:{a.port}")
    assert wait_until(lambda: len(a.members()) == 2)
    assert a.keys.list().keys == {k1: 2}
    r = a.keys.install(k2)
    assert r.ok and r.num_nodes == 2
    a.keys.use(k2)
    a.keys.remove(k1)
    lst = b.keys.list()
    assert lst.keys == {k2: 2} and lst.primary_keys == {k2: 2}
    assert a.stats()["encrypted"] is True


def test_asyncio_aevents(make_node):
    import asyncio

    a = make_node("aa")
    b = make_node("ab")
    b.join(f"127.0.0.1:{a.port}")

    async def main():
        got = []

        async def consume():
            async for ev in a.aevents():
                got.append(ev)
                if isinstance(ev, pyserf.UserEvent) and ev.name == "done":
                    return

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.3)
        b.send_event("hello", b"1")
        b.send_event("done", b"")
        await asyncio.wait_for(task, 10)
        return got

    got = asyncio.run(main())
    names = [e.name for e in got if isinstance(e, pyserf.UserEvent)]
    assert names == ["hello", "done"]
    assert any(isinstance(e, pyserf.MemberEvent) for e in got)


def test_async_query_iteration(make_node):
    import asyncio

    a = make_node("qa")

    async def main():
        resp = a.query("ping", b"", timeout=2.0)
        ev = a.poll_event(2.0)
        while not isinstance(ev, pyserf.Query):
            ev = a.poll_event(2.0)
        ev.respond(b"pong")
        return [u async for u in resp]

    ups = asyncio.run(main())
    assert ups == [pyserf.QueryReply("qa", b"pong")]
