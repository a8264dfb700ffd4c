import gc
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

import pyserf

REPO = Path(__file__).resolve().parents[3]
REFERENCE = REPO / "target" / "reference" / "serf"


def wait_until(pred: Callable[[], bool], timeout: float = 10.0, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(port)
    raise RuntimeError("no free port")


@pytest.fixture
def make_node() -> Iterator[Callable[..., pyserf.Serf]]:
    nodes: List[pyserf.Serf] = []

    def make(name: str, **kw: object) -> pyserf.Serf:
        kw.setdefault("bind", "127.0.0.1:0")
        kw.setdefault("profile", "local")
        n = pyserf.Serf(name, **kw)  # type: ignore[arg-type]
        nodes.append(n)
        return n

    yield make
    for n in nodes:
        n.close()
    gc.collect()


@pytest.fixture(scope="session")
def reference_serf() -> Path:
    """HashiCorp's serf v0.11.0, built by `make reference` if absent. Never skips."""
    if not (REFERENCE.exists() and os.access(REFERENCE, os.X_OK)):
        r = subprocess.run(["make", "--no-print-directory", "reference"], cwd=REPO,
                           capture_output=True, text=True, timeout=900)
        if r.returncode != 0 or not REFERENCE.exists():
            pytest.fail(f"make reference cannot build the reference serf agent:\n{r.stdout}\n{r.stderr}")
    return REFERENCE
