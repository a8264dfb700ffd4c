"""The agent's /metrics through Prometheus' own parser (prometheus_client): two of our agents,
one serving the HTTP view, a join and a user event; the exposition must parse and carry the
membership, gossip and event families. Run by `make metrics-parse` (part of `make test`)."""

import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

SERF = Path(__file__).resolve().parents[2] / "target" / "release" / "serf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def agent(name: str, logs: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str, str]:
    gossip, rpc = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    log = open(logs / f"{name}.log", "wb")
    proc = subprocess.Popen(
        [str(SERF), "agent", f"-node={name}", f"-bind={gossip}", f"-rpc-addr={rpc}", *extra],
        stdout=log, stderr=log,
    )
    for _ in range(100):
        if subprocess.run([str(SERF), "members", f"-rpc-addr={rpc}"], capture_output=True).returncode == 0:
            return proc, gossip, rpc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"agent {name} did not start: {(logs / f'{name}.log').read_text()}")


def test_metrics_parse_with_prometheus_client() -> None:
    http = f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as logs:
        a, a_gossip, _ = agent("prom-a", Path(logs), f"-http-addr={http}")
        b, _, b_rpc = agent("prom-b", Path(logs))
        try:
            subprocess.run([str(SERF), "join", f"-rpc-addr={b_rpc}", a_gossip], check=True, capture_output=True)
            subprocess.run([str(SERF), "event", f"-rpc-addr={b_rpc}", "deploy", "v1"], check=True, capture_output=True)
            wanted = {
                "serf_agent_serf_member_join",
                "serf_agent_memberlist_gossip",
                "serf_agent_serf_events",
                "serf_agent_serf_events_deploy",
                "serf_agent_memberlist_msg_alive",
            }
            deadline = time.monotonic() + 20
            while True:
                with urllib.request.urlopen(f"http://{http}/metrics", timeout=10) as r:
                    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                    text = r.read().decode()
                families = {f.name: f for f in text_string_to_metric_families(text)}
                if wanted <= families.keys() or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert wanted <= families.keys(), sorted(families)
            # Every name of the metrics table is described; per-event names are not in it.
            described = wanted - {"serf_agent_serf_events_deploy"}
            assert all(families[n].documentation for n in described), text
            samples = sum(len(f.samples) for f in families.values())
            print(f"/metrics: {len(families)} families, {samples} samples")
        finally:
            for p in (a, b):
                p.kill()
                p.wait()
