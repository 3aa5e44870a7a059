//! Calendar dates of Unix times, in UTC (no time zones, no leap seconds): what logs, listings and the
//! catalog's `generated` stamps print and parse.

/// A UTC date and time to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
}

impl Civil {
    pub fn from_unix(unix: i64) -> Self {
        let (days, seconds) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
        // The civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Self {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day: doy - (153 * mp + 2) / 5 + 1,
            hour: seconds / 3600,
            minute: seconds % 3600 / 60,
            second: seconds % 60,
        }
    }

    /// Unix seconds, or `None` for a date that does not exist (February 30th, hour 24…).
    pub fn to_unix(self) -> Option<i64> {
        let Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
        } = self;
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month[month as usize - 1]
            || !(0..24).contains(&hour)
            || !(0..60).contains(&minute)
            || !(0..60).contains(&second)
        {
            return None;
        }
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Some((era * 146_097 + doe - 719_468) * 86_400 + hour * 3600 + minute * 60 + second)
    }

    /// RFC 3339 in UTC to the second: `2026-06-10T23:20:45Z`.
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// Exactly `YYYY-MM-DDTHH:MM:SSZ` (UTC, no fraction, no offset), a date that exists.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() != 20
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
            || b[19] != b'Z'
        {
            return None;
        }
        let number = |range: std::ops::Range<usize>| -> Option<i64> {
            let part = &text[range];
            part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
        };
        let civil = Self {
            year: number(0..4)?,
            month: number(5..7)?,
            day: number(8..10)?,
            hour: number(11..13)?,
            minute: number(14..16)?,
            second: number(17..19)?,
        };
        civil.to_unix().map(|_| civil)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_impossible_ones_are_refused() {
        for unix in [0, 951_782_400, 1_709_208_001, 1_781_136_000, 4_102_444_799, -86_400] {
            let civil = Civil::from_unix(unix);
            assert_eq!(civil.to_unix(), Some(unix), "{unix}");
            assert_eq!(
                Civil::parse_rfc3339(&civil.rfc3339()).and_then(Civil::to_unix),
                Some(unix)
            );
        }
        assert_eq!(Civil::from_unix(1_781_136_000).rfc3339(), "2026-06-11T00:00:00Z");
        for bad in [
            "2026-06-11T00:00:00+00:00",
            "2026-06-11 00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-06-11T24:00:00Z",
            "2026-06-11T00:00:00.5Z",
            "",
        ] {
            assert_eq!(Civil::parse_rfc3339(bad), None, "{bad}");
        }
    }
}
