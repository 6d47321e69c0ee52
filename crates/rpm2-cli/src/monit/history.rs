//! The last samples of a worker's CPU and memory, drawn as sparklines.

use std::collections::VecDeque;

/// Samples kept per worker: more than any sparkline column shows.
pub const SAMPLES: usize = 60;

/// Eighths of a cell, lowest first.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// CPU (percent of one core) and memory (bytes), one sample per list.
#[derive(Debug, Default, Clone)]
pub struct History {
    cpu: VecDeque<f64>,
    memory: VecDeque<f64>,
}

impl History {
    pub fn push(&mut self, cpu: f64, memory: u64) {
        push_bounded(&mut self.cpu, cpu);
        #[expect(clippy::cast_precision_loss, reason = "a bar height")]
        push_bounded(&mut self.memory, memory as f64);
    }

    /// CPU bars against 100 % (or the peak, for multi-core bursts), so an
    /// idle app reads as idle rather than as noise blown up.
    pub fn cpu_spark(&self, width: usize) -> String {
        let peak = self.cpu.iter().copied().fold(100.0, f64::max);
        spark(&self.cpu, peak, width)
    }

    /// Memory bars against the window's peak: growth shows as a ramp.
    pub fn memory_spark(&self, width: usize) -> String {
        let peak = self.memory.iter().copied().fold(0.0, f64::max);
        spark(&self.memory, peak, width)
    }
}

fn push_bounded(q: &mut VecDeque<f64>, v: f64) {
    if q.len() == SAMPLES {
        q.pop_front();
    }
    q.push_back(if v.is_finite() { v.max(0.0) } else { 0.0 });
}

/// The newest `width` samples as bars scaled to `ceiling`, right-aligned:
/// columns without a sample yet are blank.
#[must_use]
pub fn spark(samples: &VecDeque<f64>, ceiling: f64, width: usize) -> String {
    let shown = samples.len().min(width);
    let mut text = " ".repeat(width - shown);
    for &v in samples.iter().skip(samples.len() - shown) {
        let level = if ceiling > 0.0 {
            (v / ceiling * 8.0).ceil()
        } else {
            0.0
        };
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "clamped to 1..=8 first"
        )]
        let index = level.clamp(1.0, 8.0) as usize - 1;
        text.push(BARS[index]);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_ceiling_and_pad_on_the_left() {
        let q: VecDeque<f64> = [0.0, 50.0, 100.0].into_iter().collect();
        assert_eq!(spark(&q, 100.0, 5), "  ▁▄█");
        assert_eq!(spark(&q, 100.0, 2), "▄█");
        assert_eq!(spark(&q, 0.0, 3), "▁▁▁");
        assert_eq!(spark(&VecDeque::new(), 1.0, 0), "");
    }

    #[test]
    fn history_keeps_the_newest_samples() {
        let mut h = History::default();
        for i in 0..(SAMPLES + 5) {
            h.push(0.0, u64::try_from(i).unwrap_or(0));
        }
        assert_eq!(h.memory.len(), SAMPLES);
        assert_eq!(h.memory.front().copied(), Some(5.0));
        // Idle CPU stays at the lowest bar; memory ramps up to the peak.
        assert_eq!(h.cpu_spark(3), "▁▁▁");
        assert!(h.memory_spark(3).ends_with('█'));
        h.push(f64::NAN, 0);
        assert_eq!(h.cpu.back().copied(), Some(0.0));
    }
}
