//! Signal names as users type them (`SIGINT`, `INT`, `sigint`, `2`),
//! checked at the edge and sent as the canonical name (`"SIGINT"`), which
//! the daemon reads the same way on every platform.

use std::fmt;
use std::str::FromStr;

/// One POSIX signal, by its canonical name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalName {
    name: &'static str,
    number: i32,
}

/// Names and numbers on this platform. Numbers above 15 differ between
/// Linux and the BSDs, hence two tables.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[rustfmt::skip]
const SIGNALS: &[(&str, i32)] = &[
    ("SIGHUP", 1), ("SIGINT", 2), ("SIGQUIT", 3), ("SIGILL", 4), ("SIGTRAP", 5),
    ("SIGABRT", 6), ("SIGBUS", 7), ("SIGFPE", 8), ("SIGKILL", 9), ("SIGUSR1", 10),
    ("SIGSEGV", 11), ("SIGUSR2", 12), ("SIGPIPE", 13), ("SIGALRM", 14),
    ("SIGTERM", 15), ("SIGSTKFLT", 16), ("SIGCHLD", 17), ("SIGCONT", 18),
    ("SIGSTOP", 19), ("SIGTSTP", 20), ("SIGTTIN", 21), ("SIGTTOU", 22),
    ("SIGURG", 23), ("SIGXCPU", 24), ("SIGXFSZ", 25), ("SIGVTALRM", 26),
    ("SIGPROF", 27), ("SIGWINCH", 28), ("SIGIO", 29), ("SIGPWR", 30), ("SIGSYS", 31),
];

#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[rustfmt::skip]
const SIGNALS: &[(&str, i32)] = &[
    ("SIGHUP", 1), ("SIGINT", 2), ("SIGQUIT", 3), ("SIGILL", 4), ("SIGTRAP", 5),
    ("SIGABRT", 6), ("SIGEMT", 7), ("SIGFPE", 8), ("SIGKILL", 9), ("SIGBUS", 10),
    ("SIGSEGV", 11), ("SIGSYS", 12), ("SIGPIPE", 13), ("SIGALRM", 14),
    ("SIGTERM", 15), ("SIGURG", 16), ("SIGSTOP", 17), ("SIGTSTP", 18),
    ("SIGCONT", 19), ("SIGCHLD", 20), ("SIGTTIN", 21), ("SIGTTOU", 22),
    ("SIGIO", 23), ("SIGXCPU", 24), ("SIGXFSZ", 25), ("SIGVTALRM", 26),
    ("SIGPROF", 27), ("SIGWINCH", 28), ("SIGINFO", 29), ("SIGUSR1", 30), ("SIGUSR2", 31),
];

impl SignalName {
    pub const SIGINT: Self = Self {
        name: "SIGINT",
        number: 2,
    };
    pub const SIGKILL: Self = Self {
        name: "SIGKILL",
        number: 9,
    };
    pub const SIGTERM: Self = Self {
        name: "SIGTERM",
        number: 15,
    };

    /// `"SIGUSR2"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.name
    }

    /// The number on this platform.
    #[must_use]
    pub fn number(self) -> i32 {
        self.number
    }
}

/// A string that names no signal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signal {0:?}: expected a name such as SIGINT, INT or a number such as 2")]
pub struct UnknownSignal(pub String);

impl FromStr for SignalName {
    type Err = UnknownSignal;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let found = if let Ok(n) = text.parse::<i32>() {
            SIGNALS.iter().find(|(_, number)| *number == n)
        } else {
            let upper = text.trim().to_ascii_uppercase();
            let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
            SIGNALS.iter().find(|(name, _)| &name[3..] == bare)
        };
        found
            .map(|&(name, number)| Self { name, number })
            .ok_or_else(|| UnknownSignal(text.to_owned()))
    }
}

impl fmt::Display for SignalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

crate::text::serde_as_text!(SignalName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_signal() {
        for text in ["SIGINT", "INT", "sigint", "int", "2", " SigInt "] {
            assert_eq!(text.parse::<SignalName>(), Ok(SignalName::SIGINT), "{text}");
        }
        assert_eq!("usr2".parse::<SignalName>().unwrap().as_str(), "SIGUSR2");
        assert_eq!("9".parse::<SignalName>(), Ok(SignalName::SIGKILL));
    }

    #[test]
    fn rejects_what_is_no_signal() {
        for text in ["SIGNOPE", "", "SIG", "0", "99", "-2", "2x"] {
            assert!(text.parse::<SignalName>().is_err(), "{text}");
        }
    }

    #[test]
    fn travels_as_its_canonical_name() {
        let sig: SignalName = serde_json::from_str("\"term\"").unwrap();
        assert_eq!(sig, SignalName::SIGTERM);
        assert_eq!(serde_json::to_string(&sig).unwrap(), "\"SIGTERM\"");
        assert!(serde_json::from_str::<SignalName>("\"SIGNOPE\"").is_err());
    }

    #[test]
    fn constants_match_the_table() {
        for sig in [SignalName::SIGINT, SignalName::SIGKILL, SignalName::SIGTERM] {
            assert_eq!(sig.as_str().parse::<SignalName>(), Ok(sig));
        }
    }
}
