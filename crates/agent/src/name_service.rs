//! Where the agent looks names up: `/etc/hosts`, then DNS, as HashiCorp's agent does.
//!
//! HashiCorp builds serf without cgo, so Go's own resolver answers its lookups: it reads
//! `/etc/hosts` and `/etc/services` and asks the name servers of `/etc/resolv.conf`, and never
//! loads one of the host's NSS modules (mDNS, systemd-resolved, LDAP). glibc instead follows
//! `/etc/nsswitch.conf`, loading whatever module it names. In the shipped agent, which links
//! glibc statically (see the Makefile's `dist`), that would be a module built against the host's
//! glibc, dragging the host's `libc.so` into a process that already holds another libc. So the
//! agent sets the two databases it reads to the sources glibc has built in, before its first
//! lookup: every lookup then stays inside the binary, and answers as Go's would.

/// Points the `hosts` database at `files dns` and `services` at `files` for this process.
/// Call before any thread starts: glibc reads the setting unsynchronised.
pub fn use_builtin_sources() {
    #[cfg(target_env = "gnu")]
    {
        use std::ffi::{c_char, c_int, CStr};

        extern "C" {
            /// glibc's `<nss.h>`: replaces the service line of one database.
            fn __nss_configure_lookup(dbname: *const c_char, service_line: *const c_char) -> c_int;
        }
        let databases: [(&CStr, &CStr); 2] = [(c"hosts", c"files dns"), (c"services", c"files")];
        for (database, sources) in databases {
            // SAFETY: both arguments are NUL-terminated strings with static lifetime, and no
            // other thread runs yet to look a name up meanwhile.
            unsafe {
                __nss_configure_lookup(database.as_ptr(), sources.as_ptr());
            }
        }
    }
}
