//! File names made from app names, shared by the daemon (which names log
//! and pid files) and the config loader (which warns when two apps would
//! share one).

/// pm2's file-name rule: characters outside `[A-Za-z0-9.-]` become `-`.
#[must_use]
pub fn file_safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_pm2() {
        assert_eq!(file_safe_name("my app/1"), "my-app-1");
        assert_eq!(file_safe_name("api.v2-x"), "api.v2-x");
        assert_eq!(file_safe_name("äb"), file_safe_name("öb"));
    }
}
