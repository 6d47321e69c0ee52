//! What an action applies to: `all`, a worker id, or an app name or
//! namespace (the daemon tells those two apart, it knows both lists).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    All,
    /// A `pm_id`, written in canonical decimal (`"007"` stays a name).
    Id(u32),
    /// An app name or namespace.
    Name(String),
}

/// An empty target: it would match nothing and hide a scripting mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("empty target: expected an app name, id, namespace or `all`")]
pub struct EmptyTarget;

impl Target {
    /// Parse each of `texts`.
    pub fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Self>, EmptyTarget> {
        texts.iter().map(|t| t.as_ref().parse()).collect()
    }

    /// Does a worker with this id, app name and namespace match?
    #[must_use]
    pub fn matches(&self, pm_id: u32, name: &str, namespace: &str) -> bool {
        match self {
            Self::All => true,
            Self::Id(id) => *id == pm_id,
            Self::Name(n) => n == name || n == namespace,
        }
    }
}

impl FromStr for Target {
    type Err = EmptyTarget;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().is_empty() {
            return Err(EmptyTarget);
        }
        if text == "all" {
            return Ok(Self::All);
        }
        match text.parse::<u32>() {
            Ok(id) if id.to_string() == text => Ok(Self::Id(id)),
            _ => Ok(Self::Name(text.to_owned())),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Id(id) => write!(f, "{id}"),
            Self::Name(n) => f.write_str(n),
        }
    }
}

crate::text::serde_as_text!(Target);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        assert_eq!("all".parse(), Ok(Target::All));
        assert_eq!("3".parse(), Ok(Target::Id(3)));
        assert_eq!("007".parse(), Ok(Target::Name("007".into())));
        assert_eq!("api".parse(), Ok(Target::Name("api".into())));
        assert_eq!("".parse::<Target>(), Err(EmptyTarget));
        assert_eq!("  ".parse::<Target>(), Err(EmptyTarget));
    }

    #[test]
    fn matches_names_namespaces_and_ids() {
        let t = Target::Name("web".into());
        assert!(t.matches(0, "web", "default") && t.matches(1, "x", "web"));
        assert!(!t.matches(0, "api", "default"));
        assert!(Target::Id(2).matches(2, "a", "b") && !Target::Id(2).matches(3, "a", "b"));
        assert!(Target::All.matches(9, "a", "b"));
    }

    #[test]
    fn travels_as_a_string() {
        let ts = Target::parse_all(&["all", "1", "web"]).unwrap();
        let json = serde_json::to_string(&ts).unwrap();
        assert_eq!(json, r#"["all","1","web"]"#);
        assert_eq!(serde_json::from_str::<Vec<Target>>(&json).unwrap(), ts);
        assert!(serde_json::from_str::<Target>("\"\"").is_err());
    }
}
