//! `scale <app> <N|+N|-N>`: the count as typed, checked at the edge.

use std::fmt;
use std::str::FromStr;

/// A worker count: absolute, or relative to the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScaleCount {
    /// `N` workers (at least 1).
    To(u32),
    /// `+N`: N more.
    Up(u32),
    /// `-N`: N fewer.
    Down(u32),
}

impl ScaleCount {
    /// The count wanted when the app has `current` workers (may be < 1:
    /// the daemon refuses that, it knows the app's name for the message).
    #[must_use]
    pub fn target(self, current: u32) -> i64 {
        let current = i64::from(current);
        match self {
            Self::To(n) => i64::from(n),
            Self::Up(n) => current + i64::from(n),
            Self::Down(n) => current - i64::from(n),
        }
    }
}

/// A count that is not `N`, `+N` or `-N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadScaleCount {
    #[error("invalid scale count {0:?}: expected N, +N or -N")]
    Syntax(String),
    #[error("cannot scale to 0 workers (at least 1; use stop or delete)")]
    Zero,
}

impl FromStr for ScaleCount {
    type Err = BadScaleCount;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || BadScaleCount::Syntax(text.to_owned());
        let number = |digits: &str| {
            // u32::from_str takes a sign of its own; "+-1" must fail.
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax());
            }
            digits.parse::<u32>().map_err(|_| syntax())
        };
        if let Some(n) = text.strip_prefix('+') {
            Ok(Self::Up(number(n)?))
        } else if let Some(n) = text.strip_prefix('-') {
            Ok(Self::Down(number(n)?))
        } else {
            match number(text)? {
                0 => Err(BadScaleCount::Zero),
                n => Ok(Self::To(n)),
            }
        }
    }
}

impl fmt::Display for ScaleCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::To(n) => write!(f, "{n}"),
            Self::Up(n) => write!(f, "+{n}"),
            Self::Down(n) => write!(f, "-{n}"),
        }
    }
}

crate::text::serde_as_text!(ScaleCount);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_absolute_and_relative_counts() {
        assert_eq!("4".parse(), Ok(ScaleCount::To(4)));
        assert_eq!("+1".parse(), Ok(ScaleCount::Up(1)));
        assert_eq!("-2".parse(), Ok(ScaleCount::Down(2)));
        assert_eq!("+0".parse(), Ok(ScaleCount::Up(0)));
    }

    #[test]
    fn rejects_other_counts() {
        assert_eq!("0".parse::<ScaleCount>(), Err(BadScaleCount::Zero));
        for text in [
            "lots",
            "",
            "+",
            "-",
            "+-1",
            "--1",
            "1.5",
            " 2",
            "4294967296",
        ] {
            assert!(
                matches!(text.parse::<ScaleCount>(), Err(BadScaleCount::Syntax(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn target_counts() {
        assert_eq!(ScaleCount::To(3).target(5), 3);
        assert_eq!(ScaleCount::Up(2).target(5), 7);
        assert_eq!(ScaleCount::Down(6).target(5), -1);
    }

    #[test]
    fn round_trips_as_typed() {
        for text in ["3", "+2", "-1"] {
            let c: ScaleCount = text.parse().unwrap();
            assert_eq!(c.to_string(), text);
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<ScaleCount>(&json).unwrap(), c);
        }
        assert!(serde_json::from_str::<ScaleCount>("\"lots\"").is_err());
    }
}
