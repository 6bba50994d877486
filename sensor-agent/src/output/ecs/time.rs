//! `@timestamp` and every other ECS date: RFC 3339 UTC with nanoseconds,
//! formatted without allocating.

use super::*;

/// Unix-epoch nanoseconds shown as RFC 3339 UTC with nanoseconds, e.g.
/// `2026-11-22T19:40:00.123456789Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339(pub i128);

impl Rfc3339 {
    /// Writes the 30 bytes of the timestamp into `buf`. By hand rather than
    /// with `write!`: every event carries half a dozen timestamps.
    fn format<'b>(&self, buf: &'b mut [u8; 30]) -> &'b str {
        let secs = self.0.div_euclid(1_000_000_000) as i64;
        let nanos = self.0.rem_euclid(1_000_000_000) as u32;
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400) as u32;
        fn digits(out: &mut [u8], mut v: u32) {
            for b in out.iter_mut().rev() {
                *b = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        *buf = *b"0000-00-00T00:00:00.000000000Z";
        digits(&mut buf[0..4], y.clamp(0, 9999) as u32);
        digits(&mut buf[5..7], m);
        digits(&mut buf[8..10], d);
        digits(&mut buf[11..13], sod / 3600);
        digits(&mut buf[14..16], sod % 3600 / 60);
        digits(&mut buf[17..19], sod % 60);
        digits(&mut buf[20..29], nanos);
        // Only ASCII digits and separators were written.
        std::str::from_utf8(buf).unwrap_or_default()
    }
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.format(&mut [0; 30]))
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.format(&mut [0; 30]))
    }
}

/// Formats Unix-epoch nanoseconds as RFC 3339 (see [`Rfc3339`]).
pub fn rfc3339_nanos(unix_ns: i128) -> String {
    Rfc3339(unix_ns).to_string()
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
pub(super) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
