import gc
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

import pyserf

REPO = Path(__file__).resolve().parents[3]
REFERENCE = REPO / "target" / "reference-serf" / "serf"
GO = os.environ.get("GO", "/usr/lib/go-1.19/bin/go")


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
    """The HashiCorp serf binary; built from Debian's Go sources if absent. Never skips."""
    if REFERENCE.exists() and os.access(REFERENCE, os.X_OK):
        return REFERENCE
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off",
               GOCACHE=str(REFERENCE.parent / "gocache"))
    go = GO if Path(GO).exists() else (shutil.which("go") or GO)
    r = subprocess.run([go, "build", "-o", str(REFERENCE), "github.com/hashicorp/serf/cmd/serf"],
                       env=env, capture_output=True, text=True, timeout=600)
    if r.returncode != 0 or not REFERENCE.exists():
        pytest.fail(f"cannot build the reference serf agent with {go}:\n{r.stdout}\n{r.stderr}")
    return REFERENCE
