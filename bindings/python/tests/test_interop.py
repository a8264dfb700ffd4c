"""A pyserf node in a cluster of two reference HashiCorp serf agents (0.9.x, built from Go)."""

import json
import subprocess
import threading
import time

import pytest

import pyserf
from conftest import free_port, wait_until


class Agent:
    def __init__(self, binary, name, tmp):
        self.binary = str(binary)
        self.name = name
        self.port = free_port()
        self.rpc = f"127.0.0.1:{free_port()}"
        self.events_file = tmp / f"{name}.events"
        self.log = open(tmp / f"{name}.log", "w")
        handler_user = f"user=cat >> {self.events_file}; echo >> {self.events_file}"
        handler_query = "query:ping=printf pong-from-$SERF_SELF_NAME"
        self.proc = subprocess.Popen(
            [self.binary, "agent", f"-node={name}", f"-bind=127.0.0.1:{self.port}",
             f"-rpc-addr={self.rpc}", "-profile=local", f"-event-handler={handler_user}",
             f"-event-handler={handler_query}"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def cli(self, cmd, *args, timeout=20):
        # Go's flag package: flags before positional arguments
        r = subprocess.run([self.binary, cmd, f"-rpc-addr={self.rpc}", *args], capture_output=True,
                           text=True, timeout=timeout)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    def wait_ready(self):
        def ok():
            return subprocess.run([self.binary, "members", f"-rpc-addr={self.rpc}"],
                                  capture_output=True).returncode == 0
        assert wait_until(ok, timeout=15), open(self.log.name).read()

    def members(self):
        return {m["name"]: m for m in json.loads(self.cli("members", "-format=json"))["members"]}

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def agents(reference_serf, tmp_path):
    a = [Agent(reference_serf, "go-1", tmp_path), Agent(reference_serf, "go-2", tmp_path)]
    try:
        for ag in a:
            ag.wait_ready()
        yield a
    finally:
        for ag in a:
            ag.stop()


def test_pyserf_joins_reference_agents(agents, make_node):
    g1, g2 = agents
    py = make_node("py-1", tags={"lang": "python"}, profile="local")
    assert py.join([f"127.0.0.1:{g1.port}", f"127.0.0.1:{g2.port}"]) == 2

    # `serf members` on both agents lists the pyserf node, with its tags
    for g in agents:
        assert wait_until(lambda: g.members().get("py-1", {}).get("status") == "alive",
                          timeout=15), g.members()
        assert g.members()["py-1"]["tags"] == {"lang": "python"}
    assert wait_until(lambda: {m.name for m in py.members()} == {"py-1", "go-1", "go-2"})
    list(py.events(timeout=0.5))

    # event: Go CLI -> pyserf
    g1.cli("event", "deploy", "v42")
    got = None
    end = time.monotonic() + 10
    while got is None and time.monotonic() < end:
        ev = py.poll_event(0.5)
        if isinstance(ev, pyserf.UserEvent) and ev.name == "deploy":
            got = ev
    assert got is not None and got.payload == b"v42"

    # event: pyserf -> Go agents (their event handler appends the payload to a file)
    py.send_event("hello", b"from-python")
    for g in agents:
        assert wait_until(lambda: g.events_file.exists()
                          and "from-python" in g.events_file.read_text(), timeout=10)

    # query: pyserf -> Go agents (answered by the query handler's stdout)
    resp = py.query("ping", b"", filter_nodes=["go-1", "go-2"], timeout=5)
    assert resp.wait() == {"go-1": b"pong-from-go-1", "go-2": b"pong-from-go-2"}

    # query: Go CLI -> pyserf, answered from Python
    stop = threading.Event()

    def answer():
        while not stop.is_set():
            ev = py.poll_event(0.1)
            if isinstance(ev, pyserf.Query) and ev.name == "whoami":
                ev.respond(b"pyserf:" + ev.payload)

    t = threading.Thread(target=answer)
    t.start()
    try:
        out = g2.cli("query", "-format=json", "-node=py-1", "-timeout=5s", "whoami", "x")
    finally:
        stop.set()
        t.join()
    assert json.loads(out)["Responses"] == {"py-1": "pyserf:x"}

    # leave: the agents see it as left
    py.leave()
    assert wait_until(lambda: g1.members()["py-1"]["status"] == "left", timeout=15)
