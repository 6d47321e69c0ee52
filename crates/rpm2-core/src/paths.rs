//! The `RPM2_HOME` layout lives in `rpm2-client` (clients find the socket
//! there too); the daemon's own file-name rules are here.

pub use rpm2_client::Home;

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
    }
}
