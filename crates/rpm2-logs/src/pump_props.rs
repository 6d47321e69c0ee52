//! Property tests of a pump on a worker's output (issue 15): any bytes,
//! cut anywhere, in every mode, never panic; what followers get of valid
//! UTF-8 output is that output, whatever the cuts (a character split by a
//! read is held back, not replaced).

use proptest::prelude::*;
use rpm2_proto::{Event, EventProcess};

use super::{LogFormat, Pump, PumpConfig, StreamKind};
use crate::bus;

/// `bytes` cut at `cuts` (modulo its length, in order).
fn chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in at {
        out.push(bytes[start..cut].to_vec());
        start = cut;
    }
    out.push(bytes[start..].to_vec());
    out
}

fn pump(format: LogFormat) -> (Pump, bus::Receiver) {
    let (bus, rx) = bus::channel(bus::SUBSCRIBER_LIMIT);
    let pump = Pump::new(PumpConfig {
        kind: StreamKind::Out,
        files: Vec::new(),
        format,
        process: EventProcess {
            pm_id: 0,
            name: "app".into(),
            namespace: "default".into(),
        },
        bus,
    });
    (pump, rx)
}

fn formats() -> impl Strategy<Value = LogFormat> {
    let date = proptest::option::of(prop_oneof![
        Just("%Y-%m-%d %H:%M:%S".to_owned()),
        "\\PC{0,12}",
        "[%a-zA-Z:. -]{0,12}",
    ]);
    (date, any::<bool>()).prop_map(|(date_format, json)| LogFormat { date_format, json })
}

proptest! {
    #[test]
    fn any_output_any_cuts_any_mode_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        format in formats(),
        flush_at in proptest::collection::vec(any::<usize>(), 0..3),
    ) {
        let (mut p, _rx) = pump(format);
        let parts = chunks(&bytes, &cuts);
        for (i, part) in parts.iter().enumerate() {
            p.chunk(part);
            if flush_at.iter().any(|f| f % parts.len() == i) {
                p.flush_partial(false);
            }
        }
        p.finish();
    }

    #[test]
    fn followers_get_utf8_output_whole_whatever_the_cuts(
        text in "\\PC{0,60}",
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let (mut p, mut rx) = pump(LogFormat::default());
        for part in chunks(text.as_bytes(), &cuts) {
            p.chunk(&part);
        }
        p.finish();
        let mut got = String::new();
        while let Ok(event) = rx.try_recv() {
            if let Event::LogOut { data, .. } = event {
                got.push_str(&data);
            }
        }
        prop_assert_eq!(got, text);
    }
}
