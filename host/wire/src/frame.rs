//! The `msg` wire format: a fixed 16-byte little-endian header before every payload.
//!
//! ```text
//! offset 0  u32  payload length in bytes
//! offset 4  u32  kind: 0 = data, 1 = end of stream (the producer finished; no payload)
//! offset 8  u64  publish time, CLOCK_MONOTONIC ns
//! ```
//!
//! The same header will frame TCP links. This module has no wasmtime dependency so that a fuzz
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
    /// Publish time, CLOCK_MONOTONIC ns.
    pub publish_ns: u64,
}

/// Why a header could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The kind field holds an unknown value.
    #[error("unknown frame kind {0}")]
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
        b[0..4].copy_from_slice(&self.len.to_le_bytes());
        let kind: u32 = match self.kind {
            FrameKind::Data => 0,
            FrameKind::End => 1,
        };
        b[4..8].copy_from_slice(&kind.to_le_bytes());
        b[8..16].copy_from_slice(&self.publish_ns.to_le_bytes());
        b
    }

    /// Decodes and checks a header; `max_len` is the receiver's slot size.
    pub fn decode(b: &[u8; HEADER_LEN], max_len: u32) -> Result<Header, FrameError> {
        let len = u32::from_le_bytes(b[0..4].try_into().expect("4 bytes"));
        let kind = u32::from_le_bytes(b[4..8].try_into().expect("4 bytes"));
        let publish_ns = u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
        let kind = match kind {
            0 => FrameKind::Data,
            1 => FrameKind::End,
            k => return Err(FrameError::UnknownKind(k)),
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
                publish_ns: 0,
            },
            Header {
                kind: FrameKind::Data,
                len: 16 << 20,
                publish_ns: u64::MAX,
            },
            Header {
                kind: FrameKind::End,
                len: 0,
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
            publish_ns: 1,
        }
        .encode();
        assert_eq!(
            Header::decode(&b, 99),
            Err(FrameError::TooLong { len: 100, max: 99 })
        );
        b[4] = 7;
        assert_eq!(Header::decode(&b, 1000), Err(FrameError::UnknownKind(7)));
        b[4] = 1;
        assert_eq!(
            Header::decode(&b, 1000),
            Err(FrameError::EndWithPayload(100))
        );
    }
}
