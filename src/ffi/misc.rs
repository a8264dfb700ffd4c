//! Stats as JSON, network coordinates and RTT, owned strings, the version.

use std::ffi::{c_char, CString};
use std::fmt::Write as _;

use super::node::{on_node, serf_t};
use super::status::{guard_value, out_arg, serf_status, str_arg, Fail};

pub const SERF_VERSION_MAJOR: u32 = 0;
pub const SERF_VERSION_MINOR: u32 = 1;
pub const SERF_VERSION_PATCH: u32 = 0;

/// Dimensions of a Vivaldi coordinate (HashiCorp's default, 8).
pub const SERF_COORDINATE_DIMENSIONS: usize = 8;

/// A Vivaldi network coordinate (`coordinate.Coordinate`), copied out by value.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct serf_coordinate {
    pub vec: [f64; SERF_COORDINATE_DIMENSIONS],
    pub error: f64,
    pub adjustment: f64,
    pub height: f64,
}

/// The library version as a NUL-terminated string ("major.minor.patch"). The pointer is static:
/// never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn serf_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Releases a string the library handed over (`serf_stats_json`). NULL is a no-op.
#[no_mangle]
pub extern "C" fn serf_string_free(s: *mut c_char) {
    guard_value((), || {
        if !s.is_null() {
            // SAFETY: allocated by CString::into_raw in this library, freed once.
            drop(unsafe { CString::from_raw(s) });
        }
    })
}

/// The node's counters as a JSON object, owned by the caller (free with `serf_string_free`):
/// `{"members":3,"failed":0,"left":0,"health_score":0,"member_time":5,"event_time":2,
/// "query_time":1,"encrypted":false,"coordinate_resets":0,"event_queue":0,"dropped_events":0}`
/// (keys may be added in later versions). Errors: SERF_ERR_NULL, SERF_ERR_STOPPED.
#[no_mangle]
pub extern "C" fn serf_stats_json(serf: *const serf_t, out: *mut *mut c_char) -> serf_status {
    on_node(serf, "serf_stats_json", |n| {
        out_arg(out, "out")?;
        let s = n.serf.stats()?;
        let mut j = String::from("{");
        let _ = write!(
            j,
            "\"members\":{},\"failed\":{},\"left\":{},\"health_score\":{},\"member_time\":{},\
             \"event_time\":{},\"query_time\":{},\"encrypted\":{},\"coordinate_resets\":{},\
             \"event_queue\":{},\"dropped_events\":{}}}",
            s.members,
            s.failed,
            s.left,
            s.health_score,
            s.member_time,
            s.event_time,
            s.query_time,
            s.encrypted,
            s.coordinate_resets,
            s.event_queue,
            s.dropped_events
        );
        let c = CString::new(j)
            .map_err(|_| Fail::new(serf_status::SERF_ERR_INTERNAL, "NUL in JSON"))?;
        // SAFETY: checked non-NULL.
        unsafe { *out = c.into_raw() };
        Ok(())
    })
}

/// The network coordinate this node holds for `node` (a C string, borrowed; NULL for this node
/// itself), copied into `*out`. Errors: SERF_ERR_NULL (serf/out), SERF_ERR_UTF8,
/// SERF_ERR_NOT_FOUND (coordinates disabled, or none known for that node yet), SERF_ERR_STOPPED.
#[no_mangle]
pub extern "C" fn serf_coordinate_get(
    serf: *const serf_t,
    node: *const c_char,
    out: *mut serf_coordinate,
) -> serf_status {
    on_node(serf, "serf_coordinate_get", |n| {
        out_arg(out, "out")?;
        let c = if node.is_null() {
            n.serf.coordinate()?
        } else {
            // SAFETY: a C string borrowed for this call.
            n.serf
                .cached_coordinate(unsafe { str_arg(node, "node") }?)?
        };
        let c =
            c.ok_or_else(|| Fail::new(serf_status::SERF_ERR_NOT_FOUND, "no coordinate known"))?;
        let mut vec = [0.0; SERF_COORDINATE_DIMENSIONS];
        for (dst, src) in vec.iter_mut().zip(c.vec.iter().flatten()) {
            *dst = *src;
        }
        // SAFETY: checked non-NULL.
        unsafe {
            *out = serf_coordinate {
                vec,
                error: c.error,
                adjustment: c.adjustment,
                height: c.height,
            }
        };
        Ok(())
    })
}

/// The estimated round-trip time between members `a` and `b` (C strings, borrowed) from their
/// coordinates, in seconds, into `*seconds`. Errors: SERF_ERR_NULL, SERF_ERR_UTF8,
/// SERF_ERR_NOT_FOUND (a coordinate is unknown here), SERF_ERR_STOPPED.
#[no_mangle]
pub extern "C" fn serf_rtt(
    serf: *const serf_t,
    a: *const c_char,
    b: *const c_char,
    seconds: *mut f64,
) -> serf_status {
    on_node(serf, "serf_rtt", |n| {
        out_arg(seconds, "seconds")?;
        // SAFETY: C strings borrowed for this call.
        let (a, b) = unsafe { (str_arg(a, "a")?, str_arg(b, "b")?) };
        let d = n.serf.rtt(a, b)?.ok_or_else(|| {
            Fail::new(
                serf_status::SERF_ERR_NOT_FOUND,
                "no coordinate for one of the nodes",
            )
        })?;
        // SAFETY: checked non-NULL.
        unsafe { *seconds = d.as_secs_f64() };
        Ok(())
    })
}
