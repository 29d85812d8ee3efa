//! LEB128 varints (7 bits a byte, low first, the high bit set on every byte but the last) and
//! zigzag signed integers: the integers of the stream table and of column-coded sections.

/// Appends `v`.
pub(crate) fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads the varint at `*pos` in `b` and moves `*pos` past it. The error says what is wrong;
/// the caller says where.
pub(crate) fn get(b: &[u8], pos: &mut usize) -> Result<u64, &'static str> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = b.get(*pos) else {
            return Err("the bytes end inside a varint");
        };
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("a varint longer than 10 bytes")
}

/// A signed integer as an unsigned one, small when it is near zero.
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub(crate) fn unzigzag(u: u64) -> i64 {
    (u >> 1) as i64 ^ -((u & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_says_what_is_wrong() {
        let vals = [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX];
        let mut out = Vec::new();
        for v in vals {
            put(&mut out, v);
        }
        assert_eq!(out[..4], [0, 1, 127, 0x80]);
        let mut pos = 0;
        for v in vals {
            assert_eq!(get(&out, &mut pos), Ok(v));
        }
        assert_eq!(pos, out.len());
        assert_eq!(get(&out, &mut pos), Err("the bytes end inside a varint"));
        let mut pos = 0;
        assert_eq!(
            get(&[0x80; 11], &mut pos),
            Err("a varint longer than 10 bytes")
        );
        for v in [0, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }
}
