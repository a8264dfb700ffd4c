//! Gives back the code pages only start-up touched, so the agent's resident set is what it runs.
//!
//! Most of an idle agent's RSS is file pages: the text and read-only data of the binary and of
//! libc, mapped in 64 KiB windows around every page the program touches (the kernel's
//! fault-around). Parsing flags and configuration, resolving, binding, starting the servers
//! and joining run code that never runs again, and its pages would stay counted in the agent's
//! RSS for its whole life. Once the agent runs, it drops its mappings of those pages with
//! `MADV_DONTNEED`: the pages stay in the page cache (shared and reclaimable, nothing to read
//! from disk to get them back), and the code the agent keeps running maps back in on first use,
//! as minor faults.
//!
//! Only mappings that are plain views of a file are dropped: private, not writable, and holding
//! no anonymous page. That excludes relocated read-only data (RELRO) and anything patched
//! in place, whose contents differ from the file's and would be lost.

use std::fs;

/// One mapping of `/proc/self/smaps` that may be dropped.
struct FileView {
    start: usize,
    len: usize,
}

/// Drops this process's mappings of clean file pages; returns how many bytes were mapped.
/// Best effort: a mapping the kernel refuses to advise is left as it is.
pub fn release_file_pages() -> usize {
    let Ok(smaps) = fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut released = 0;
    for view in file_views(&smaps) {
        // SAFETY: the range is a whole mapping of this process, read-only, private and without
        // anonymous pages: every page in it equals the file's and is mapped again on access.
        let r = unsafe {
            libc::madvise(
                view.start as *mut libc::c_void,
                view.len,
                libc::MADV_DONTNEED,
            )
        };
        if r == 0 {
            released += view.len;
        }
    }
    released
}

/// The mappings of `smaps` (the text of `/proc/<pid>/smaps`) whose pages all equal their file's.
fn file_views(smaps: &str) -> Vec<FileView> {
    let mut views = Vec::new();
    let mut current: Option<FileView> = None;
    for line in smaps.lines() {
        if let Some(header) = mapping_header(line) {
            views.extend(current.take());
            current = header;
        } else if let Some(kb) = line.strip_prefix("Anonymous:") {
            if kb.trim() != "0 kB" {
                current = None;
            }
        }
    }
    views.extend(current);
    views
}

/// `Some(view)` for the header line of a clean-candidate mapping, `Some(None)` for the header of
/// any other mapping, `None` for a line that is not a header.
fn mapping_header(line: &str) -> Option<Option<FileView>> {
    let mut fields = line.split_ascii_whitespace();
    let range = fields.next()?;
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?.as_bytes();
    if perms.len() != 4 {
        return None;
    }
    let inode = fields.nth(2)?;
    let path = fields.next().unwrap_or("");
    let clean_candidate =
        perms[1] == b'-' && perms[3] == b'p' && inode != "0" && path.starts_with('/');
    Some(clean_candidate.then_some(FileView {
        start,
        len: end - start,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0a0000000-55d0a0080000 r--p 00000000 fd:01 1234 /usr/bin/serf
Rss:                 512 kB
Anonymous:             0 kB
55d0a0080000-55d0a0400000 r-xp 00080000 fd:01 1234 /usr/bin/serf
Anonymous:             0 kB
55d0a0400000-55d0a0428000 r--p 00400000 fd:01 1234 /usr/bin/serf
Anonymous:           160 kB
55d0a0428000-55d0a0430000 rw-p 00428000 fd:01 1234 /usr/bin/serf
Anonymous:            32 kB
7f0000000000-7f0000021000 rw-p 00000000 00:00 0 
Anonymous:           132 kB
7f0000100000-7f0000280000 r-xp 00028000 fd:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
";

    #[test]
    fn only_clean_private_read_only_file_mappings_are_released() {
        let views = file_views(SMAPS);
        let ranges: Vec<(usize, usize)> = views.iter().map(|v| (v.start, v.len)).collect();
        assert_eq!(
            ranges,
            vec![
                (0x55d0a0000000, 0x80000),
                (0x55d0a0080000, 0x380000),
                (0x7f0000100000, 0x180000),
            ]
        );
    }

    #[test]
    fn releasing_keeps_the_process_running_and_its_data_intact() {
        let table: Vec<u64> = (0..10_000).map(|i| i * 7).collect();
        assert!(release_file_pages() > 0, "a test binary maps its own text");
        assert_eq!(table.iter().sum::<u64>(), 7 * 9_999 * 10_000 / 2);
        assert_eq!(format!("{:?}", Some(3)), "Some(3)");
    }
}
