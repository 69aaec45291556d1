//! Little-endian primitives for record payloads.
//!
//! Writing appends to a `Vec<u8>`; reading walks a slice and fails (never
//! panics) on short or malformed input, naming the field it was reading.
//! Lengths are checked against the bytes that remain before anything is
//! allocated, so a damaged length cannot make the reader allocate more
//! than the payload it was given.

pub(crate) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A string: u64 byte length, then UTF-8 bytes.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

/// Bytes: u64 length, then the bytes.
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// An optional string: tag 0 (absent) or 1 followed by the string.
pub(crate) fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => put_u8(out, 0),
        Some(s) => {
            put_u8(out, 1);
            put_str(out, s);
        }
    }
}

/// What was being read when the payload ran short or held a bad value.
pub(crate) type Field = &'static str;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn take(&mut self, n: u64, field: Field) -> Result<&'a [u8], Field> {
        let n = usize::try_from(n).map_err(|_| field)?;
        if n > self.buf.len() {
            return Err(field);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: Field) -> Result<[u8; N], Field> {
        let b = self.take(N as u64, field)?;
        b.try_into().map_err(|_| field)
    }

    pub(crate) fn u8(&mut self, field: Field) -> Result<u8, Field> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: Field) -> Result<u16, Field> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: Field) -> Result<u32, Field> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: Field) -> Result<u64, Field> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn bytes(&mut self, field: Field) -> Result<&'a [u8], Field> {
        let n = self.u64(field)?;
        self.take(n, field)
    }

    pub(crate) fn string(&mut self, field: Field) -> Result<String, Field> {
        let b = self.bytes(field)?;
        std::str::from_utf8(b).map(str::to_owned).map_err(|_| field)
    }

    pub(crate) fn bool(&mut self, field: Field) -> Result<bool, Field> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(field),
        }
    }

    pub(crate) fn opt_str(&mut self, field: Field) -> Result<Option<String>, Field> {
        Ok(if self.bool(field)? {
            Some(self.string(field)?)
        } else {
            None
        })
    }
}
