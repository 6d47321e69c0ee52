//! Property test (issue 15): any `cron_restart` a config or a client can
//! send is parsed by croner in the actor (`triggers::arm`); a pattern
//! either schedules or is refused, it never panics.

use std::str::FromStr;

use proptest::prelude::*;

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9*,/?LW#-]{1,6}",
        "(\\*|[0-9]{1,2})(/[0-9]{1,3})?",
        "[0-9]{1,2}-[0-9]{1,2}(/[0-9]{1,2})?",
        "(MON|FRI|JAN|DEC|[A-Z]{3})(-(MON|SUN))?",
        "[0-9]{1,10}",
    ]
}

fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::collection::vec(field(), 5..=7).prop_map(|f| f.join(" ")),
        1 => "@[a-z]{0,9}",
        1 => "\\PC{0,20}",
    ]
}

proptest! {
    #[test]
    fn any_cron_pattern_schedules_or_is_refused(pattern in pattern()) {
        if let Ok(cron) = croner::Cron::from_str(&pattern) {
            let _ = cron.find_next_occurrence(&chrono::Local::now(), false);
        }
    }
}
