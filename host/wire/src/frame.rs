//! The `msg` wire format: a fixed 16-byte little-endian header before every payload.
//!
//! ```text
//! offset 0  u32  bits 0–30: payload length in bytes; bit 31: end of stream (the producer
//!                finished; no payload)
//! offset 4  u32  sequence number: a data frame's position on its link (the sending host's
//!                count, from 0, of the messages offered to the link, dropped ones included;
//!                wrapping); an end frame's is the count itself, so a receiver sees what was
//!                dropped after the last message it got
//! offset 8  u64  publish time, CLOCK_MONOTONIC ns
//! ```
//!
//! Every copying backend but `zenoh` (which carries the same fields in an attachment) frames
//! its messages with it. This module has no wasmtime dependency so that a fuzz
//! target can drive the decoder.

/// Header size in bytes.
pub const HEADER_LEN: usize = 16;

/// Largest payload a frame may announce (the largest slot size a scenario may set).
pub const MAX_PAYLOAD: u32 = 256 << 20;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A message of `len` bytes follows.
    Data,
    /// The producer finished cleanly; nothing follows.
    End,
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Data or end of stream.
    pub kind: FrameKind,
    /// Payload length (0 for `End`).
    pub len: u32,
    /// Data: the message's sequence number on its link; end: how many messages the link was
    /// offered (see the module's docs).
    pub seq: u32,
    /// Publish time, CLOCK_MONOTONIC ns.
    pub publish_ns: u64,
}

/// Bit 31 of the first word: an end-of-stream frame.
const END_BIT: u32 = 1 << 31;

/// Why a header could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length word has bits set that no frame uses (29 and 30).
    #[error("unknown frame flags {0:#x}")]
    UnknownKind(u32),
    /// The length exceeds what the receiver accepts.
    #[error("frame announces {len} bytes, more than the {max}-byte slot")]
    TooLong {
        /// Announced length.
        len: u32,
        /// What the receiver accepts.
        max: u32,
    },
    /// An end-of-stream frame with a payload.
    #[error("end-of-stream frame with a {0}-byte payload")]
    EndWithPayload(u32),
}

impl Header {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        let word = match self.kind {
            FrameKind::Data => self.len,
            FrameKind::End => self.len | END_BIT,
        };
        b[0..4].copy_from_slice(&word.to_le_bytes());
        b[4..8].copy_from_slice(&self.seq.to_le_bytes());
        b[8..16].copy_from_slice(&self.publish_ns.to_le_bytes());
        b
    }

    /// Decodes and checks a header; `max_len` is the receiver's slot size.
    pub fn decode(b: &[u8; HEADER_LEN], max_len: u32) -> Result<Header, FrameError> {
        let word = u32::from_le_bytes(b[0..4].try_into().expect("4 bytes"));
        let seq = u32::from_le_bytes(b[4..8].try_into().expect("4 bytes"));
        let publish_ns = u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
        // Lengths stop at MAX_PAYLOAD = 2^28: bits 29 and 30 are never set.
        let flags = word & !(END_BIT | (END_BIT - 1) >> 2);
        if flags != 0 {
            return Err(FrameError::UnknownKind(flags));
        }
        let (kind, len) = if word & END_BIT != 0 {
            (FrameKind::End, word & !END_BIT)
        } else {
            (FrameKind::Data, word)
        };
        if kind == FrameKind::End && len != 0 {
            return Err(FrameError::EndWithPayload(len));
        }
        if len > max_len.min(MAX_PAYLOAD) {
            return Err(FrameError::TooLong { len, max: max_len });
        }
        Ok(Header {
            kind,
            len,
            seq,
            publish_ns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for h in [
            Header {
                kind: FrameKind::Data,
                len: 0,
                seq: 0,
                publish_ns: 0,
            },
            Header {
                kind: FrameKind::Data,
                len: MAX_PAYLOAD,
                seq: u32::MAX,
                publish_ns: u64::MAX,
            },
            Header {
                kind: FrameKind::End,
                len: 0,
                seq: 7,
                publish_ns: 42,
            },
        ] {
            assert_eq!(Header::decode(&h.encode(), MAX_PAYLOAD), Ok(h));
        }
    }

    #[test]
    fn rejects_bad_headers() {
        let mut b = Header {
            kind: FrameKind::Data,
            len: 100,
            seq: 3,
            publish_ns: 1,
        }
        .encode();
        assert_eq!(
            Header::decode(&b, 99),
            Err(FrameError::TooLong { len: 100, max: 99 })
        );
        b[3] = 0x60;
        assert_eq!(
            Header::decode(&b, 1000),
            Err(FrameError::UnknownKind(0x6000_0000))
        );
        b[3] = 0x80;
        assert_eq!(
            Header::decode(&b, 1000),
            Err(FrameError::EndWithPayload(100))
        );
    }
}
