//! Status codes, the per-thread last error message, and the panic/NULL/UTF-8 boundary every
//! exported function goes through.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::api::{Error, SerfError};
use crate::runtime::panic_message;

/// What a fallible `serf_*` function returns. `SERF_OK` (0) is success; on any other value the
/// out-pointers are left untouched (or set to NULL where stated) and `serf_last_error_message()`
/// describes the failure.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum serf_status {
    /// Success.
    SERF_OK = 0,
    /// A required pointer argument was NULL.
    SERF_ERR_NULL = 1,
    /// A string argument was not valid UTF-8.
    SERF_ERR_UTF8 = 2,
    /// An argument was out of range or malformed (address, key, option value...).
    SERF_ERR_INVALID = 3,
    /// A payload, name or tag set is larger than the protocol allows.
    SERF_ERR_TOO_LARGE = 4,
    /// Nothing happened within the time allowed.
    SERF_ERR_TIMEOUT = 5,
    /// The named member, tag or pending query does not exist.
    SERF_ERR_NOT_FOUND = 6,
    /// The node has left or was shut down; it does no more work.
    SERF_ERR_STOPPED = 7,
    /// An operating-system error (binding sockets, reading a file...).
    SERF_ERR_IO = 8,
    /// A join reached none of the given addresses.
    SERF_ERR_JOIN = 9,
    /// A bug in libserf (an internal error or a caught panic); the handle stays usable.
    SERF_ERR_INTERNAL = 10,
}

/// A failure on its way to C: a status and the message kept for `serf_last_error_message()`.
#[derive(Debug)]
pub(crate) struct Fail {
    pub status: serf_status,
    pub message: String,
}

impl Fail {
    pub fn new(status: serf_status, message: impl Into<String>) -> Fail {
        Fail {
            status,
            message: message.into(),
        }
    }

    pub fn null(what: &str) -> Fail {
        Fail::new(serf_status::SERF_ERR_NULL, format!("{what} is NULL"))
    }

    pub fn invalid(message: impl Into<String>) -> Fail {
        Fail::new(serf_status::SERF_ERR_INVALID, message)
    }

    pub fn too_large(message: impl Into<String>) -> Fail {
        Fail::new(serf_status::SERF_ERR_TOO_LARGE, message)
    }
}

fn serf_error_status(e: &SerfError) -> serf_status {
    use serf_status::*;
    match e {
        SerfError::TagsTooLarge { .. }
        | SerfError::UserEventTooLarge(_)
        | SerfError::QueryTooLarge { .. }
        | SerfError::ResponseTooLarge
        | SerfError::RelayedResponseTooLarge => SERF_ERR_TOO_LARGE,
        SerfError::NotAlive | SerfError::LeaveInProgress => SERF_ERR_STOPPED,
        SerfError::UnknownMember(_)
        | SerfError::NoPendingQuery
        | SerfError::ResponseAlreadySent
        | SerfError::ResponsePastDeadline => SERF_ERR_NOT_FOUND,
        SerfError::ProtocolVersion(_) | SerfError::FeatureNotSupported | SerfError::Config(_) => {
            SERF_ERR_INVALID
        }
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        use serf_status::*;
        let status = match &e {
            Error::Serf(s) => serf_error_status(s),
            Error::Bind { .. } | Error::Io(_) => SERF_ERR_IO,
            Error::Address(_) | Error::NoAdvertise(_) | Error::Key(_) => SERF_ERR_INVALID,
            Error::JoinFailed(_) => SERF_ERR_JOIN,
            Error::Timeout(_) => SERF_ERR_TIMEOUT,
            Error::Stopped => SERF_ERR_STOPPED,
            Error::Runtime(_) => SERF_ERR_INTERNAL,
        };
        Fail::new(status, e.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

pub(crate) fn set_last_error(message: &str) {
    let c = to_cstring(message);
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// The thread's last error message as Rust text.
pub(crate) fn last_error_text() -> String {
    LAST_ERROR.with(|e| e.borrow().to_string_lossy().into_owned())
}

/// A C string from any Rust string: interior NULs (possible in names from the wire) become U+FFFD.
pub(crate) fn to_cstring(s: &str) -> CString {
    CString::new(s)
        .unwrap_or_else(|_| CString::new(s.replace('\0', "\u{FFFD}")).expect("no NUL left"))
}

/// Runs an exported function's body: panics and failures become a status and the thread's
/// last error message.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Fail>) -> serf_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => serf_status::SERF_OK,
        Ok(Err(fail)) => {
            set_last_error(&fail.message);
            fail.status
        }
        Err(panic) => {
            set_last_error(&format!(
                "internal error (panic): {}",
                panic_message(panic.as_ref())
            ));
            serf_status::SERF_ERR_INTERNAL
        }
    }
}

/// For functions that return a value rather than a status: `fallback` on panic.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        set_last_error(&format!(
            "internal error (panic): {}",
            panic_message(panic.as_ref())
        ));
        fallback
    })
}

/// Frees what a `serf_*_new`/`serf_*` call handed over as a `Box`: the body of every
/// `serf_*_free` but `serf_free`. NULL is a no-op.
pub(crate) fn release<T>(owned: *mut T) {
    guard_value((), || {
        if !owned.is_null() {
            // SAFETY: the caller passes NULL or what this library boxed and handed out, and
            // frees it once (the contract of every `serf_*_free`).
            drop(unsafe { Box::from_raw(owned) });
        }
    })
}

/// Writes `pair` to `*first` and `*second`: the body of every `serf_*_at` accessor. False,
/// writing nothing, when there is no pair (NULL handle, index out of range) or an out-pointer
/// is NULL.
pub(crate) fn write_pair<A, B>(pair: Option<(A, B)>, first: *mut A, second: *mut B) -> bool {
    let Some((a, b)) = pair else {
        return false;
    };
    if first.is_null() || second.is_null() {
        return false;
    }
    // SAFETY: checked non-NULL; the caller passes pointers writable for one value each.
    unsafe {
        *first = a;
        *second = b;
    }
    true
}

/// Longest string argument accepted (names, addresses, tags, paths): 64 KiB.
pub(crate) const MAX_STRING: usize = 64 * 1024;
/// Largest byte argument accepted before the protocol's own limits are even checked: 1 MiB.
pub(crate) const MAX_BYTES: usize = 1024 * 1024;

/// A borrowed C string as `&str`: NULL, non-UTF-8 and over-long strings are refused.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives the returned borrow.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Fail> {
    if ptr.is_null() {
        return Err(Fail::null(what));
    }
    // Bounded scan, so an unterminated buffer does not read forever.
    let mut len = 0usize;
    while *ptr.add(len) != 0 {
        len += 1;
        if len > MAX_STRING {
            return Err(Fail::too_large(format!(
                "{what} is longer than {MAX_STRING} bytes"
            )));
        }
    }
    CStr::from_ptr(ptr).to_str().map_err(|_| {
        Fail::new(
            serf_status::SERF_ERR_UTF8,
            format!("{what} is not valid UTF-8"),
        )
    })
}

/// A borrowed `(ptr, len)` byte buffer; NULL is allowed only with `len == 0`.
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes that outlive the returned borrow.
pub(crate) unsafe fn bytes_arg<'a>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Fail> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Fail::null(what));
    }
    if len > MAX_BYTES {
        return Err(Fail::too_large(format!(
            "{what} is {len} bytes, more than {MAX_BYTES}"
        )));
    }
    Ok(std::slice::from_raw_parts(ptr, len))
}

/// A handle argument as a reference.
///
/// # Safety
/// `ptr` is NULL or a live handle of type `T` created by this library.
pub(crate) unsafe fn handle<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Fail> {
    ptr.as_ref().ok_or_else(|| Fail::null(what))
}

/// A mutable handle argument.
///
/// # Safety
/// As [`handle`], and not used from another thread meanwhile.
pub(crate) unsafe fn handle_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Fail> {
    ptr.as_mut().ok_or_else(|| Fail::null(what))
}

/// Checks an out-pointer is not NULL.
pub(crate) fn out_arg<T>(ptr: *mut T, what: &str) -> Result<(), Fail> {
    if ptr.is_null() {
        Err(Fail::null(what))
    } else {
        Ok(())
    }
}

/// The message of the last failed `serf_*` call on this thread (empty if none failed yet), as a
/// NUL-terminated UTF-8 string. The pointer belongs to the library and stays valid until the next
/// failing `serf_*` call on this thread; copy it to keep it. Never NULL. Thread-safe (each thread
/// has its own message).
#[no_mangle]
pub extern "C" fn serf_last_error_message() -> *const c_char {
    guard_value(c"internal error".as_ptr(), || {
        LAST_ERROR.with(|e| e.borrow().as_ptr())
    })
}

/// A short static name for a status code ("SERF_OK", "SERF_ERR_NULL", ...); "unknown status"
/// for values outside the enum. Never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn serf_status_name(status: i32) -> *const c_char {
    let name: &CStr = match status {
        0 => c"SERF_OK",
        1 => c"SERF_ERR_NULL",
        2 => c"SERF_ERR_UTF8",
        3 => c"SERF_ERR_INVALID",
        4 => c"SERF_ERR_TOO_LARGE",
        5 => c"SERF_ERR_TIMEOUT",
        6 => c"SERF_ERR_NOT_FOUND",
        7 => c"SERF_ERR_STOPPED",
        8 => c"SERF_ERR_IO",
        9 => c"SERF_ERR_JOIN",
        10 => c"SERF_ERR_INTERNAL",
        _ => c"unknown status",
    };
    name.as_ptr()
}
