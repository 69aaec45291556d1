//! The segment scanner recovery runs over every queue segment at start-up
//! (`storage/src/segment.rs`: [`scan`] and [`leading_voids`]).
//!
//! Input layout: the first byte holds flags (bit 0: the rest follows a
//! valid segment header with salt 0, which the harness prepends, so that
//! the fuzzer spends its time on records, not on the header CRC); the rest
//! is the segment (or what follows its header).
//!
//! Checked: no panic; the records found lie after the header, in order,
//! without overlap, before `end`; corrupt spans lie between them; `end <=
//! dirty_end <=` the segment's length; and every record found decodes on
//! its own, at its offset, to the same record (the scanner and the
//! decoder agree).

use sluice_storage::record::{self, Record};
use sluice_storage::segment::{leading_voids, scan, SegmentHeader, SEGMENT_HEADER_LEN};

/// The header the harness prepends: salt 0, so that records made by
/// `record::encode` verify in it.
pub fn header() -> [u8; SEGMENT_HEADER_LEN] {
    SegmentHeader {
        shard: 0,
        seq: 1,
        salt: 0,
        floor_us: 0,
    }
    .encode()
}

/// The target: see the module docs for the input layout.
pub fn run(data: &[u8]) {
    if data.len() > crate::MAX_INPUT {
        return;
    }
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = Vec::with_capacity(rest.len() + SEGMENT_HEADER_LEN);
    if flags & 1 != 0 {
        bytes.extend_from_slice(&header());
    }
    bytes.extend_from_slice(rest);
    for cut in [bytes.len(), bytes.len() / 2, SEGMENT_HEADER_LEN + 44] {
        let voids = leading_voids(&bytes[..cut.min(bytes.len())]);
        assert!(voids.voids.len() <= bytes.len() / 44);
    }
    let Ok(found) = scan(&bytes) else {
        return;
    };
    let len = bytes.len() as u64;
    assert!(
        found.end <= found.dirty_end && found.dirty_end <= len,
        "{found:?}"
    );
    // Records and corrupt spans, in file order, do not overlap.
    let mut pieces: Vec<(u64, u64)> = found.records.iter().map(|r| (r.offset, r.len)).collect();
    pieces.extend(found.corrupt.iter().map(|c| (c.offset, c.len)));
    pieces.sort_unstable();
    let mut at = SEGMENT_HEADER_LEN as u64;
    for (offset, n) in pieces {
        assert!(offset >= at, "overlap at {offset}: {found:?}");
        assert!(n > 0);
        at = offset + n;
    }
    assert!(at <= found.end, "pieces past the end: {found:?}");
    for r in &found.records {
        let start = r.offset as usize;
        let (alone, n) = record::decode_sealed(&bytes[start..], found.header.salt)
            .unwrap_or_else(|e| panic!("scanned record at {start} does not decode: {e}"));
        assert_eq!(n as u64, r.len);
        let content_len = match alone {
            Record::Message(mut m) => {
                let content_len = m.content.len() as u64;
                m.content.clear();
                assert_eq!(Record::Message(m), r.record);
                content_len
            }
            other => {
                assert_eq!(other, r.record);
                0
            }
        };
        assert_eq!(content_len, r.content_len);
    }
}
