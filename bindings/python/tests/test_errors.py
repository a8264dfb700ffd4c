"""Status codes map to exceptions; handles close idempotently; nothing leaks."""

import gc
import os
import threading

import pytest

import pyserf


def test_bad_bind_address():
    with pytest.raises(pyserf.InvalidArgumentError) as ei:
        pyserf.Serf("x", bind="not-an-ip:1234")
    assert ei.value.status == 3 and "SERF_ERR_INVALID" in str(ei.value)
    assert isinstance(ei.value, ValueError) and isinstance(ei.value, pyserf.SerfError)


def test_port_in_use(make_node):
    a = make_node("p1")
    with pytest.raises(pyserf.SerfIOError) as ei:
        pyserf.Serf("p2", bind=f"127.0.0.1:{a.port}", profile="local")
    assert isinstance(ei.value, OSError)


def test_bad_join_address(make_node):
    a = make_node("j")
    with pytest.raises(pyserf.InvalidArgumentError):
        a.join(["300.1.2.3:x"])
    with pytest.raises(pyserf.InvalidArgumentError):
        a.join([])


def test_join_unreachable(make_node):
    from conftest import free_port

    a = make_node("u", tuning={"tcp_timeout_ms": 500})
    with pytest.raises(pyserf.JoinError):
        a.join([f"127.0.0.1:{free_port()}"])


def test_oversize(make_node):
    a = make_node("big")
    with pytest.raises(pyserf.TooLargeError):
        a.send_event("e", b"x" * 2000)
    with pytest.raises(pyserf.TooLargeError):
        a.query("q", b"x" * 5000)
    with pytest.raises(pyserf.TooLargeError):
        a.set_tags({"k": "v" * 1000})
    with pytest.raises(pyserf.TooLargeError):
        pyserf.Serf("n" * 200, bind="127.0.0.1:0")
    with pytest.raises(pyserf.TooLargeError):
        pyserf.Serf("t", bind="127.0.0.1:0", tags={"k": "v" * 1000})


def test_bad_arguments(make_node):
    with pytest.raises(pyserf.InvalidArgumentError):
        pyserf.Serf("x", bind="127.0.0.1:0", profile="moon")
    with pytest.raises(pyserf.InvalidArgumentError):
        pyserf.Serf("x", bind="127.0.0.1:0", encrypt_key="not base64!")
    with pytest.raises(pyserf.InvalidArgumentError):
        pyserf.Serf("x\x00y", bind="127.0.0.1:0")
    a = make_node("y")
    with pytest.raises(pyserf.NotFoundError):
        a.force_leave("nobody")
    with pytest.raises(pyserf.NotFoundError):
        a.rtt("nobody")
    with pytest.raises(pyserf.InvalidArgumentError):
        a.query("q", filter_tags={"role": "("})


def test_query_respond_twice(make_node):
    a = make_node("r")
    resp = a.query("q", b"", timeout=1.0)
    ev = a.poll_event(2.0)
    while not isinstance(ev, pyserf.Query):
        ev = a.poll_event(2.0)
    with pytest.raises(pyserf.TooLargeError):
        ev.respond(b"x" * 2000)
    ev.respond(b"1")
    with pytest.raises(pyserf.NotFoundError):
        ev.respond(b"2")
    assert resp.wait() == {"r": b"1"}


def _fds():
    return len(os.listdir("/proc/self/fd"))


def test_close_idempotent_and_use_after_close():
    threads0, fds0 = threading.active_count(), _fds()
    n = pyserf.Serf("c", bind="127.0.0.1:0", profile="local")
    with n:
        assert not n.closed
        port = n.port
        assert port > 0
    assert n.closed
    n.close()
    n.close()
    for call in (lambda: n.members(), lambda: n.port, lambda: n.send_event("e"),
                 lambda: n.poll_event(0), lambda: n.join("127.0.0.1:1"), lambda: n.stats()):
        with pytest.raises(pyserf.ClosedError):
            call()
    assert isinstance(pyserf.ClosedError("x"), pyserf.StoppedError)
    assert list(n.events(timeout=0.1)) == []
    # many nodes, some closed only through garbage collection
    for i in range(5):
        m = pyserf.Serf(f"g{i}", bind="127.0.0.1:0", profile="local")
        if i % 2:
            m.close()
        del m
    gc.collect()
    assert _fds() <= fds0
    assert threading.active_count() <= threads0


def test_shutdown_drains_then_stops(make_node):
    a = make_node("s")
    a.send_event("e", b"1")
    from conftest import wait_until

    assert wait_until(lambda: a.stats()["event_queue"] >= 2, timeout=5)  # self-join + "e"
    a.shutdown()
    with pytest.raises(pyserf.StoppedError):
        a.send_event("e", b"2")
    evs = list(a.events(timeout=0.5))  # queued events stay readable after shutdown
    assert [e.name for e in evs if isinstance(e, pyserf.UserEvent)] == ["e"]
    with pytest.raises(pyserf.StoppedError):
        a.poll_event(0.1)


def test_library_info():
    assert pyserf.LIBRARY_VERSION.startswith("0.")
    assert os.path.exists(pyserf.LIBRARY_PATH)


def test_missing_library_message(tmp_path):
    import subprocess
    import sys

    env = dict(os.environ, PYSERF_LIB=str(tmp_path / "nope.so"))
    r = subprocess.run([sys.executable, "-c", "import pyserf"], env=env,
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "cannot load libserf" in r.stderr and "PYSERF_LIB" in r.stderr
