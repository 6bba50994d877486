//! Dates as Elasticsearch compares them: a `date` field against an ISO-8601
//! string of any precision (`2026-12-01`, `2026-12-01T21:10`,
//! `2026-12-01T21:10:34.123456789+01:00`) or a number of epoch milliseconds,
//! at millisecond resolution (the `date` type stores milliseconds, so finer
//! digits are cut, never rounded).
//!
//! Hand-written because Elasticsearch's default `strict_date_optional_time`
//! accepts partial forms (a date alone, hours without seconds) that RFC 3339
//! parsers such as chrono's refuse.

/// ECS 9.4's `date` fields (from `ecs_flat.yml`): these compare as dates.
pub const ECS_DATE_FIELDS: &[&str] = &[
    "@timestamp",
    "cloud.entity.last_seen_timestamp",
    "cloud.entity.lifecycle.last_activity",
    "cloud.origin.entity.last_seen_timestamp",
    "cloud.origin.entity.lifecycle.last_activity",
    "cloud.target.entity.last_seen_timestamp",
    "cloud.target.entity.lifecycle.last_activity",
    "dll.code_signature.timestamp",
    "email.delivery_timestamp",
    "email.origination_timestamp",
    "entity.last_seen_timestamp",
    "entity.lifecycle.last_activity",
    "entity.target.last_seen_timestamp",
    "entity.target.lifecycle.last_activity",
    "event.created",
    "event.end",
    "event.ingested",
    "event.start",
    "file.accessed",
    "file.code_signature.timestamp",
    "file.created",
    "file.ctime",
    "file.elf.creation_date",
    "file.mtime",
    "file.x509.not_after",
    "file.x509.not_before",
    "host.entity.last_seen_timestamp",
    "host.entity.lifecycle.last_activity",
    "host.target.entity.last_seen_timestamp",
    "host.target.entity.lifecycle.last_activity",
    "orchestrator.entity.last_seen_timestamp",
    "orchestrator.entity.lifecycle.last_activity",
    "package.installed",
    "process.code_signature.timestamp",
    "process.elf.creation_date",
    "process.end",
    "process.entry_leader.parent.session_leader.start",
    "process.entry_leader.parent.start",
    "process.entry_leader.start",
    "process.group_leader.start",
    "process.parent.code_signature.timestamp",
    "process.parent.elf.creation_date",
    "process.parent.end",
    "process.parent.group_leader.start",
    "process.parent.start",
    "process.session_leader.parent.session_leader.start",
    "process.session_leader.parent.start",
    "process.session_leader.start",
    "process.start",
    "service.entity.last_seen_timestamp",
    "service.entity.lifecycle.last_activity",
    "service.origin.entity.last_seen_timestamp",
    "service.origin.entity.lifecycle.last_activity",
    "service.target.entity.last_seen_timestamp",
    "service.target.entity.lifecycle.last_activity",
    "threat.enrichments.indicator.file.accessed",
    "threat.enrichments.indicator.file.code_signature.timestamp",
    "threat.enrichments.indicator.file.created",
    "threat.enrichments.indicator.file.ctime",
    "threat.enrichments.indicator.file.elf.creation_date",
    "threat.enrichments.indicator.file.mtime",
    "threat.enrichments.indicator.file.x509.not_after",
    "threat.enrichments.indicator.file.x509.not_before",
    "threat.enrichments.indicator.first_seen",
    "threat.enrichments.indicator.last_seen",
    "threat.enrichments.indicator.modified_at",
    "threat.enrichments.indicator.x509.not_after",
    "threat.enrichments.indicator.x509.not_before",
    "threat.enrichments.matched.occurred",
    "threat.indicator.file.accessed",
    "threat.indicator.file.code_signature.timestamp",
    "threat.indicator.file.created",
    "threat.indicator.file.ctime",
    "threat.indicator.file.elf.creation_date",
    "threat.indicator.file.mtime",
    "threat.indicator.file.x509.not_after",
    "threat.indicator.file.x509.not_before",
    "threat.indicator.first_seen",
    "threat.indicator.last_seen",
    "threat.indicator.modified_at",
    "threat.indicator.x509.not_after",
    "threat.indicator.x509.not_before",
    "tls.client.not_after",
    "tls.client.not_before",
    "tls.client.x509.not_after",
    "tls.client.x509.not_before",
    "tls.server.not_after",
    "tls.server.not_before",
    "tls.server.x509.not_after",
    "tls.server.x509.not_before",
    "user.changes.entity.last_seen_timestamp",
    "user.changes.entity.lifecycle.last_activity",
    "user.effective.entity.last_seen_timestamp",
    "user.effective.entity.lifecycle.last_activity",
    "user.entity.last_seen_timestamp",
    "user.entity.lifecycle.last_activity",
    "user.target.entity.last_seen_timestamp",
    "user.target.entity.lifecycle.last_activity",
];

/// Is `dotted` a field that compares as a date?
pub fn is_date_field(dotted: &str) -> bool {
    ECS_DATE_FIELDS.binary_search(&dotted).is_ok()
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let s = self.b.get(self.i..self.i + n)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(s.iter().fold(0, |a, c| a * 10 + u32::from(c - b'0')))
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn done(&self) -> bool {
        self.i == self.b.len()
    }
}

/// Parses an ISO-8601 date-time of any precision to epoch milliseconds.
/// Without a zone the time is UTC, as in Elasticsearch.
pub fn parse_iso8601_ms(s: &str) -> Option<i64> {
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let year = i64::from(c.digits(4)?);
    let (mut month, mut day) = (1, 1);
    let (mut h, mut mi, mut sec, mut ms) = (0u32, 0u32, 0u32, 0u32);
    let mut offset_min: i64 = 0;
    if c.eat(b'-') {
        month = c.digits(2)?;
        if c.eat(b'-') {
            day = c.digits(2)?;
            if c.eat(b'T') || c.eat(b't') || c.eat(b' ') {
                h = c.digits(2)?;
                if c.eat(b':') {
                    mi = c.digits(2)?;
                    if c.eat(b':') {
                        sec = c.digits(2)?;
                        if c.eat(b'.') || c.eat(b',') {
                            let start = c.i;
                            while c.b.get(c.i).is_some_and(u8::is_ascii_digit) {
                                c.i += 1;
                            }
                            let frac = &s[start..c.i];
                            if frac.is_empty() {
                                return None;
                            }
                            // Milliseconds: the first three digits, the rest cut.
                            let mut three = frac.chars().take(3).collect::<String>();
                            while three.len() < 3 {
                                three.push('0');
                            }
                            ms = three.parse().ok()?;
                        }
                    }
                }
                if c.eat(b'Z') || c.eat(b'z') {
                } else if let Some(sign) = [b'+', b'-'].into_iter().find(|x| c.eat(*x)) {
                    let oh = i64::from(c.digits(2)?);
                    c.eat(b':');
                    let om = if c.done() { 0 } else { i64::from(c.digits(2)?) };
                    offset_min = (oh * 60 + om) * if sign == b'-' { -1 } else { 1 };
                }
            }
        }
    }
    if !c.done()
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || h > 23
        || mi > 59
        || sec > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + sec) - offset_min * 60;
    Some(secs * 1000 + i64::from(ms))
}

/// A date value from an event or a literal: an ISO-8601 string, or a
/// number (or numeric string) of epoch milliseconds.
pub fn to_epoch_ms(v: &crate::value::Val) -> Option<i64> {
    use crate::value::Val;
    match v {
        Val::Int(i) => Some(*i),
        Val::Float(f) if f.is_finite() => Some(f.trunc() as i64),
        Val::Str(s) => parse_iso8601_ms(s).or_else(|| {
            let t = s.trim();
            (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
                .then(|| t.parse().ok())
                .flatten()
        }),
        _ => None,
    }
}

/// The event time of a document's `@timestamp`, in nanoseconds (kept at
/// full precision: it orders and spaces sequence stages, not comparisons).
pub fn parse_timestamp_ns(s: &str) -> Option<i64> {
    let ms = parse_iso8601_ms(s)?;
    // Recover the sub-millisecond digits the millisecond parse cut.
    let frac = s
        .find('.')
        .map(|i| &s[i + 1..])
        .map(|f| f.bytes().take_while(u8::is_ascii_digit).collect::<Vec<_>>())
        .unwrap_or_default();
    let sub: i64 = frac
        .iter()
        .skip(3)
        .take(6)
        .chain(std::iter::repeat(&b'0'))
        .take(6)
        .fold(0, |a, d| a * 10 + i64::from(d - b'0'));
    ms.checked_mul(1_000_000)?.checked_add(sub)
}

/// Civil date of a day count from 1970-01-01 (inverse of `days_from_civil`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Epoch nanoseconds as RFC 3339 UTC with nanoseconds (`@timestamp`'s form).
pub fn format_ns(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn format_round_trips_through_the_parser() {
        for ns in [0i64, 1_796_083_200_123_456_789, 951_782_400_000_000_001] {
            assert_eq!(
                parse_timestamp_ns(&format_ns(ns)),
                Some(ns),
                "{}",
                format_ns(ns)
            );
        }
    }

    use super::*;

    #[test]
    fn any_precision_parses_to_the_same_instant_at_its_start() {
        let day = parse_iso8601_ms("2026-12-01").unwrap();
        assert_eq!(day, 1_796_083_200_000);
        assert_eq!(parse_iso8601_ms("2026-12-01T00:00:00Z"), Some(day));
        assert_eq!(parse_iso8601_ms("2026-12-01T00:00"), Some(day));
        assert_eq!(parse_iso8601_ms("2026-12"), Some(day));
        assert_eq!(parse_iso8601_ms("2027"), Some(day + 31 * 86_400_000));
        assert_eq!(parse_iso8601_ms("2026-12-01T01:00:00+01:00"), Some(day));
        assert_eq!(
            parse_iso8601_ms("2026-12-01T00:00:00.1239Z"),
            Some(day + 123)
        );
    }

    #[test]
    fn invalid_dates_do_not_parse() {
        for s in [
            "2026-13-01",
            "2026-02-30",
            "2026-12-01T24:00",
            "yesterday",
            "2026-12-01Tx",
        ] {
            assert_eq!(parse_iso8601_ms(s), None, "{s}");
        }
    }

    #[test]
    fn timestamp_keeps_nanoseconds() {
        let ns = parse_timestamp_ns("1970-01-01T00:00:01.000000123Z").unwrap();
        assert_eq!(ns, 1_000_000_123);
    }

    #[test]
    fn date_field_list_is_sorted_for_binary_search() {
        assert!(ECS_DATE_FIELDS.windows(2).all(|w| w[0] < w[1]));
        assert!(is_date_field("@timestamp") && is_date_field("process.start"));
        assert!(!is_date_field("process.name"));
    }
}
