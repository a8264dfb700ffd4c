"""ctypes declarations for every libserf function pyserf uses (see include/serf.h).

The library is looked up, in order: ``$PYSERF_LIB``; ``libserf.so`` shipped inside this package;
the repository's ``target/release`` (for an in-tree checkout). Loading checks ``serf_version()``.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import (
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_double,
    c_int32,
    c_int64,
    c_size_t,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, List, Optional

# The ABI this package was written against: same major, at least this minor.
REQUIRED_VERSION = (0, 2, 0)

# Constants mirrored from serf.h (tests/test_ffi_header.py checks them against it).
SERF_OK = 0
SERF_ERR_NULL = 1
SERF_ERR_UTF8 = 2
SERF_ERR_INVALID = 3
SERF_ERR_TOO_LARGE = 4
SERF_ERR_TIMEOUT = 5
SERF_ERR_NOT_FOUND = 6
SERF_ERR_STOPPED = 7
SERF_ERR_IO = 8
SERF_ERR_JOIN = 9
SERF_ERR_INTERNAL = 10

SERF_PROFILE_LAN = 0
SERF_PROFILE_WAN = 1
SERF_PROFILE_LOCAL = 2

SERF_EVENT_NONE = 0
SERF_EVENT_MEMBER_JOIN = 1
SERF_EVENT_MEMBER_LEAVE = 2
SERF_EVENT_MEMBER_FAILED = 3
SERF_EVENT_MEMBER_UPDATE = 4
SERF_EVENT_MEMBER_REAP = 5
SERF_EVENT_USER = 6
SERF_EVENT_QUERY = 7
SERF_EVENT_SHUTDOWN = 8

SERF_KEY_INSTALL = 1
SERF_KEY_USE = 2
SERF_KEY_REMOVE = 3
SERF_KEY_LIST = 4

SERF_LOG_OFF = 0
SERF_LOG_ERROR = 1
SERF_LOG_WARN = 2
SERF_LOG_INFO = 3
SERF_LOG_DEBUG = 4

SERF_MEMBER_NONE = 0
SERF_MEMBER_ALIVE = 1
SERF_MEMBER_LEAVING = 2
SERF_MEMBER_LEFT = 3
SERF_MEMBER_FAILED = 4

SERF_QUERY_ACK = 1
SERF_QUERY_RESPONSE = 2
SERF_QUERY_DONE = 3

SERF_COORDINATE_DIMENSIONS = 8

# Knob name -> SERF_TUNE_<NAME> value.
TUNING_KNOBS = {
    "probe_interval_ms": 1,
    "probe_timeout_ms": 2,
    "gossip_interval_ms": 3,
    "gossip_nodes": 4,
    "gossip_to_the_dead_ms": 5,
    "indirect_checks": 6,
    "retransmit_mult": 7,
    "suspicion_mult": 8,
    "suspicion_max_timeout_mult": 9,
    "push_pull_interval_ms": 10,
    "tcp_timeout_ms": 11,
    "reap_interval_ms": 12,
    "reconnect_interval_ms": 13,
    "reconnect_timeout_ms": 14,
    "tombstone_timeout_ms": 15,
    "broadcast_timeout_ms": 16,
    "leave_propagate_delay_ms": 17,
    "gossip_backlog_nodes": 18,
}


class serf_coordinate(Structure):
    _fields_ = [
        ("vec", c_double * SERF_COORDINATE_DIMENSIONS),
        ("error", c_double),
        ("adjustment", c_double),
        ("height", c_double),
    ]


class serf_query_update(Structure):
    _fields_ = [
        ("kind", c_uint32),
        ("from_", c_char_p),
        ("payload", c_void_p),
        ("payload_len", c_size_t),
    ]


class LibraryNotFoundError(ImportError):
    """libserf could not be loaded, or it is too old for this pyserf."""


P = c_void_p  # every opaque handle
PP = POINTER(c_void_p)
S = c_int32  # enum serf_status

# name: (restype, [argtypes]). Payload pointers are declared c_char_p so `bytes` pass directly
# (the length is always passed separately, so embedded NULs are fine).
_SIGNATURES: dict[str, tuple[Any, List[Any]]] = {
    "serf_version": (c_char_p, []),
    "serf_last_error_message": (c_char_p, []),
    "serf_status_name": (c_char_p, [c_int32]),
    # config
    "serf_config_new": (S, [PP]),
    "serf_config_free": (None, [P]),
    "serf_config_set_node_name": (S, [P, c_char_p]),
    "serf_config_set_bind": (S, [P, c_char_p, c_uint16]),
    "serf_config_set_advertise": (S, [P, c_char_p, c_uint16]),
    "serf_config_set_profile": (S, [P, c_uint32]),
    "serf_config_set_tuning": (S, [P, c_uint32, c_uint64]),
    "serf_config_set_tag": (S, [P, c_char_p, c_char_p]),
    "serf_config_add_key": (S, [P, c_char_p, c_size_t]),
    "serf_config_add_key_base64": (S, [P, c_char_p]),
    "serf_config_set_keyring_file": (S, [P, c_char_p]),
    "serf_config_set_label": (S, [P, c_char_p]),
    "serf_config_set_snapshot_path": (S, [P, c_char_p]),
    "serf_config_set_rejoin_after_leave": (S, [P, c_bool]),
    "serf_config_set_coalesce": (S, [P, c_uint64, c_uint64]),
    "serf_config_set_user_coalesce": (S, [P, c_uint64, c_uint64]),
    "serf_config_set_protocol_version": (S, [P, c_uint8]),
    "serf_config_set_event_queue_capacity": (S, [P, c_size_t]),
    "serf_config_set_disable_coordinates": (S, [P, c_bool]),
    "serf_config_set_log_level": (S, [P, c_uint32]),
    # node lifecycle
    "serf_create": (S, [P, PP]),
    "serf_join": (S, [P, POINTER(c_char_p), c_size_t, c_bool, POINTER(c_size_t)]),
    "serf_leave": (S, [P]),
    "serf_shutdown": (S, [P]),
    "serf_free": (None, [P]),
    "serf_force_leave": (S, [P, c_char_p, c_bool]),
    "serf_set_tag": (S, [P, c_char_p, c_char_p]),
    "serf_delete_tag": (S, [P, c_char_p]),
    "serf_send_event": (S, [P, c_char_p, c_char_p, c_size_t, c_bool]),
    "serf_local_port": (S, [P, POINTER(c_uint16)]),
    # events
    "serf_poll_event": (S, [P, c_int64, PP]),
    "serf_try_event": (S, [P, PP]),
    "serf_event_fd": (c_int32, [P]),
    "serf_dropped_events": (c_uint64, [P]),
    "serf_event_free": (None, [P]),
    "serf_event_type": (c_uint32, [P]),
    "serf_event_member_count": (c_size_t, [P]),
    "serf_event_member": (P, [P, c_size_t]),
    "serf_event_name": (c_char_p, [P]),
    "serf_event_payload": (c_void_p, [P, POINTER(c_size_t)]),
    "serf_event_ltime": (c_uint64, [P]),
    "serf_event_coalesce": (c_bool, [P]),
    "serf_event_query_id": (c_uint32, [P]),
    "serf_event_query_source": (c_char_p, [P]),
    "serf_event_query_remaining_ms": (c_uint64, [P]),
    "serf_event_shutdown_reason": (c_char_p, [P]),
    "serf_query_respond": (S, [P, P, c_char_p, c_size_t]),
    # keys
    "serf_key_operation": (S, [P, c_uint32, c_char_p, PP]),
    "serf_key_result_free": (None, [P]),
    "serf_key_result_num_nodes": (c_size_t, [P]),
    "serf_key_result_num_responses": (c_size_t, [P]),
    "serf_key_result_num_errors": (c_size_t, [P]),
    "serf_key_result_error": (c_char_p, [P]),
    "serf_key_result_message_count": (c_size_t, [P]),
    "serf_key_result_message_at": (c_bool, [P, c_size_t, POINTER(c_char_p), POINTER(c_char_p)]),
    "serf_key_result_key_count": (c_size_t, [P]),
    "serf_key_result_key_at": (c_bool, [P, c_size_t, POINTER(c_char_p), POINTER(c_size_t)]),
    "serf_key_result_primary_key_count": (c_size_t, [P]),
    "serf_key_result_primary_key_at": (
        c_bool,
        [P, c_size_t, POINTER(c_char_p), POINTER(c_size_t)],
    ),
    # members
    "serf_members": (S, [P, PP]),
    "serf_local_member": (S, [P, PP]),
    "serf_members_free": (None, [P]),
    "serf_members_count": (c_size_t, [P]),
    "serf_members_get": (P, [P, c_size_t]),
    "serf_member_name": (c_char_p, [P]),
    "serf_member_addr": (c_char_p, [P]),
    "serf_member_port": (c_uint16, [P]),
    "serf_member_status": (c_uint32, [P]),
    "serf_member_status_name": (c_char_p, [c_uint32]),
    "serf_member_versions": (c_bool, [P, POINTER(c_uint8)]),
    "serf_member_tag_count": (c_size_t, [P]),
    "serf_member_tag_at": (c_bool, [P, c_size_t, POINTER(c_char_p), POINTER(c_char_p)]),
    # stats, coordinates
    "serf_string_free": (None, [c_void_p]),
    "serf_stats_json": (S, [P, PP]),
    "serf_coordinate_get": (S, [P, c_char_p, POINTER(serf_coordinate)]),
    "serf_rtt": (S, [P, c_char_p, c_char_p, POINTER(c_double)]),
    # queries
    "serf_query_params_new": (S, [PP]),
    "serf_query_params_free": (None, [P]),
    "serf_query_params_add_node": (S, [P, c_char_p]),
    "serf_query_params_add_tag": (S, [P, c_char_p, c_char_p]),
    "serf_query_params_set_request_ack": (S, [P, c_bool]),
    "serf_query_params_set_relay_factor": (S, [P, c_uint8]),
    "serf_query_params_set_timeout_ms": (S, [P, c_uint64]),
    "serf_query": (S, [P, c_char_p, c_char_p, c_size_t, P, PP]),
    "serf_query_next": (S, [P, c_int64, POINTER(serf_query_update)]),
    "serf_query_is_done": (c_bool, [P]),
    "serf_query_remaining_ms": (c_uint64, [P]),
    "serf_query_fd": (c_int32, [P]),
    "serf_query_free": (None, [P]),
}


def _candidates() -> List[str]:
    env = os.environ.get("PYSERF_LIB")
    if env:
        return [env]  # an explicit override is the only candidate: never silently fall back
    here = Path(__file__).resolve().parent
    names = ["libserf.dylib"] if sys.platform == "darwin" else ["libserf.so"]
    out = [str(here / n) for n in names]
    # In-tree checkout: bindings/python/pyserf -> repository root.
    root = here.parent.parent.parent
    out += [str(root / "target" / "release" / n) for n in names]
    return out


def _parse_version(text: str) -> tuple[int, int, int]:
    parts = (text.split("-")[0].split(".") + ["0", "0", "0"])[:3]
    return (int(parts[0]), int(parts[1]), int(parts[2]))


def _load() -> ctypes.CDLL:
    tried: List[str] = []
    lib: Optional[ctypes.CDLL] = None
    for path in _candidates():
        if not os.path.exists(path):
            tried.append(f"{path} (not found)")
            continue
        try:
            lib = ctypes.CDLL(path)
            break
        except OSError as e:
            tried.append(f"{path} ({e})")
    if lib is None:
        raise LibraryNotFoundError(
            "pyserf: cannot load libserf. Tried: "
            + "; ".join(tried)
            + ". Reinstall pyserf (pip install ./bindings/python builds it with cargo) or set "
            "PYSERF_LIB to the path of libserf.so."
        )
    missing = [n for n in _SIGNATURES if not hasattr(lib, n)]
    if "serf_version" in missing:
        raise LibraryNotFoundError(f"pyserf: {lib._name} is not libserf (no serf_version)")
    ver_raw = lib.serf_version
    ver_raw.restype = c_char_p
    ver_raw.argtypes = []
    text = (ver_raw() or b"").decode()
    try:
        ver = _parse_version(text)
    except ValueError:
        raise LibraryNotFoundError(f"pyserf: unreadable libserf version {text!r}") from None
    if ver[0] != REQUIRED_VERSION[0] or ver[:2] < REQUIRED_VERSION[:2] or missing:
        raise LibraryNotFoundError(
            f"pyserf: libserf {text} at {lib._name} is incompatible: pyserf needs "
            f"{REQUIRED_VERSION[0]}.{REQUIRED_VERSION[1]}.x (>= "
            f"{'.'.join(map(str, REQUIRED_VERSION))})"
            + (f"; missing symbols: {', '.join(missing)}" if missing else "")
        )
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


lib: Any = _load()
LIBRARY_PATH: str = lib._name
LIBRARY_VERSION: str = lib.serf_version().decode()
