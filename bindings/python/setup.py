"""Builds libserf with cargo (the shipped `dist` profile: optimised, stripped) and ships it inside
the pyserf package.

Environment:
  PYSERF_LIB          use this prebuilt libserf.so instead of running cargo
  PYSERF_SKIP_CARGO=1 do not build; copy what `make dist` built,
                      <repo>/target/<host triple>/dist/libserf.so, if present
  CARGO               the cargo executable (default: cargo)
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
LIBNAME = "libserf.dylib" if sys.platform == "darwin" else "libserf.so"


def _libserf() -> Path:
    override = os.environ.get("PYSERF_LIB")
    if override:
        return Path(override)
    if not (REPO / "Cargo.toml").exists():
        raise SystemExit(f"pyserf: no Cargo.toml at {REPO}; set PYSERF_LIB to a built libserf")
    cargo = os.environ.get("CARGO", "cargo")
    host = _host_triple(cargo)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if os.environ.get("PYSERF_SKIP_CARGO") != "1":
        # As `make dist` builds it (an explicit --target), so either reuses the other's build.
        build = [cargo, "build", "--profile", "dist", "--target", host, "--lib"]
        print(f"pyserf: {' '.join(build)} in {REPO}", flush=True)
        subprocess.run(build, cwd=REPO, check=True)
    lib = target / host / "dist" / LIBNAME
    if not lib.exists():
        raise SystemExit(f"pyserf: {lib} was not built")
    return lib


def _host_triple(cargo: str) -> str:
    """The triple cargo builds for by default (`host:` in `cargo -vV`)."""
    version = subprocess.run([cargo, "-vV"], capture_output=True, text=True, check=True).stdout
    for line in version.splitlines():
        if line.startswith("host: "):
            return line.removeprefix("host: ").strip()
    raise SystemExit(f"pyserf: `{cargo} -vV` names no host triple")


class BuildPyWithLibserf(build_py):
    def run(self) -> None:
        super().run()
        lib = _libserf()
        dests = [Path(self.build_lib) / "pyserf" / LIBNAME]
        if getattr(self, "editable_mode", False):
            dests.append(HERE / "pyserf" / LIBNAME)  # editable installs import from the tree
        for dest in dests:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.resolve() != lib.resolve():
                shutil.copy2(lib, dest)
            print(f"pyserf: {lib} -> {dest}", flush=True)


try:
    from wheel.bdist_wheel import bdist_wheel

    class PlatformWheel(bdist_wheel):
        """The wheel carries a native library: not pure Python, but no CPython ABI either."""

        def finalize_options(self) -> None:
            super().finalize_options()
            self.root_is_pure = False

        def get_tag(self):  # type: ignore[no-untyped-def]
            _, _, plat = super().get_tag()
            return "py3", "none", plat

    cmdclass = {"build_py": BuildPyWithLibserf, "bdist_wheel": PlatformWheel}
except ImportError:  # pragma: no cover
    cmdclass = {"build_py": BuildPyWithLibserf}

setup(cmdclass=cmdclass)
