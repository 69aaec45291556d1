//! The queue record decoder (`storage/src/record.rs`): what damaged bytes
//! in a queue segment do to it.
//!
//! Input layout: the first byte holds flags (bit 0: *reseal*, recompute
//! the payload CRC over the payload the length field claims, when it fits,
//! and then the header CRC, so that mutated fields reach the payload
//! decoder instead of stopping at a checksum); the rest is the record.
//!
//! Checked: no panic (a damaged length cannot make the decoder allocate:
//! it believes no length past the bytes it has); a decoded record's length
//! fits the input; and a decoded record encodes to exactly the bytes it
//! was decoded from (the format has one encoding per record).

use sluice_storage::record::{self, RECORD_HEADER_LEN};

/// Recomputes the CRCs of the record at the start of `bytes` (salt 0), as
/// if its writer had meant its fields; leaves a header too short alone.
pub fn reseal(bytes: &mut [u8]) {
    if bytes.len() < RECORD_HEADER_LEN {
        return;
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[8..16]);
    let payload_len = u64::from_le_bytes(len);
    let end = usize::try_from(payload_len)
        .ok()
        .and_then(|n| n.checked_add(RECORD_HEADER_LEN))
        .filter(|&end| end <= bytes.len());
    if let Some(end) = end {
        let crc = crc32c(&bytes[RECORD_HEADER_LEN..end]);
        bytes[16..20].copy_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32c(&bytes[..40]);
    bytes[40..44].copy_from_slice(&crc.to_le_bytes());
}

/// CRC32C (Castagnoli), bitwise: no dependency for a fuzz harness, and
/// an independent check of the one the storage crate uses.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The target: see the module docs for the input layout.
pub fn run(data: &[u8]) {
    if data.len() > crate::MAX_INPUT {
        return;
    }
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if flags & 1 != 0 {
        reseal(&mut bytes);
    }
    let _ = record::decode_header(&bytes, 0);
    match record::decode(&bytes) {
        Ok((rec, len)) => {
            assert!(len >= RECORD_HEADER_LEN && len <= bytes.len());
            let mut again = Vec::new();
            record::encode(&rec, &mut again);
            assert_eq!(
                again,
                bytes[..len],
                "{rec:?} does not re-encode to its bytes"
            );
        }
        Err(e) => {
            // The error names a message only when the header verified.
            if let Some(qid) = e.qid() {
                assert!(!qid.as_str().is_empty());
            }
            let _ = e.to_string();
        }
    }
}
