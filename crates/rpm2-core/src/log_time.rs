//! Timestamps of the daemon's own log, as pm2's `PM2_LOG_DATE_FORMAT`
//! sets them: unset, our default (UTC, RFC 3339); empty, none; otherwise
//! that dayjs format, in local time (pm2's default is
//! `YYYY-MM-DDTHH:mm:ss`).

use chrono::format::{Item, StrftimeItems};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// pm2's variable.
pub const DATE_FORMAT_ENV: &str = "PM2_LOG_DATE_FORMAT";

/// How daemon log lines are stamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTime {
    /// tracing's default stamp.
    Default,
    /// No stamp at all (`PM2_LOG_DATE_FORMAT=""`).
    Off,
    /// A chrono strftime string made from the dayjs format.
    Format(String),
}

impl LogTime {
    /// From the variable's value; a format chrono cannot print is an error
    /// (the daemon keeps its default and says so).
    pub fn from_var(value: Option<&str>) -> Result<Self, String> {
        match value {
            None => Ok(Self::Default),
            Some("") => Ok(Self::Off),
            Some(dayjs) => {
                let strftime = rpm2_config::dayjs_to_strftime(dayjs);
                if StrftimeItems::new(&strftime).any(|i| matches!(i, Item::Error)) {
                    return Err(format!("{DATE_FORMAT_ENV}={dayjs:?} is not a date format"));
                }
                Ok(Self::Format(strftime))
            }
        }
    }
}

/// A tracing timer printing local time in a strftime format.
pub struct LocalFormat(pub String);

impl FormatTime for LocalFormat {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", chrono::Local::now().format(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_picks_the_stamp() {
        assert_eq!(LogTime::from_var(None), Ok(LogTime::Default));
        assert_eq!(LogTime::from_var(Some("")), Ok(LogTime::Off));
        assert_eq!(
            LogTime::from_var(Some("YYYY-MM-DD HH:mm Z")),
            Ok(LogTime::Format("%Y-%m-%d %H:%M %:z".into()))
        );
        // Anything else is literal text, so every dayjs string is printable.
        assert!(matches!(
            LogTime::from_var(Some("YYYY asdsd % [x]")),
            Ok(LogTime::Format(_))
        ));
    }
}
