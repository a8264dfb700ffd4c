//! Vivaldi network coordinates and the round-trip times estimated from them.

use std::ffi::c_char;

use super::node::{on_node, serf_t};
use super::status::{out_arg, serf_status, str_arg, Fail};

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
