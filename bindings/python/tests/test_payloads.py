"""Arguments taking raw bytes accept bytes, bytearray and memoryview only.

Anything else is a TypeError: ``bytes(5)`` would otherwise send five NUL bytes, and a list of
ints or a str would be converted silently.
"""

import pytest

import pyserf

NOT_BYTES = [5, "text", None, [1, 2]]


def _next_query(node: pyserf.Serf) -> pyserf.Query:
    for ev in node.events(timeout=5.0):
        if isinstance(ev, pyserf.Query):
            return ev
    raise AssertionError("no query event within 5 s")


@pytest.mark.parametrize("bad", NOT_BYTES, ids=lambda v: type(v).__name__)
def test_payload_must_be_bytes_like(make_node, bad):
    a = make_node("p")
    message = f"payload must be bytes, bytearray or memoryview, not {type(bad).__name__}"
    with pytest.raises(TypeError, match=message):
        a.send_event("e", bad)
    with pytest.raises(TypeError, match=message):
        a.query("q", bad)
    resp = a.query("q", b"", timeout=2.0)
    query = _next_query(a)
    with pytest.raises(TypeError, match=message):
        query.respond(bad)
    query.respond(b"ok")  # the refused payload did not use up the one answer
    assert resp.wait() == {"p": b"ok"}
    assert not [ev for ev in a.events(timeout=0.3) if isinstance(ev, pyserf.UserEvent)]


@pytest.mark.parametrize("bad", [16, [0] * 16], ids=lambda v: type(v).__name__)
def test_encrypt_key_must_be_str_or_bytes_like(bad):
    # bytes(16) and bytes([0] * 16) are both a valid, all-zero AES key.
    with pytest.raises(TypeError, match="encrypt_key"):
        pyserf.Serf("k", bind="127.0.0.1:0", profile="local", encrypt_key=bad)


def test_bytearray_and_memoryview_payloads(make_node):
    a = make_node("bv", encrypt_key=bytearray(range(16)))
    assert a.stats()["encrypted"] is True
    a.send_event("ba", bytearray(b"ba\x00"), coalesce=False)
    a.send_event("mv", memoryview(b"xmvx")[1:3], coalesce=False)
    got = {ev.name: ev.payload for ev in a.events(timeout=1.0) if isinstance(ev, pyserf.UserEvent)}
    assert got == {"ba": b"ba\x00", "mv": b"mv"}
    resp = a.query("q", memoryview(bytearray(b"ask")), timeout=2.0)
    query = _next_query(a)
    assert query.payload == b"ask"
    query.respond(memoryview(b"answer"))
    assert resp.wait() == {"bv": b"answer"}


def test_event_limit_is_on_the_encoded_message(make_node):
    # As in Go: the 512-byte limit holds the encoded message, so a fresh node's 4-byte name
    # leaves 478 bytes of payload, not 508.
    a = make_node("limit")
    a.send_event("name", b"x" * 478)
    with pytest.raises(pyserf.TooLargeError):
        a.send_event("name", b"x" * 479)
