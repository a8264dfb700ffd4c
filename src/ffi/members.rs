//! Member lists and per-member accessors.

use std::ffi::{c_char, CString};

use super::node::{on_node, serf_t};
use super::status::{
    guard_value, out_arg, release, serf_status, str_arg, to_cstring, write_pair, Fail,
};
use crate::api::{Member, MemberStatus};

pub const SERF_MEMBER_NONE: u32 = 0;
pub const SERF_MEMBER_ALIVE: u32 = 1;
/// It announced it is leaving.
pub const SERF_MEMBER_LEAVING: u32 = 2;
pub const SERF_MEMBER_LEFT: u32 = 3;
pub const SERF_MEMBER_FAILED: u32 = 4;

/// One member: an immutable snapshot taken when its list or event was fetched. Opaque and
/// always borrowed: every `serf_member_t *` the library hands out belongs to a
/// `serf_members_t` or a `serf_event_t` and is valid until that owner is freed; there is no
/// call that frees a member. Read-only, so usable from several threads at once.
pub struct serf_member_t {
    name: CString,
    addr: CString,
    port: u16,
    status: u32,
    tags: Vec<(CString, CString)>,
    versions: [u8; 6],
}

impl serf_member_t {
    pub(crate) fn new(m: &Member) -> serf_member_t {
        serf_member_t {
            name: to_cstring(&m.name),
            addr: to_cstring(&m.addr.to_string()),
            port: m.port,
            status: match m.status {
                MemberStatus::None => SERF_MEMBER_NONE,
                MemberStatus::Alive => SERF_MEMBER_ALIVE,
                MemberStatus::Leaving => SERF_MEMBER_LEAVING,
                MemberStatus::Left => SERF_MEMBER_LEFT,
                MemberStatus::Failed => SERF_MEMBER_FAILED,
            },
            tags: m
                .tags
                .iter()
                .map(|(k, v)| (to_cstring(k), to_cstring(v)))
                .collect(),
            versions: [
                m.protocol[0],
                m.protocol[1],
                m.protocol[2],
                m.delegate[0],
                m.delegate[1],
                m.delegate[2],
            ],
        }
    }
}

/// A snapshot of members, owning each `serf_member_t` it lends. Opaque; from `serf_members` or
/// `serf_local_member`, released with `serf_members_free`.
/// Read-only, so usable from several threads at once.
pub struct serf_members_t {
    members: Vec<serf_member_t>,
}

/// Hands a sorted snapshot of `members` to the caller through `out`.
fn hand_out(
    serf: *const serf_t,
    function: &str,
    out: *mut *mut serf_members_t,
    members: impl FnOnce(&serf_t) -> Result<Vec<Member>, Fail>,
) -> serf_status {
    on_node(serf, function, |n| {
        out_arg(out, "out")?;
        let mut members: Vec<serf_member_t> = members(n)?.iter().map(serf_member_t::new).collect();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        // SAFETY: checked non-NULL.
        unsafe { *out = Box::into_raw(Box::new(serf_members_t { members })) };
        Ok(())
    })
}

/// Every member this node knows (itself included; failed and left ones until reaped), as a
/// snapshot owned by the caller: free it with `serf_members_free`. Errors: SERF_ERR_NULL,
/// SERF_ERR_STOPPED (after `serf_shutdown`; still works after `serf_leave`).
#[no_mangle]
pub extern "C" fn serf_members(serf: *const serf_t, out: *mut *mut serf_members_t) -> serf_status {
    hand_out(serf, "serf_members", out, |n| Ok(n.serf.members()?))
}

/// This node as a member: a list holding just this node (`serf_members_get(list, 0)`), owned
/// by the caller like any list: free it with `serf_members_free`. Errors: SERF_ERR_NULL,
/// SERF_ERR_STOPPED (after `serf_shutdown`).
#[no_mangle]
pub extern "C" fn serf_local_member(
    serf: *const serf_t,
    out: *mut *mut serf_members_t,
) -> serf_status {
    hand_out(serf, "serf_local_member", out, |n| {
        Ok(vec![n.serf.local_member()?])
    })
}

/// Releases a member list and every `serf_member_t` borrowed from it. NULL is a no-op.
#[no_mangle]
pub extern "C" fn serf_members_free(list: *mut serf_members_t) {
    release(list)
}

/// How many members the list holds (0 for NULL).
#[no_mangle]
pub extern "C" fn serf_members_count(list: *const serf_members_t) -> usize {
    // SAFETY: NULL or a live list.
    guard_value(0, || {
        unsafe { list.as_ref() }.map_or(0, |l| l.members.len())
    })
}

/// The member at `index` (sorted by name), borrowed from the list: valid until
/// `serf_members_free(list)`. NULL when `list` is NULL or `index` is out of range.
#[no_mangle]
pub extern "C" fn serf_members_get(
    list: *const serf_members_t,
    index: usize,
) -> *const serf_member_t {
    guard_value(std::ptr::null(), || {
        // SAFETY: NULL or a live list.
        unsafe { list.as_ref() }
            .and_then(|l| l.members.get(index))
            .map_or(std::ptr::null(), |m| m as *const serf_member_t)
    })
}

fn member<'a>(m: *const serf_member_t) -> Option<&'a serf_member_t> {
    // SAFETY: NULL or a live member (documented on every accessor).
    unsafe { m.as_ref() }
}

/// The member's name, borrowed from the member (valid while it is). NULL for a NULL member.
#[no_mangle]
pub extern "C" fn serf_member_name(m: *const serf_member_t) -> *const c_char {
    guard_value(std::ptr::null(), || {
        member(m).map_or(std::ptr::null(), |m| m.name.as_ptr())
    })
}

/// The member's IP address as text ("127.0.0.1", "::1"), borrowed from the member. NULL for NULL.
#[no_mangle]
pub extern "C" fn serf_member_addr(m: *const serf_member_t) -> *const c_char {
    guard_value(std::ptr::null(), || {
        member(m).map_or(std::ptr::null(), |m| m.addr.as_ptr())
    })
}

/// The member's gossip port (0 for NULL).
#[no_mangle]
pub extern "C" fn serf_member_port(m: *const serf_member_t) -> u16 {
    guard_value(0, || member(m).map_or(0, |m| m.port))
}

/// The member's status, a `SERF_MEMBER_*` value (`SERF_MEMBER_NONE` for NULL).
#[no_mangle]
pub extern "C" fn serf_member_status(m: *const serf_member_t) -> u32 {
    guard_value(SERF_MEMBER_NONE, || {
        member(m).map_or(SERF_MEMBER_NONE, |m| m.status)
    })
}

/// The status as HashiCorp's text ("alive", "leaving", "left", "failed", "none"); static.
#[no_mangle]
pub extern "C" fn serf_member_status_name(status: u32) -> *const c_char {
    let s: &std::ffi::CStr = match status {
        SERF_MEMBER_ALIVE => c"alive",
        SERF_MEMBER_LEAVING => c"leaving",
        SERF_MEMBER_LEFT => c"left",
        SERF_MEMBER_FAILED => c"failed",
        _ => c"none",
    };
    s.as_ptr()
}

/// The member's protocol versions into `out[0..6]`: memberlist min, max, current, then serf
/// min, max, current. Returns false (writing nothing) when either pointer is NULL.
#[no_mangle]
pub extern "C" fn serf_member_versions(m: *const serf_member_t, out: *mut u8) -> bool {
    guard_value(false, || match member(m) {
        Some(m) if out_arg(out, "out").is_ok() => {
            // SAFETY: the caller provides room for 6 bytes.
            unsafe { std::ptr::copy_nonoverlapping(m.versions.as_ptr(), out, 6) };
            true
        }
        _ => false,
    })
}

/// How many tags the member has (0 for NULL).
#[no_mangle]
pub extern "C" fn serf_member_tag_count(m: *const serf_member_t) -> usize {
    guard_value(0, || member(m).map_or(0, |m| m.tags.len()))
}

/// The tag at `index` (sorted by key) into `*key` and `*value`, both borrowed from the member.
/// Returns false (writing nothing) for NULL arguments or an index out of range.
#[no_mangle]
pub extern "C" fn serf_member_tag_at(
    m: *const serf_member_t,
    index: usize,
    key: *mut *const c_char,
    value: *mut *const c_char,
) -> bool {
    guard_value(false, || {
        let tag = member(m).and_then(|m| m.tags.get(index));
        write_pair(tag.map(|(k, v)| (k.as_ptr(), v.as_ptr())), key, value)
    })
}

/// The value of tag `key` (a C string, borrowed for the call), borrowed from the member; NULL
/// when the member has no such tag or an argument is NULL or not UTF-8.
#[no_mangle]
pub extern "C" fn serf_member_tag(m: *const serf_member_t, key: *const c_char) -> *const c_char {
    guard_value(std::ptr::null(), || {
        let Some(m) = member(m) else {
            return std::ptr::null();
        };
        // SAFETY: NULL or a C string borrowed for this call.
        let Ok(key) = (unsafe { str_arg(key, "key") }) else {
            return std::ptr::null();
        };
        m.tags
            .iter()
            .find(|(k, _)| k.to_bytes() == key.as_bytes())
            .map_or(std::ptr::null(), |(_, v)| v.as_ptr())
    })
}
