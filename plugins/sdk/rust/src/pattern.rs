//! The deterministic test payload that producers write and consumers check.
//!
//! Message `i` of `size` bytes with `seed` is a sequence of little-endian u64 words:
//! - word 0 is `i` (the message's index, so fan-in consumers can check each message on its own);
//! - word `w >= 1` is `i * 0x9E3779B97F4A7C15 ^ w * 0xD1B54A32D192ED03 ^ seed` (wrapping);
//! - a trailing partial word takes the low bytes of its word, and a message shorter than 8 bytes
//!   is the low `size` bytes of `i`.
//!
//! A relay with `xor = x` xors every byte after the first 8 with `x` ([`xor_copy`]); the checks
//! take the same `x` to undo it without writing to the message.

/// Multiplier of the message index in words 1 and up.
pub const INDEX_MUL: u64 = 0x9E37_79B9_7F4A_7C15;
/// Multiplier of the word number.
pub const WORD_MUL: u64 = 0xD1B5_4A32_D192_ED03;

/// Word `w` of message `i` with `seed`.
#[inline]
pub fn word(i: u64, w: u64, seed: u64) -> u64 {
    if w == 0 {
        i
    } else {
        i.wrapping_mul(INDEX_MUL) ^ w.wrapping_mul(WORD_MUL) ^ seed
    }
}

/// The byte `x` in every byte of a word.
#[inline]
fn splat(x: u8) -> u64 {
    u64::from(x) * 0x0101_0101_0101_0101
}

/// The low `n` bytes (`n < 8`) of a word set, the rest clear.
#[inline]
fn low_bytes(n: usize) -> u64 {
    (1u64 << (8 * n)) - 1
}

/// `bytes` (at most 8) as a little-endian word, zero-padded.
#[inline]
fn load(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(word)
}

/// Writes the low `bytes.len()` (at most 8) bytes of `value`, little-endian.
#[inline]
fn store(bytes: &mut [u8], value: u64) {
    let n = bytes.len();
    bytes.copy_from_slice(&value.to_le_bytes()[..n]);
}

/// Fills `buf` with message `i` of `buf.len()` bytes.
pub fn fill(buf: &mut [u8], i: u64, seed: u64) {
    let (head, body) = buf.split_at_mut(buf.len().min(8));
    store(head, i);
    let base = i.wrapping_mul(INDEX_MUL) ^ seed;
    let mut chunks = body.chunks_exact_mut(8);
    let mut w = 1u64;
    for chunk in &mut chunks {
        chunk.copy_from_slice(&(base ^ w.wrapping_mul(WORD_MUL)).to_le_bytes());
        w += 1;
    }
    let tail = chunks.into_remainder();
    store(tail, base ^ w.wrapping_mul(WORD_MUL));
}

/// Writes only the index: the first `min(8, buf.len())` bytes of message `i`.
pub fn stamp(buf: &mut [u8], i: u64) {
    let n = buf.len().min(8);
    store(&mut buf[..n], i);
}

/// The index a message carries in its word 0 (zero-padded when shorter than 8 bytes).
pub fn expected_index(buf: &[u8]) -> u64 {
    load(&buf[..buf.len().min(8)])
}

/// Whether `buf` is exactly message `i` of `buf.len()` bytes with `seed`.
pub fn check(buf: &[u8], i: u64, seed: u64) -> bool {
    scan(buf, i, seed, 0).ok
}

/// Whether `buf` is message `i` after a relay xored every byte past the first 8 with `xor`.
pub fn check_xor(buf: &[u8], i: u64, seed: u64, xor: u8) -> bool {
    scan(buf, i, seed, xor).ok
}

/// The result of [`scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// The message matches the pattern.
    pub ok: bool,
    /// [`checksum`] of the message.
    pub checksum: u64,
}

/// Checks `buf` against message `i` (after undoing a relay's `xor`) and computes its
/// [`checksum`] in the same pass.
pub fn scan(buf: &[u8], i: u64, seed: u64, xor: u8) -> Scan {
    let (head, body) = buf.split_at(buf.len().min(8));
    let first = load(head);
    let mut diff = first ^ (i & mask(head.len()));
    let mut sum = first;
    let x = splat(xor);
    let base = i.wrapping_mul(INDEX_MUL) ^ seed;
    let mut chunks = body.chunks_exact(8);
    let mut w = 1u64;
    for chunk in &mut chunks {
        let got = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk")) ^ x;
        diff |= got ^ base ^ w.wrapping_mul(WORD_MUL);
        sum = sum.wrapping_add(got);
        w += 1;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let m = low_bytes(tail.len());
        let got = (load(tail) ^ x) & m;
        diff |= got ^ ((base ^ w.wrapping_mul(WORD_MUL)) & m);
        sum = sum.wrapping_add(got);
    }
    Scan {
        ok: diff == 0,
        checksum: sum,
    }
}

/// All-ones for a full word, the low `n` bytes for a partial one.
#[inline]
fn mask(n: usize) -> u64 {
    if n >= 8 { u64::MAX } else { low_bytes(n) }
}

/// The wrapping sum of the message's little-endian u64 words (a last partial word
/// zero-padded), after undoing a relay's `xor` on the bytes past the first 8.
pub fn checksum(buf: &[u8], xor: u8) -> u64 {
    let (head, body) = buf.split_at(buf.len().min(8));
    let mut sum = load(head);
    let x = splat(xor);
    let mut chunks = body.chunks_exact(8);
    for chunk in &mut chunks {
        let got = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk")) ^ x;
        sum = sum.wrapping_add(got);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        sum = sum.wrapping_add((load(tail) ^ x) & low_bytes(tail.len()));
    }
    sum
}

/// Copies `src` to `dst` (same length) as a relay with `xor` does: the first 8 bytes (the
/// index) unchanged, every later byte xored with `xor`.
///
/// # Panics
/// When the lengths differ.
pub fn xor_copy(dst: &mut [u8], src: &[u8], xor: u8) {
    assert_eq!(dst.len(), src.len(), "xor_copy: lengths differ");
    let n = src.len().min(8);
    let (dst_head, dst_body) = dst.split_at_mut(n);
    let (src_head, src_body) = src.split_at(n);
    dst_head.copy_from_slice(src_head);
    if xor == 0 {
        dst_body.copy_from_slice(src_body);
        return;
    }
    let x = splat(xor);
    let mut d = dst_body.chunks_exact_mut(8);
    let mut s = src_body.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        let v = u64::from_le_bytes(s.try_into().expect("8-byte chunk")) ^ x;
        d.copy_from_slice(&v.to_le_bytes());
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = s ^ xor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pattern as the spec words it, byte by byte.
    fn naive(size: usize, i: u64, seed: u64) -> Vec<u8> {
        (0..size)
            .map(|b| {
                let w = (b / 8) as u64;
                let v = if w == 0 {
                    i
                } else {
                    i.wrapping_mul(0x9E3779B97F4A7C15) ^ w.wrapping_mul(0xD1B54A32D192ED03) ^ seed
                };
                v.to_le_bytes()[b % 8]
            })
            .collect()
    }

    fn naive_checksum(buf: &[u8], xor: u8) -> u64 {
        let undone: Vec<u8> = buf
            .iter()
            .enumerate()
            .map(|(k, &b)| if k < 8 { b } else { b ^ xor })
            .collect();
        undone
            .chunks(8)
            .map(load)
            .fold(0u64, |a, w| a.wrapping_add(w))
    }

    const SIZES: &[usize] = &[0, 1, 5, 7, 8, 9, 15, 16, 17, 23, 24, 63, 64, 65, 4096, 4099];

    #[test]
    fn fill_matches_the_spec() {
        for &size in SIZES {
            for (i, seed) in [
                (0, 0),
                (1, 0),
                (7, 42),
                (u64::MAX, 0xDEAD_BEEF),
                (1 << 40, 3),
            ] {
                let mut buf = vec![0xAA; size];
                fill(&mut buf, i, seed);
                assert_eq!(buf, naive(size, i, seed), "size {size} i {i} seed {seed}");
                assert!(check(&buf, i, seed));
                assert!(!check(&buf, i.wrapping_add(1), seed) || size == 0);
            }
        }
    }

    #[test]
    fn known_vector() {
        let mut buf = [0u8; 16];
        fill(&mut buf, 1, 0);
        assert_eq!(buf[..8], 1u64.to_le_bytes());
        assert_eq!(buf[8..], (INDEX_MUL ^ WORD_MUL).to_le_bytes());
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        for &size in SIZES.iter().filter(|&&s| s <= 65) {
            let mut buf = vec![0; size];
            fill(&mut buf, 9, 5);
            for k in 0..size {
                buf[k] ^= 0x10;
                assert!(!check(&buf, 9, 5), "size {size}, byte {k}");
                buf[k] ^= 0x10;
            }
            assert!(check(&buf, 9, 5));
        }
    }

    #[test]
    fn seed_matters_past_word_zero() {
        let mut buf = [0u8; 32];
        fill(&mut buf, 3, 1);
        assert!(!check(&buf, 3, 2));
        let mut short = [0u8; 8];
        fill(&mut short, 3, 1);
        assert!(check(&short, 3, 2), "an 8-byte message is only the index");
    }

    #[test]
    fn stamp_and_index() {
        for &size in SIZES {
            let mut buf = vec![0x55; size];
            stamp(&mut buf, 0x0102_0304_0506_0708);
            let n = size.min(8);
            assert_eq!(buf[..n], 0x0102_0304_0506_0708u64.to_le_bytes()[..n]);
            assert!(buf[n..].iter().all(|&b| b == 0x55));
            let want = 0x0102_0304_0506_0708u64 & mask(n);
            assert_eq!(expected_index(&buf), if n == 0 { 0 } else { want });
        }
    }

    #[test]
    fn xor_relay_is_undone_by_scan_and_checksum() {
        for &size in SIZES {
            for xor in [0u8, 1, 0x5A, 0xFF] {
                let mut src = vec![0; size];
                fill(&mut src, 77, 11);
                let mut dst = vec![0; size];
                xor_copy(&mut dst, &src, xor);
                assert_eq!(dst[..size.min(8)], src[..size.min(8)]);
                assert_eq!(expected_index(&dst), expected_index(&src));
                let s = scan(&dst, 77, 11, xor);
                assert!(s.ok, "size {size} xor {xor}");
                assert_eq!(s.checksum, checksum(&src, 0));
                assert_eq!(s.checksum, naive_checksum(&dst, xor));
                assert_eq!(checksum(&dst, xor), s.checksum);
                if size > 8 && xor != 0 {
                    assert!(!check(&dst, 77, 11));
                }
            }
        }
    }

    #[test]
    fn checksum_of_arbitrary_bytes() {
        let buf: Vec<u8> = (0..1000u32).map(|k| (k * 37 % 251) as u8).collect();
        for len in [0, 3, 8, 13, 999, 1000] {
            for xor in [0, 0x33] {
                assert_eq!(checksum(&buf[..len], xor), naive_checksum(&buf[..len], xor));
                assert_eq!(
                    scan(&buf[..len], 0, 0, xor).checksum,
                    checksum(&buf[..len], xor)
                );
            }
        }
    }
}

/// The web-db example's table (`scenarios/web-db.toml`): row `key` of a table whose rows are
/// `min..=max` bytes long is [`fill`]ed as message `key` with `seed`, and its length is
/// [`row_len`]. The server builds the table from it; clients check each answer against it, so
/// a wrong row, a cut row or another client's answer fails the check.
pub mod table {
    use super::{check, fill, word};

    /// The length of row `key`: spread over `min..=max` on a logarithmic scale (as many rows
    /// of 100–200 B as of 32–64 KiB), with `min <= max`.
    pub fn row_len(key: u64, min: usize, max: usize, seed: u64) -> usize {
        let (min, max) = (min.max(1), max.max(min.max(1)));
        let h = word(key, 7, seed ^ 0x7AB1_E000);
        // Octaves from min up to max: pick one, then a length inside it.
        let octaves = (usize::BITS - (max / min).leading_zeros()) as u64;
        let octave = (h % octaves) as u32;
        let low = min << octave;
        let high = (low << 1).min(max + 1);
        let span = high.saturating_sub(low).max(1) as u64;
        (low + ((h >> 16) % span) as usize).min(max)
    }

    /// Writes row `key` (of `buf.len()` bytes).
    pub fn fill_row(buf: &mut [u8], key: u64, seed: u64) {
        fill(buf, key, seed);
    }

    /// Whether `buf` is exactly row `key` of a `min..=max` table with `seed`.
    pub fn check_row(buf: &[u8], key: u64, min: usize, max: usize, seed: u64) -> bool {
        buf.len() == row_len(key, min, max, seed) && check(buf, key, seed)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn rows_span_the_range_and_check_only_themselves() {
            let (min, max) = (100, 65536);
            let lens: Vec<usize> = (0..2000).map(|k| row_len(k, min, max, 3)).collect();
            assert!(lens.iter().all(|&l| (min..=max).contains(&l)));
            assert!(lens.iter().filter(|&&l| l < 200).count() > 100);
            assert!(lens.iter().filter(|&&l| l > 32768).count() > 100);
            let mut row = vec![0; row_len(5, min, max, 3)];
            fill_row(&mut row, 5, 3);
            assert!(check_row(&row, 5, min, max, 3));
            assert!(!check_row(&row, 6, min, max, 3));
            assert!(!check_row(&row[..row.len() - 1], 5, min, max, 3));
            assert_eq!(row_len(9, 4096, 4096, 1), 4096);
            // Pinned: the C, Zig and AssemblyScript SDKs assert the same lengths.
            let pinned: Vec<usize> = (0..6).map(|k| row_len(k, 100, 65536, 3)).collect();
            assert_eq!(pinned, [2997, 64109, 10017, 52126, 31900, 14273]);
        }
    }
}
