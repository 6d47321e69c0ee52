//! Node's `util.inspect` text for JSON data, for `prettylist`.
//!
//! pm2's e2e scripts grep `pm2 prettylist` output (`status: 'online'`,
//! `NODE_APP_INSTANCE: 3`, `pm_out_log_path: '...'` on its own line...), so
//! this follows Node 20's `lib/internal/util/inspect.js` closely with the
//! options pm2 passes (`depth: 10`, no colours): quoting rules, string
//! escaping, the `breakLength` 80 / `compact` 3 line-breaking heuristics,
//! numeric array grouping and the `... n more items` cut at 100 entries.

use std::fmt::{self, Write as _};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::format::js_number;

/// Node's defaults for `util.inspect`, with pm2's `depth: 10`.
const DEPTH: usize = 10;
const BREAK_LENGTH: usize = 80;
const COMPACT: usize = 3;
const MIN_LINE_WIDTH: usize = 16;
const MAX_ARRAY_LENGTH: usize = 100;

/// A JSON value whose objects keep JavaScript's property order.
///
/// `serde_json::Map` is sorted unless `preserve_order` is on, but Node shows
/// keys in insertion order (integer-like keys first, ascending), and the
/// order decides where lines break. So values are rebuilt in this form,
/// deserialised straight from JSON text when the order is known.
#[derive(Debug, Clone, PartialEq)]
enum Js {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Js>),
    Obj(Vec<(String, Js)>),
}

impl Js {
    /// Builds an object with JS property order: array-index keys first in
    /// numeric order, then the rest in insertion order; a repeated key keeps
    /// its first position and its last value, as `JSON.parse` does.
    fn object(entries: impl IntoIterator<Item = (String, Js)>) -> Js {
        let mut out: Vec<(String, Js)> = Vec::new();
        for (k, v) in entries {
            match out.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
        let (mut indices, named): (Vec<_>, Vec<_>) =
            out.into_iter().partition(|(k, _)| array_index(k).is_some());
        indices.sort_by_key(|(k, _)| array_index(k));
        indices.extend(named);
        Js::Obj(indices)
    }
}

/// `Some(n)` when `key` is a canonical array index (`0`, `17`, not `017`).
fn array_index(key: &str) -> Option<u32> {
    let n: u32 = key.parse().ok()?;
    (n != u32::MAX && n.to_string() == key).then_some(n)
}

impl From<&Value> for Js {
    fn from(v: &Value) -> Js {
        match v {
            Value::Null => Js::Null,
            Value::Bool(b) => Js::Bool(*b),
            Value::Number(n) => Js::Num(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => Js::Str(s.clone()),
            Value::Array(a) => Js::Arr(a.iter().map(Js::from).collect()),
            Value::Object(o) => Js::object(o.iter().map(|(k, v)| (k.clone(), Js::from(v)))),
        }
    }
}

impl<'de> Deserialize<'de> for Js {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Js, D::Error> {
        d.deserialize_any(JsVisitor)
    }
}

/// Collects maps entry by entry, so document order survives.
struct JsVisitor;

impl<'de> Visitor<'de> for JsVisitor {
    type Value = Js;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Js, E> {
        Ok(Js::Null)
    }
    fn visit_none<E>(self) -> Result<Js, E> {
        Ok(Js::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Js, D::Error> {
        Js::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Js, E> {
        Ok(Js::Bool(b))
    }
    #[expect(clippy::cast_precision_loss, reason = "JS numbers are doubles too")]
    fn visit_i64<E>(self, n: i64) -> Result<Js, E> {
        Ok(Js::Num(n as f64))
    }
    #[expect(clippy::cast_precision_loss, reason = "JS numbers are doubles too")]
    fn visit_u64<E>(self, n: u64) -> Result<Js, E> {
        Ok(Js::Num(n as f64))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Js, E> {
        Ok(Js::Num(n))
    }
    fn visit_str<E>(self, s: &str) -> Result<Js, E> {
        Ok(Js::Str(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Js, E> {
        Ok(Js::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Js, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Js::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Js, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Js>()? {
            entries.push(entry);
        }
        Ok(Js::object(entries))
    }
}

/// `util.inspect(value, { depth: 10 })` as Node 20 prints it.
#[must_use]
pub fn inspect(value: &Value) -> String {
    inspect_js(&Js::from(value))
}

/// pm2's `prettylist`: the process list through `util.inspect`.
///
/// Goes through JSON text rather than `serde_json::Value` so fields keep
/// their struct order, as in pm2's output.
#[must_use]
pub fn render_prettylist(procs: &[rpm2_proto::ProcessInfo]) -> String {
    let js = serde_json::to_string(procs)
        .ok()
        .and_then(|text| serde_json::from_str::<Js>(&text).ok())
        .unwrap_or(Js::Arr(Vec::new()));
    inspect_js(&js)
}

fn inspect_js(v: &Js) -> String {
    let mut ctx = Ctx {
        indentation_lvl: 0,
        current_depth: 0,
    };
    format_value(&mut ctx, v, 0)
}

/// The two pieces of Node's inspect context that shape the layout.
struct Ctx {
    /// Spaces the value being formatted is indented by.
    indentation_lvl: usize,
    /// Depth of the most recently entered object; Node keeps an object on
    /// one line only if fewer than `compact` (3) levels were entered below.
    current_depth: usize,
}

fn format_value(ctx: &mut Ctx, v: &Js, recurse_times: usize) -> String {
    match v {
        Js::Null => "null".to_owned(),
        Js::Bool(b) => b.to_string(),
        Js::Num(n) => js_number(*n),
        Js::Str(s) => format_string(ctx, s),
        Js::Arr(items) if items.is_empty() => "[]".to_owned(),
        Js::Obj(entries) if entries.is_empty() => "{}".to_owned(),
        Js::Arr(_) | Js::Obj(_) if recurse_times > DEPTH => if matches!(v, Js::Arr(_)) {
            "[Array]"
        } else {
            "[Object]"
        }
        .to_owned(),
        Js::Arr(items) => {
            let depth = enter(ctx, recurse_times);
            let shown = items.len().min(MAX_ARRAY_LENGTH);
            let mut output: Vec<String> = items[..shown]
                .iter()
                .map(|item| format_property(ctx, item, depth))
                .collect();
            let remaining = items.len() - shown;
            if remaining > 0 {
                let s = if remaining > 1 { "s" } else { "" };
                output.push(format!("... {remaining} more item{s}"));
            }
            reduce_to_single_string(ctx, output, ('[', ']'), Some(items), depth)
        }
        Js::Obj(entries) => {
            let depth = enter(ctx, recurse_times);
            let output = entries
                .iter()
                .map(|(key, value)| {
                    let name = if is_identifier(key) {
                        key.clone()
                    } else {
                        str_escape(key)
                    };
                    format!("{name}: {}", format_property(ctx, value, depth))
                })
                .collect();
            reduce_to_single_string(ctx, output, ('{', '}'), None, depth)
        }
    }
}

/// Node's bookkeeping on entering a non-empty container.
fn enter(ctx: &mut Ctx, recurse_times: usize) -> usize {
    ctx.current_depth = recurse_times + 1;
    recurse_times + 1
}

/// A property value is formatted two spaces further in.
fn format_property(ctx: &mut Ctx, v: &Js, recurse_times: usize) -> String {
    ctx.indentation_lvl += 2;
    let s = format_value(ctx, v, recurse_times);
    ctx.indentation_lvl -= 2;
    s
}

/// Keys matching `/^[a-zA-Z_][a-zA-Z_0-9]*$/` are printed bare.
fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// JavaScript string length (UTF-16 code units), which Node's width
/// arithmetic uses.
fn js_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Long strings are split after each newline into `'...\n' +` pieces.
fn format_string(ctx: &Ctx, s: &str) -> String {
    let len = js_len(s);
    if len > MIN_LINE_WIDTH && len + ctx.indentation_lvl + 4 > BREAK_LENGTH {
        let sep = format!(" +\n{}", " ".repeat(ctx.indentation_lvl + 2));
        return s
            .split_inclusive('\n')
            .map(str_escape)
            .collect::<Vec<_>>()
            .join(&sep);
    }
    str_escape(s)
}

/// Quotes a string like Node: single quotes, unless the string contains
/// one, then double quotes, then backticks, and `\'` only as last resort.
fn str_escape(s: &str) -> String {
    let quote = if !s.contains('\'') {
        '\''
    } else if !s.contains('"') {
        '"'
    } else if !s.contains('`') && !s.contains("${") {
        '`'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\'' if quote == '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}' => {
                let _ = write!(out, "\\x{:02X}", u32::from(c));
            }
            _ => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Node's `reduceToSingleString`: one line when short and shallow enough,
/// otherwise one entry (or group of array entries) per line.
fn reduce_to_single_string(
    ctx: &Ctx,
    mut output: Vec<String>,
    (open, close): (char, char),
    array: Option<&[Js]>,
    recurse_times: usize,
) -> String {
    let entries = output.len();
    if let Some(items) = array {
        if entries > 6 {
            output = group_array_elements(ctx, output, items);
        }
    }
    if ctx.current_depth - recurse_times < COMPACT && entries == output.len() {
        let start = output.len() + ctx.indentation_lvl + 1 + 10;
        if is_below_break_length(&output, start) {
            let joined = output.join(", ");
            if !joined.contains('\n') {
                return format!("{open} {joined} {close}");
            }
        }
    }
    let indentation = format!("\n{}", " ".repeat(ctx.indentation_lvl));
    let sep = format!(",{indentation}  ");
    format!(
        "{open}{indentation}  {}{indentation}{close}",
        output.join(&sep)
    )
}

fn is_below_break_length(output: &[String], start: usize) -> bool {
    let mut total = output.len() + start;
    if total + output.len() > BREAK_LENGTH {
        return false;
    }
    for entry in output {
        total += js_len(entry);
        if total > BREAK_LENGTH {
            return false;
        }
    }
    true
}

/// Node's `groupArrayElements`: arrays of more than six short entries are
/// laid out in aligned columns (numbers right-aligned, others left).
#[expect(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "small non-negative layout numbers, as in Node's float arithmetic"
)]
fn group_array_elements(ctx: &Ctx, output: Vec<String>, items: &[Js]) -> Vec<String> {
    const SEPARATOR_SPACE: usize = 2;
    let output_length = if items.len() > MAX_ARRAY_LENGTH {
        output.len() - 1
    } else {
        output.len()
    };
    let data_len: Vec<usize> = output[..output_length].iter().map(|s| js_len(s)).collect();
    let total_length: usize = data_len.iter().map(|l| l + SEPARATOR_SPACE).sum();
    let max_length = data_len.iter().copied().max().unwrap_or(0);
    let actual_max = max_length + SEPARATOR_SPACE;
    if actual_max * 3 + ctx.indentation_lvl >= BREAK_LENGTH
        || !(total_length as f64 / actual_max as f64 > 5.0 || max_length <= 6)
    {
        return output;
    }
    let average_bias = (actual_max as f64 - total_length as f64 / output.len() as f64).sqrt();
    let biased_max = (actual_max as f64 - 3.0 - average_bias).max(1.0);
    let columns = ((2.5 * biased_max * output_length as f64).sqrt() / biased_max)
        .round()
        .min(((BREAK_LENGTH - ctx.indentation_lvl) / actual_max) as f64)
        .min((COMPACT * 4) as f64)
        .min(15.0) as usize;
    if columns <= 1 {
        return output;
    }
    let max_line_length: Vec<usize> = (0..columns)
        .map(|i| {
            let widest = (i..output.len())
                .step_by(columns)
                .filter_map(|j| data_len.get(j).copied())
                .max()
                .unwrap_or(0);
            widest + SEPARATOR_SPACE
        })
        .collect();
    let pad_start = items
        .iter()
        .take(output.len())
        .all(|v| matches!(v, Js::Num(_)));
    let pad = |s: String, width: usize| {
        let fill = " ".repeat(width.saturating_sub(js_len(&s)));
        if pad_start {
            format!("{fill}{s}")
        } else {
            format!("{s}{fill}")
        }
    };
    let mut grouped = Vec::new();
    for row in (0..output_length).step_by(columns) {
        let max = (row + columns).min(output_length);
        let mut line = String::new();
        for j in row..max - 1 {
            line.push_str(&pad(format!("{}, ", output[j]), max_line_length[j - row]));
        }
        let last = max - 1;
        if pad_start {
            let width = max_line_length[last - row] - SEPARATOR_SPACE;
            line.push_str(&pad(output[last].clone(), width));
        } else {
            line.push_str(&output[last]);
        }
        grouped.push(line);
    }
    if output_length < output.len() {
        grouped.push(output[output_length].clone());
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inspects JSON text keeping its key order, as Node's `JSON.parse` does.
    fn inspect_json(text: &str) -> String {
        match serde_json::from_str::<Js>(text) {
            Ok(js) => inspect_js(&js),
            Err(e) => panic!("bad test JSON: {e}"),
        }
    }

    // Expected strings below were produced by Node 20:
    // node -e "console.log(require('util').inspect(JSON.parse(process.argv[1]), {depth:10}))" '<json>'

    #[test]
    fn keys_quoted_only_when_not_identifiers() {
        let json = r#"{"status":"online","restart_time":2,"watch":true,"NODE_APP_INSTANCE":3,"log:out":"x","$k":null,"a-b":1.5,"0":0.1}"#;
        let want = "{
  '0': 0.1,
  status: 'online',
  restart_time: 2,
  watch: true,
  NODE_APP_INSTANCE: 3,
  'log:out': 'x',
  '$k': null,
  'a-b': 1.5
}";
        assert_eq!(inspect_json(json), want);
    }

    #[test]
    fn nesting_and_empty_containers() {
        let json = r#"{"nested":{"deep":{"deeper":{"deepest":{"x":1}}}},"list":["server","client"],"empty_obj":{},"empty_arr":[]}"#;
        let want = "{
  nested: {
    deep: { deeper: { deepest: { x: 1 } } }
  },
  list: [ 'server', 'client' ],
  empty_obj: {},
  empty_arr: []
}";
        assert_eq!(inspect_json(json), want);
        assert_eq!(inspect_json("{}"), "{}");
        assert_eq!(inspect_json("[]"), "[]");
        assert_eq!(inspect_json("null"), "null");
        assert_eq!(inspect_json(r#"{"msg":"pong"}"#), "{ msg: 'pong' }");
    }

    #[test]
    fn long_objects_break_one_entry_per_line() {
        let json = r#"{"pm_out_log_path":"/home/user/.pm2/logs/app-out.log","pm_err_log_path":"/home/user/.pm2/logs/app-error.log"}"#;
        let want = "{
  pm_out_log_path: '/home/user/.pm2/logs/app-out.log',
  pm_err_log_path: '/home/user/.pm2/logs/app-error.log'
}";
        assert_eq!(inspect_json(json), want);
    }

    #[test]
    fn string_quoting_and_escapes() {
        let json =
            r#"["it's","say \"hi\"","both ' and \"","all ' \" `","back\\slash","tab\there\u0001"]"#;
        let want = r#"[
  "it's",
  'say "hi"',
  `both ' and "`,
  'all \' " `',
  'back\\slash',
  'tab\there\x01'
]"#;
        assert_eq!(inspect_json(json), want);
    }

    #[test]
    fn long_multiline_strings_are_split() {
        let json = r#"{"text":"first line\nsecond line that is long enough to force the string to be split over lines"}"#;
        let want = "{
  text: 'first line\\n' +
    'second line that is long enough to force the string to be split over lines'
}";
        assert_eq!(inspect_json(json), want);
    }

    #[test]
    fn primitives_and_numbers() {
        let json = "[null,true,false,-0.5,1e21,1.5e-7,1700000000123]";
        assert_eq!(
            inspect_json(json),
            "[ null, true, false, -0.5, 1e+21, 1.5e-7, 1700000000123 ]"
        );
        assert_eq!(inspect_json("[1.5, 0.1, 42]"), "[ 1.5, 0.1, 42 ]");
    }

    #[test]
    fn numeric_arrays_are_grouped() {
        let nums: Vec<String> = (1..=26).map(|n| n.to_string()).collect();
        let want = "[
   1,  2,  3,  4,  5,  6,  7,  8,
   9, 10, 11, 12, 13, 14, 15, 16,
  17, 18, 19, 20, 21, 22, 23, 24,
  25, 26
]";
        assert_eq!(inspect_json(&format!("[{}]", nums.join(","))), want);
    }

    #[test]
    fn depth_limit_and_long_arrays() {
        let deep = r#"{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":{"k":{"l":1}}}}}}}}}}}}"#;
        let got = inspect_json(deep);
        assert!(
            got.contains("\n                h: { i: { j: { k: [Object] } } }\n"),
            "{got}"
        );
        let many: Vec<String> = (0..103).map(|_| "\"x\"".to_owned()).collect();
        let got = inspect_json(&format!("[{}]", many.join(",")));
        assert!(got.ends_with("  ... 3 more items\n]"), "{got}");
    }

    #[test]
    fn value_entry_point_uses_map_order() {
        // The workspace enables serde_json's `preserve_order`: insertion
        // order is kept, with integer keys first as in JS objects.
        let v = serde_json::json!({ "b": 1, "a": [ "x" ], "10": 2, "9": 3 });
        assert_eq!(inspect(&v), "{ '9': 3, '10': 2, b: 1, a: [ 'x' ] }");
    }
}
