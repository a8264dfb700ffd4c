//! LZW exactly as memberlist uses it: Go's `compress/lzw` with LSB bit order and 8-bit literals
//! (GIF flavour). Codes start at 9 bits and grow to 12; 256 is the clear code and 257 the EOF code.
//!
//! Compression is written by hand because weezl's encoder resets its dictionary one code later than
//! Go's writer (Go resets as soon as its next free code reaches 4095), so on inputs that fill the
//! dictionary the two streams differ. The output must match Go byte for byte: the UDP path sends the
//! compressed form only if it is strictly shorter, and our test vectors and captures come from Go.
//! Decompression uses weezl, which reads every stream Go's writer produces.

use weezl::{decode::Decoder, BitOrder, LzwStatus};

/// Errors from LZW decoding.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum LzwError {
    /// A code that is neither a literal, a special code nor a dictionary entry defined so far
    /// (Go: "lzw: invalid code").
    #[error("invalid LZW code")]
    Corrupt,
    /// The input ran out before the EOF code (Go: `io.ErrUnexpectedEOF`).
    #[error("LZW stream ended without an EOF code")]
    MissingEnd,
    /// The decompressed data would be longer than the caller allows.
    #[error("decompressed data exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
}

/// Literal width in bits, fixed by memberlist (`lzwLitWidth`).
const LIT_WIDTH: u32 = 8;
const CLEAR_CODE: u32 = 1 << LIT_WIDTH;
const EOF_CODE: u32 = CLEAR_CODE + 1;
/// Go's writer emits a clear code once its next free code reaches this value.
const MAX_CODE: u32 = (1 << 12) - 1;
/// Open-addressing table of `prefix code << 8 | byte` to code, 4x the number of codes as in Go, so
/// probing always finds a free slot quickly.
const TABLE_SIZE: usize = 4 << 12;
const TABLE_MASK: u32 = TABLE_SIZE as u32 - 1;
/// Entries hold `key << 12 | code`; the code is never 0, so 0 marks a free slot.
const FREE: u32 = 0;
/// Smallest output buffer step when decompressing, so tiny outputs don't cost many calls.
const MIN_GROWTH: usize = 4096;

/// Compress `input` into a stream identical to Go's
/// `lzw.NewWriter(w, lzw.LSB, 8)` + `Write(input)` + `Close()`.
pub fn compress(input: &[u8]) -> Vec<u8> {
    let mut enc = Encoder::new(input.len());
    // Go always starts with a clear code, even for empty input.
    enc.emit(CLEAR_CODE);
    let Some((&first, rest)) = input.split_first() else {
        enc.emit(EOF_CODE);
        return enc.finish();
    };
    // `code` is the dictionary code for the longest match read so far.
    let mut code = u32::from(first);
    'bytes: for &byte in rest {
        let key = code << 8 | u32::from(byte);
        let mut slot = (key >> 12 ^ key) & TABLE_MASK;
        loop {
            let entry = enc.table[slot as usize];
            if entry == FREE {
                break;
            }
            if entry >> 12 == key {
                code = entry & MAX_CODE;
                continue 'bytes;
            }
            slot = (slot + 1) & TABLE_MASK;
        }
        enc.emit(code);
        code = u32::from(byte);
        if enc.next_code() {
            // The new string gets the next free code, unless the dictionary was just reset.
            enc.table[slot as usize] = key << 12 | enc.hi;
        }
    }
    enc.emit(code);
    // This may emit a clear code right before EOF, as Go's Close does.
    enc.next_code();
    enc.emit(EOF_CODE);
    enc.finish()
}

/// Encoder state, named after the fields of Go's `lzw.Writer`.
struct Encoder {
    out: Vec<u8>,
    /// Pending output bits, least significant first.
    bits: u32,
    n_bits: u32,
    /// Current code width in bits.
    width: u32,
    /// The code the next new dictionary string gets.
    hi: u32,
    /// When `hi` reaches this, codes get one bit wider.
    overflow: u32,
    table: Box<[u32; TABLE_SIZE]>,
}

impl Encoder {
    fn new(input_len: usize) -> Self {
        Encoder {
            out: Vec::with_capacity(input_len / 2 + 8),
            bits: 0,
            n_bits: 0,
            width: LIT_WIDTH + 1,
            hi: EOF_CODE,
            overflow: CLEAR_CODE << 1,
            table: Box::new([FREE; TABLE_SIZE]),
        }
    }

    fn emit(&mut self, code: u32) {
        self.bits |= code << self.n_bits;
        self.n_bits += self.width;
        while self.n_bits >= 8 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.n_bits -= 8;
        }
    }

    /// Go's `incHi`: advance to the next free code, widening codes when needed. When the codes run
    /// out, emit a clear code, reset the dictionary and return false.
    fn next_code(&mut self) -> bool {
        self.hi += 1;
        if self.hi == self.overflow {
            self.width += 1;
            self.overflow <<= 1;
        }
        if self.hi != MAX_CODE {
            return true;
        }
        self.emit(CLEAR_CODE);
        self.width = LIT_WIDTH + 1;
        self.hi = EOF_CODE;
        self.overflow = CLEAR_CODE << 1;
        self.table.fill(FREE);
        false
    }

    /// Flush the last partial byte (zero padded) and return the stream.
    fn finish(mut self) -> Vec<u8> {
        if self.n_bits > 0 {
            self.out.push(self.bits as u8);
        }
        self.out
    }
}

/// Decompress, refusing to produce more than `max_output` bytes (decompression bombs): returns
/// [`LzwError::TooLarge`] as soon as the limit would be exceeded, without allocating beyond it.
///
/// Like Go's reader, bytes after the EOF code are ignored.
pub fn decompress(input: &[u8], max_output: usize) -> Result<Vec<u8>, LzwError> {
    let mut decoder = Decoder::new(BitOrder::Lsb, LIT_WIDTH as u8);
    let mut out = Vec::new();
    let mut filled = 0;
    let mut rest = input;
    // Once `out` holds `max_output` bytes, decoding continues into this byte to learn whether the
    // stream ends there or would produce more.
    let mut probe = [0u8; 1];
    loop {
        let result = if filled < max_output {
            if filled == out.len() {
                // LZW output is usually a few times its input; grow geometrically up to the limit.
                let new_len = filled
                    .saturating_mul(2)
                    .max(input.len().saturating_mul(2))
                    .max(MIN_GROWTH)
                    .min(max_output);
                out.reserve_exact(new_len - filled);
                out.resize(new_len, 0);
            }
            decoder.decode_bytes(rest, &mut out[filled..])
        } else {
            let result = decoder.decode_bytes(rest, &mut probe);
            if result.consumed_out > 0 {
                return Err(LzwError::TooLarge { limit: max_output });
            }
            result
        };
        filled += result.consumed_out;
        rest = rest.get(result.consumed_in..).unwrap_or_default();
        match result.status {
            Ok(LzwStatus::Done) => {
                out.truncate(filled);
                return Ok(out);
            }
            // Always given room for output, weezl only stalls when the input has run out.
            Ok(LzwStatus::NoProgress) => return Err(LzwError::MissingEnd),
            Ok(LzwStatus::Ok) => {}
            Err(_) => return Err(LzwError::Corrupt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).expect("valid hex in test vector")
    }

    /// FNV-1a, to pin long Go outputs without pasting them.
    fn fnv1a(data: &[u8]) -> u64 {
        data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// Deterministic data mixing random bytes, runs and copies of earlier data, so that the
    /// dictionary both fills up (forcing resets) and finds long matches.
    fn test_data(len: usize, mut seed: u64) -> Vec<u8> {
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as u32
        };
        let mut out = Vec::with_capacity(len + 64);
        while out.len() < len {
            let r = next();
            let n = (r >> 8) as usize % 64 + 1;
            match r % 3 {
                0 => (0..n).for_each(|_| out.push(next() as u8)),
                1 => {
                    let b = next() as u8;
                    out.resize(out.len() + n, b);
                }
                _ if !out.is_empty() => {
                    let start = next() as usize % out.len();
                    let span = out.len() - start;
                    for i in 0..n {
                        out.push(out[start + i % span]);
                    }
                }
                _ => {}
            }
        }
        out.truncate(len);
        out
    }

    /// A de Bruijn sequence of byte pairs: no two adjacent pairs repeat, so every byte becomes
    /// exactly one literal code and the number of codes is the input length.
    fn distinct_pairs() -> Vec<u8> {
        let mut s = Vec::with_capacity(1 << 16);
        for a in 0..=255u8 {
            s.push(a);
            for b in u16::from(a) + 1..256 {
                s.extend([a, b as u8]);
            }
        }
        s
    }

    const ALIVE: &str = "0486a441646472a40a000001ab496e6361726e6174696f6e01a44d657461c0a44e6f6465a66e6f64652d61a4506f7274cd1f0aa356736ea6010502020504";
    const ALIVE_LZW: &str = "0009182215840c1939a4140000106055123763c2c87113864e9a376e02906a52864e1860a49cbc2153c6949b91655a842105e58d1c3acd3e281865658e1b53010a081050804040";
    const PING: &str = "0085a44e6f6465a66e6f64652d62a55365714e6f2baa536f7572636541646472a47f000001aa536f757263654e6f6465a66e6f64652d61aa536f75726365506f7274cd1f0a";
    const PING_LZW: &str = "00011422e5e40d9932a6dc182cd3424ca92965e2145ca16aca9b3a72c6940942868c1c527f00000850f162c632050f265cd8224c498c1aa1bc9143a7d907050101";
    const COMPOUND: &str = "07030045002700160085a44e6f6465a66e6f64652d62a55365714e6f2baa536f7572636541646472a47f000001aa536f757263654e6f6465a66e6f64652d61aa536f75726365506f7274cd1f0a0583a446726f6da66e6f64652d61ab496e6361726e6174696f6e04a44e6f6465a66e6f64652d63080182a54c54696d650ca44e6f6465a66e6f64652d61";
    const COMPOUND_LZW: &str = "000f0c005004c0090016001422e5e40d9932a6dc382cd3424ca92965e2345ca16aca9b3a72c6940942868c1c527f000008d0f163c8320d1f469cd8224c4b9022a1bc9143a7d907050506913222e74d9b990f6bae4ae2664c18396ec2d049f3c60d01861391521c832080a0524ca8a46953860156991293860908";

    /// (input, Go's output) from the vectors: derived-codec-vectors.txt "lzw(alive)" and
    /// compress_{ping,compound,empty}.json.
    const GO_VECTORS: [(&str, &str); 4] = [
        (ALIVE, ALIVE_LZW),
        (PING, PING_LZW),
        (COMPOUND, COMPOUND_LZW),
        ("", "000302"),
    ];

    #[test]
    fn compress_matches_go_vectors() {
        for (plain, lzw) in GO_VECTORS {
            assert_eq!(hex::encode(compress(&unhex(plain))), lzw, "input {plain}");
        }
    }

    #[test]
    fn decompress_go_vectors() {
        for (plain, lzw) in GO_VECTORS {
            assert_eq!(decompress(&unhex(lzw), 1 << 20), Ok(unhex(plain)));
        }
    }

    /// Go output for inputs that fill the dictionary: (input, length, FNV-1a, last bytes).
    #[test]
    fn compress_matches_go_across_resets() {
        let pairs = distinct_pairs();
        let cases: [(&[u8], usize, u64, &str); 5] = [
            (
                &test_data(300_000, 1),
                254_485,
                0xdfc4_4677_2baf_1eea,
                "8c1b71bc3120",
            ),
            // 3838 codes: the last code before EOF uses up the dictionary, so Go's Close emits
            // a clear code (12 bits) and then EOF (9 bits).
            (&pairs[..3838], 5410, 0x44dc_1a55_59a3_bdf4, "009e00100101"),
            (&pairs[..3837], 5407, 0x3dc4_4255_d45d_6dda, "009d70000101"),
            (&pairs[..3839], 5411, 0x71c2_6907_33c8_e70b, "9e0010070202"),
            (&pairs[..8000], 11190, 0x2b8b_deba_e3f5_5f3f, "40f002040101"),
        ];
        for (input, len, hash, tail) in cases {
            let out = compress(input);
            assert_eq!(out.len(), len, "input len {}", input.len());
            assert_eq!(fnv1a(&out), hash, "input len {}", input.len());
            assert_eq!(
                hex::encode(&out[len - 6..]),
                tail,
                "input len {}",
                input.len()
            );
        }
    }

    #[test]
    fn round_trip_large_input() {
        for input in [test_data(300_000, 7), vec![0x5a; 1 << 20], distinct_pairs()] {
            let out = compress(&input);
            assert_eq!(decompress(&out, input.len()).as_deref(), Ok(&input[..]));
        }
    }

    #[test]
    fn output_limit_is_enforced() {
        let input = test_data(10_000, 3);
        let lzw = compress(&input);
        assert_eq!(decompress(&lzw, 10_000).as_deref(), Ok(&input[..]));
        assert_eq!(
            decompress(&lzw, 9_999),
            Err(LzwError::TooLarge { limit: 9_999 })
        );
        assert_eq!(decompress(&lzw, 0), Err(LzwError::TooLarge { limit: 0 }));
        assert_eq!(decompress(&unhex("000302"), 0), Ok(Vec::new()));
        // A bomb: 16 MiB of zeros compresses to about 15 KiB.
        let bomb = compress(&vec![0; 16 << 20]);
        assert_eq!(
            decompress(&bomb, 1 << 20),
            Err(LzwError::TooLarge { limit: 1 << 20 })
        );
    }

    #[test]
    fn truncated_input_is_missing_end() {
        let lzw = unhex(COMPOUND_LZW);
        for len in 0..lzw.len() {
            assert_eq!(
                decompress(&lzw[..len], 1 << 20),
                Err(LzwError::MissingEnd),
                "len {len}"
            );
        }
    }

    #[test]
    fn bytes_after_eof_are_ignored() {
        let mut lzw = unhex(PING_LZW);
        lzw.extend([0xff; 8]);
        assert_eq!(decompress(&lzw, 1 << 20), Ok(unhex(PING)));
    }

    #[test]
    fn invalid_codes_are_corrupt() {
        // Clear, then 258: the first code after a clear cannot refer to an undefined string.
        assert_eq!(
            decompress(&[0x00, 0x05, 0x02], 1 << 20),
            Err(LzwError::Corrupt)
        );
        // Literal 'a', then 300, beyond the next free code (258).
        assert_eq!(
            decompress(&[0x61, 0x58, 0x02], 1 << 20),
            Err(LzwError::Corrupt)
        );
    }

    #[test]
    fn garbage_never_panics() {
        let valid = compress(&test_data(5_000, 9));
        for seed in 0..2_000u64 {
            let mut input = test_data((seed as usize * 7) % 600, seed);
            let _ = decompress(&input, 4096);
            // Also corrupt a valid stream in a few places.
            input.clone_from(&valid);
            for i in 0..=(seed % 4) {
                let at = (fnv1a(&(seed * 8 + i).to_le_bytes()) as usize) % input.len();
                input[at] ^= 1 << (seed % 8);
            }
            let _ = decompress(&input, 1 << 20);
        }
    }
}
