//! A YAML tree and its printer: block style like a hand-written Envoy
//! config, with comments where a reader needs them, flow style (`{ a: 1 }`)
//! for small leaves, and literal blocks (`|`) for embedded documents such as
//! the plugin JSON. Only what the renderers build is printable, and every
//! string is quoted when YAML could read it as anything but that string.

use std::fmt::Write;

/// A YAML node.
#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    /// A mapping, in this order.
    Map(Vec<Entry>),
    /// A sequence.
    Seq(Vec<Yaml>),
    /// A string, quoted as needed.
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// `null`.
    Null,
    /// A number as JSON wrote it (e.g. `1.5`), printed as it is.
    Number(String),
    /// A multi-line string printed as a literal block (`|`) when it can be
    /// (else quoted like [`Yaml::Str`]).
    Block(String),
    /// This node (a map or a sequence) on one line: `{ a: 1, b: [x] }`.
    Flow(Box<Yaml>),
}

/// One key of a mapping, with comment lines printed above it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub value: Yaml,
    pub comment: Vec<String>,
}

impl Yaml {
    pub fn str(value: impl Into<String>) -> Yaml {
        Yaml::Str(value.into())
    }

    pub fn int(value: impl Into<i64>) -> Yaml {
        Yaml::Int(value.into())
    }

    pub fn flow(self) -> Yaml {
        Yaml::Flow(Box::new(self))
    }

    /// A mapping from `(key, value)` pairs, without comments.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Yaml)>) -> Yaml {
        Yaml::Map(
            entries
                .into_iter()
                .map(|(key, value)| Entry {
                    key: key.into(),
                    value,
                    comment: Vec::new(),
                })
                .collect(),
        )
    }

    /// The value at `key` of a mapping (through a flow wrapper).
    pub fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            Yaml::Flow(inner) => inner.get(key),
            _ => None,
        }
    }

    /// The same tree as a JSON value (comments and styles dropped): what a
    /// YAML reader makes of the printed text.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Yaml::Map(entries) => Value::Object(entries.iter().map(|e| (e.key.clone(), e.value.to_json())).collect()),
            Yaml::Seq(items) => Value::Array(items.iter().map(Yaml::to_json).collect()),
            Yaml::Str(s) | Yaml::Block(s) => Value::String(s.clone()),
            Yaml::Int(n) => Value::from(*n),
            Yaml::Bool(b) => Value::Bool(*b),
            Yaml::Null => Value::Null,
            Yaml::Number(n) => n.parse::<serde_json::Number>().map_or(Value::Null, Value::Number),
            Yaml::Flow(inner) => inner.to_json(),
        }
    }

    /// A JSON value as a tree (block style).
    pub fn from_json(value: &serde_json::Value) -> Yaml {
        use serde_json::Value;
        match value {
            Value::Null => Yaml::Null,
            Value::Bool(b) => Yaml::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Yaml::Int(i),
                None => Yaml::Number(n.to_string()),
            },
            Value::String(s) => Yaml::Str(s.clone()),
            Value::Array(items) => Yaml::Seq(items.iter().map(Yaml::from_json).collect()),
            Value::Object(map) => Yaml::map(map.iter().map(|(k, v)| (k.clone(), Yaml::from_json(v)))),
        }
    }
}

/// Prints a document: `top` must be a mapping; `header` lines become
/// comments above it.
pub fn print(top: &Yaml, header: &[String]) -> String {
    let mut out = String::new();
    for line in header {
        comment_line(&mut out, 0, line);
    }
    match top {
        Yaml::Map(entries) => print_entries(&mut out, entries, 0),
        other => {
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
    out
}

fn comment_line(out: &mut String, indent: usize, text: &str) {
    pad(out, indent);
    if text.is_empty() {
        out.push_str("#\n");
    } else {
        let _ = writeln!(out, "# {text}");
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn print_entries(out: &mut String, entries: &[Entry], indent: usize) {
    for (i, entry) in entries.iter().enumerate() {
        // Top-level sections (a commented key, or a block after a block)
        // are set apart by a blank line.
        let block = |e: &Entry| {
            matches!(&e.value, Yaml::Map(m) if !m.is_empty()) || matches!(&e.value, Yaml::Seq(s) if !s.is_empty())
        };
        let after_block = i > 0 && entries.get(i - 1).is_some_and(block);
        if indent == 0 && i > 0 && (!entry.comment.is_empty() || (block(entry) && after_block)) {
            out.push('\n');
        }
        for line in &entry.comment {
            comment_line(out, indent, line);
        }
        pad(out, indent);
        print_entry_body(out, entry, indent);
    }
}

/// `key: value` from the current position (indentation already written).
fn print_entry_body(out: &mut String, entry: &Entry, indent: usize) {
    out.push_str(&scalar(&entry.key));
    out.push(':');
    print_value(out, &entry.value, indent, indent + 2);
}

/// A value after `key:` (or after `- ` for `seq_indent` purposes): nested
/// maps go `child_indent` deep, sequences at the key's own `indent`.
fn print_value(out: &mut String, value: &Yaml, indent: usize, child_indent: usize) {
    match value {
        Yaml::Map(entries) if !entries.is_empty() => {
            out.push('\n');
            print_entries(out, entries, child_indent);
        }
        Yaml::Seq(items) if !items.is_empty() => {
            out.push('\n');
            print_items(out, items, indent);
        }
        Yaml::Block(text) if blockable(text) => {
            // `|` keeps one final line break, `|-` none.
            out.push_str(if text.ends_with('\n') { " |\n" } else { " |-\n" });
            for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
                if !line.is_empty() {
                    pad(out, child_indent);
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn print_items(out: &mut String, items: &[Yaml], indent: usize) {
    for item in items {
        match item {
            Yaml::Map(entries) if !entries.is_empty() => {
                let mut rest = entries.iter();
                if let Some(first) = rest.next() {
                    for line in &first.comment {
                        comment_line(out, indent, line);
                    }
                    pad(out, indent);
                    out.push_str("- ");
                    print_entry_body(out, first, indent + 2);
                }
                for entry in rest {
                    for line in &entry.comment {
                        comment_line(out, indent + 2, line);
                    }
                    pad(out, indent + 2);
                    print_entry_body(out, entry, indent + 2);
                }
            }
            Yaml::Seq(inner) if !inner.is_empty() => {
                pad(out, indent);
                out.push_str("-\n");
                print_items(out, inner, indent + 2);
            }
            other => {
                pad(out, indent);
                out.push_str("- ");
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }
}

/// A node on one line (flow style).
fn inline(value: &Yaml) -> String {
    match value {
        Yaml::Map(entries) if entries.is_empty() => "{}".to_owned(),
        Yaml::Map(entries) => {
            let fields: Vec<String> = entries
                .iter()
                .map(|e| format!("{}: {}", scalar(&e.key), inline(&e.value)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        Yaml::Seq(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Yaml::Str(s) => scalar(s),
        Yaml::Null => "null".to_owned(),
        Yaml::Number(n) => n.clone(),
        Yaml::Block(s) => scalar(s),
        Yaml::Int(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Flow(inner) => inline(inner),
    }
}

/// Whether `text` can be a literal block: printable lines, the first not
/// starting with a space (the block's indentation would be ambiguous), no
/// trailing spaces, at most one final line break.
fn blockable(text: &str) -> bool {
    let body = text.strip_suffix('\n').unwrap_or(text);
    !body.is_empty()
        && !body.ends_with('\n')
        && !body.starts_with(' ')
        && !body.starts_with('\t')
        && body.chars().all(|c| c == '\n' || printable(c))
        && body.split('\n').all(|line| line.trim_end() == line)
}

/// A string scalar: plain when YAML reads it back as this same string in
/// any context, else double-quoted, else single-quoted (no escapes
/// needed), else JSON-escaped in double quotes (valid YAML).
fn scalar(s: &str) -> String {
    if is_plain(s) {
        return s.to_owned();
    }
    let printable = s.chars().all(printable);
    if printable && !s.contains('"') && !s.contains('\\') {
        return format!("\"{s}\"");
    }
    if printable && !s.contains('\'') {
        return format!("'{s}'");
    }
    escaped(s)
}

/// Characters YAML takes as written inside quotes: not control characters,
/// and not the Unicode line and paragraph separators or the byte-order mark
/// (YAML reads those as line breaks or drops them).
fn printable(c: char) -> bool {
    !c.is_control() && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// A double-quoted scalar with YAML escapes.
fn escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if !printable(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_plain(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-');
    if !(first.is_ascii_alphabetic() || first == '/' || first == '_' || first.is_ascii_digit()) {
        return false;
    }
    if !s.chars().all(safe) {
        return false;
    }
    const SPECIAL: [&str; 11] = [
        "true", "false", "yes", "no", "on", "off", "null", "y", "n", "nan", "inf",
    ];
    if SPECIAL.contains(&s.to_ascii_lowercase().as_str()) {
        return false;
    }
    // Anything a YAML 1.1 or 1.2 reader could take for a number (1, 1.5,
    // 0x1f, 1e3, 1_000, .5) stays quoted; addresses such as 127.0.0.1 and
    // durations such as 0.25s are strings to every reader.
    if first.is_ascii_digit() {
        let dots = s.matches('.').count();
        let looks_numeric = s
            .chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | '_' | '-' | 'x' | 'X' | 'o' | 'O'));
        if looks_numeric && dots <= 1 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn string() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9_./-]{0,10}",
            "[ -~]{0,12}",
            any::<String>(),
            prop::sample::select(vec![
                "true",
                "No",
                "null",
                "~",
                "1.5",
                "0x10",
                "1e3",
                "-",
                "- a",
                ": b",
                "#c",
                "'",
                "\"",
                "@type",
                "a: b",
                "a #b",
                "[x]",
                "{y}",
                "*z",
                "&w",
                "!v",
                "%u",
                "|",
                ">",
                "?",
                "127.0.0.1",
                "0.25s",
                "1_000",
                ".5",
                "+1",
                "0o7",
                ".inf",
                "-.nan"
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z_@.][a-z0-9_.]{0,8}", string()]
    }

    fn tree() -> impl Strategy<Value = Yaml> {
        let leaf = prop_oneof![
            string().prop_map(Yaml::Str),
            any::<i64>().prop_map(Yaml::Int),
            any::<bool>().prop_map(Yaml::Bool),
            Just(Yaml::Null),
            "[a-z{}\\[\\]\": ,0-9]{1,12}(\n[ a-z{}\": ,0-9]{0,12}){0,4}\n?".prop_map(Yaml::Block),
        ];
        leaf.prop_recursive(4, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Yaml::Seq),
                prop::collection::btree_map(key(), (inner.clone(), prop::collection::vec("[ -~]{0,20}", 0..2)), 0..4)
                    .prop_map(|m| Yaml::Map(
                        m.into_iter()
                            .map(|(key, (value, comment))| Entry { key, value, comment })
                            .collect()
                    )),
                prop::collection::btree_map(key(), inner, 0..3).prop_map(|m| Yaml::map(m).flow()),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// What a YAML reader makes of the printed text is the tree.
        #[test]
        fn a_yaml_reader_reads_back_the_tree(entries in prop::collection::btree_map(key(), tree(), 1..5)) {
            let top = Yaml::map(entries);
            let text = print(&top, &["a header".to_owned()]);
            let read: serde_json::Value = serde_norway::from_str(&text)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(read, top.to_json(), "{}", text);
        }
    }

    #[test]
    fn strings_are_quoted_when_yaml_would_read_something_else() {
        for (s, printed) in [
            ("primary", "primary"),
            ("127.0.0.1", "127.0.0.1"),
            ("0.25s", "0.25s"),
            ("/api", "/api"),
            ("100", "\"100\""),
            ("1.5", "\"1.5\""),
            ("1e3", "\"1e3\""),
            ("0x1f", "\"0x1f\""),
            ("true", "\"true\""),
            ("No", "\"No\""),
            ("", "\"\""),
            ("@type", "\"@type\""),
            ("a b", "\"a b\""),
            (
                "outbound|8080||api.shop.svc.cluster.local",
                "\"outbound|8080||api.shop.svc.cluster.local\"",
            ),
            (r"(route=\.=(.*?);\.;)", r"'(route=\.=(.*?);\.;)'"),
            ("it's \"x\" \\", r#""it's \"x\" \\""#),
            ("a\nb", "\"a\\nb\""),
        ] {
            assert_eq!(scalar(s), printed, "{s:?}");
        }
    }

    #[test]
    fn prints_block_style_with_comments_flow_leaves_and_literal_blocks() {
        let tree = Yaml::Map(vec![
            Entry {
                key: "admin".into(),
                value: Yaml::map([("address", Yaml::map([("port_value", Yaml::int(9901))]).flow())]),
                comment: vec!["The admin interface.".into()],
            },
            Entry {
                key: "clusters".into(),
                value: Yaml::Seq(vec![
                    Yaml::Map(vec![
                        Entry {
                            key: "name".into(),
                            value: Yaml::str("shadow"),
                            comment: vec!["The shadow.".into()],
                        },
                        Entry {
                            key: "hosts".into(),
                            value: Yaml::Seq(vec![Yaml::str("a"), Yaml::str("b")]),
                            comment: vec![],
                        },
                    ]),
                    Yaml::str("x"),
                ]),
                comment: vec![],
            },
            Entry {
                key: "value".into(),
                value: Yaml::Block("{\n  \"a\": 1\n}\n".into()),
                comment: vec![],
            },
            Entry {
                key: "empty".into(),
                value: Yaml::Map(vec![]),
                comment: vec![],
            },
        ]);
        let text = print(&tree, &["top".to_owned()]);
        assert_eq!(
            text,
            "# top\n# The admin interface.\nadmin:\n  address: { port_value: 9901 }\n\nclusters:\n# The shadow.\n- name: shadow\n  hosts:\n  - a\n  - b\n- x\nvalue: |\n  {\n    \"a\": 1\n  }\nempty: {}\n"
        );
    }

    #[test]
    fn json_round_trips_through_the_tree() {
        let value = serde_json::json!({"a": [1, "2", null, true, 1.5, {"b": {}}], "c": "x y"});
        assert_eq!(Yaml::from_json(&value).to_json()["c"], value["c"]);
        let text = print(&Yaml::from_json(&value), &[]);
        assert_eq!(text, "a:\n- 1\n- \"2\"\n- null\n- true\n- 1.5\n- b: {}\nc: \"x y\"\n");
    }
}
