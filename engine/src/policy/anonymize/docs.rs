//! Structured samples that are not SQL: JSON (and JSON lines), YAML, CSV and `.env` files. Keys and
//! column names are structure and pass (when they look like names); every value is replaced.
//! JSON is read by a small parser of its own so that numbers keep their written form (`12.50` keeps its
//! scale) and objects keep their key order.
use super::synth::{is_secret_key, REDACTED};
use super::{Anonymizer, Document, Lit, SourceKind};
use regex::Regex;
use std::sync::LazyLock;

/// Items of a list that are kept: enough to show the shape.
const LIST_ITEMS: usize = 3;
const MAP_KEYS: usize = 200;
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Map(Vec<(String, Node)>),
    List(Vec<Node>),
    Str(String),
    Num(String),
    Bool(bool),
    Null,
}

struct JsonParser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> JsonParser<'a> {
    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.i))
    }

    fn lit(&mut self, word: &str, node: Node) -> Result<Node, String> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(node)
        } else {
            self.err("unexpected word")
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, String> {
        if depth > 128 {
            return self.err("nesting too deep");
        }
        self.ws();
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut m = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Node::Map(m));
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return self.err("expected a key");
                    }
                    let k = self.string()?;
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return self.err("expected ':'");
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    m.push((k, v));
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Node::Map(m));
                        }
                        _ => return self.err("expected ',' or '}'"),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut l = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Node::List(l));
                }
                loop {
                    l.push(self.value(depth + 1)?);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Node::List(l));
                        }
                        _ => return self.err("expected ',' or ']'"),
                    }
                }
            }
            Some(b'"') => Ok(Node::Str(self.string()?)),
            Some(b't') => self.lit("true", Node::Bool(true)),
            Some(b'f') => self.lit("false", Node::Bool(false)),
            Some(b'n') => self.lit("null", Node::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                self.i += 1;
                while self.b.get(self.i).is_some_and(|c| c.is_ascii_digit() || b".eE+-".contains(c)) {
                    self.i += 1;
                }
                let n = &self.s[start..self.i];
                if n.parse::<f64>().is_err() {
                    return self.err("bad number");
                }
                Ok(Node::Num(n.to_string()))
            }
            _ => self.err("expected a value"),
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
        self.i += 4;
        u32::from_str_radix(h, 16).map_err(|_| "bad \\u escape".to_string())
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while self.i < self.b.len() && self.b[self.i] != b'"' && self.b[self.i] != b'\\' {
                self.i += 1;
            }
            out.push_str(&self.s[start..self.i]);
            match self.b.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let e = *self.b.get(self.i + 1).ok_or("unterminated string")?;
                    self.i += 2;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut c = self.hex4()?;
                            if (0xD800..0xDC00).contains(&c) && self.s[self.i..].starts_with("\\u") {
                                self.i += 2;
                                let lo = self.hex4()?;
                                c = 0x10000 + ((c - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF);
                            }
                            out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                        }
                        _ => return self.err("bad escape"),
                    }
                }
                _ => return self.err("unterminated string"),
            }
        }
    }
}

pub(super) fn parse_json(text: &str) -> Result<Node, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut p = JsonParser { s: text, b: text.as_bytes(), i: 0 };
    let v = p.value(0)?;
    p.ws();
    if p.i != p.b.len() {
        return p.err("trailing text");
    }
    Ok(v)
}

fn from_yaml(y: &yaml_rust2::Yaml) -> Node {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Real(s) => {
            if s.parse::<f64>().is_ok_and(f64::is_finite) {
                Node::Num(s.clone())
            } else {
                Node::Str(s.clone())
            }
        }
        Yaml::Integer(i) => Node::Num(i.to_string()),
        Yaml::String(s) => Node::Str(s.clone()),
        Yaml::Boolean(b) => Node::Bool(*b),
        Yaml::Array(a) => Node::List(a.iter().map(from_yaml).collect()),
        Yaml::Hash(h) => Node::Map(
            h.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) | Yaml::Real(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        _ => "?".into(),
                    };
                    (key, from_yaml(v))
                })
                .collect(),
        ),
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Node::Null,
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn scalar(n: &Node) -> Option<String> {
    match n {
        Node::Str(s) => Some(quote(s)),
        Node::Num(s) => Some(s.clone()),
        Node::Bool(b) => Some(b.to_string()),
        Node::Null => Some("null".into()),
        Node::Map(m) if m.is_empty() => Some("{}".into()),
        Node::List(l) if l.is_empty() => Some("[]".into()),
        _ => None,
    }
}

pub(super) fn render_json(n: &Node, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent + 1);
    let close = "  ".repeat(indent);
    match n {
        Node::Map(m) if !m.is_empty() => {
            out.push_str("{\n");
            for (i, (k, v)) in m.iter().enumerate() {
                out.push_str(&format!("{pad}{}: ", quote(k)));
                render_json(v, indent + 1, out);
                out.push_str(if i + 1 < m.len() { ",\n" } else { "\n" });
            }
            out.push_str(&format!("{close}}}"));
        }
        Node::List(l) if !l.is_empty() => {
            out.push_str("[\n");
            for (i, v) in l.iter().enumerate() {
                out.push_str(&pad);
                render_json(v, indent + 1, out);
                out.push_str(if i + 1 < l.len() { ",\n" } else { "\n" });
            }
            out.push_str(&format!("{close}]"));
        }
        other => out.push_str(&scalar(other).unwrap_or_default()),
    }
}

static PLAIN_KEY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_.-]*$").unwrap());

fn yaml_key(k: &str) -> String {
    if PLAIN_KEY.is_match(k)
        && !["true", "false", "null", "yes", "no", "on", "off"].contains(&k.to_ascii_lowercase().as_str())
    {
        k.to_string()
    } else {
        quote(k)
    }
}

pub(super) fn render_yaml(n: &Node, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    match n {
        Node::Map(m) if !m.is_empty() => {
            for (k, v) in m {
                match scalar(v) {
                    Some(s) => out.push_str(&format!("{pad}{}: {s}\n", yaml_key(k))),
                    None => {
                        out.push_str(&format!("{pad}{}:\n", yaml_key(k)));
                        render_yaml(v, indent + 1, out);
                    }
                }
            }
        }
        Node::List(l) if !l.is_empty() => {
            for v in l {
                match scalar(v) {
                    Some(s) => out.push_str(&format!("{pad}- {s}\n")),
                    None => {
                        // The item's first line moves up beside the dash.
                        let mut item = String::new();
                        render_yaml(v, indent + 1, &mut item);
                        out.push_str(&format!("{pad}- {}", &item[pad.len() + 2..]));
                    }
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other).unwrap_or_default())),
    }
}

static ENV_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$").unwrap());

fn csv_delimiter(first_line: &str) -> u8 {
    [b',', b';', b'\t', b'|']
        .into_iter()
        .max_by_key(|d| first_line.bytes().filter(|b| b == d).count())
        .filter(|d| first_line.as_bytes().contains(d))
        .unwrap_or(b',')
}

impl Anonymizer {
    /// A structured value with every scalar replaced; under a credential-like key everything is redacted.
    pub(super) fn node(&mut self, key: &str, n: &Node, secret: bool, depth: usize) -> Node {
        if depth > MAX_DEPTH {
            return Node::Null;
        }
        match n {
            Node::Map(m) => Node::Map(
                m.iter()
                    .take(MAP_KEYS)
                    .map(|(k, v)| {
                        let name = self.synth.name("key", k);
                        let child = self.node(k, v, secret || is_secret_key(k), depth + 1);
                        (name, child)
                    })
                    .collect(),
            ),
            Node::List(l) => {
                Node::List(l.iter().take(LIST_ITEMS).map(|v| self.node(key, v, secret, depth + 1)).collect())
            }
            _ if secret => Node::Str(REDACTED.into()),
            Node::Str(s) => Node::Str(self.synth.value(key, s)),
            Node::Num(s) => {
                let v = self.synth.value(key, s);
                if v.parse::<f64>().is_ok() {
                    Node::Num(v)
                } else {
                    Node::Str(v)
                }
            }
            Node::Bool(b) => Node::Bool(self.synth.boolean(*b)),
            Node::Null => Node::Null,
        }
    }

    fn document(&mut self, path: &str, kind: SourceKind, text: String) {
        let path = self.synth_path(path);
        self.documents.push(Document { path, kind, text });
    }

    pub(super) fn json(&mut self, path: &str, text: &str) -> Result<(), String> {
        let lines = path.ends_with(".jsonl") || path.ends_with(".ndjson");
        let tree = if lines {
            let items: Result<Vec<Node>, String> =
                text.lines().filter(|l| !l.trim().is_empty()).take(LIST_ITEMS).map(parse_json).collect();
            Node::List(items?)
        } else {
            parse_json(text)?
        };
        let n = self.node("", &tree, false, 0);
        let mut out = String::new();
        render_json(&n, 0, &mut out);
        self.document(path, SourceKind::Json, out);
        Ok(())
    }

    pub(super) fn yaml(&mut self, path: &str, text: &str) -> Result<(), String> {
        // The parser's message can quote the input; only its position is kept.
        let docs = yaml_rust2::YamlLoader::load_from_str(text)
            .map_err(|e| format!("does not parse as YAML (line {})", e.marker().line()))?;
        let mut out = String::new();
        for (i, d) in docs.iter().enumerate() {
            if i > 0 {
                out.push_str("---\n");
            }
            let n = self.node("", &from_yaml(d), false, 0);
            render_yaml(&n, 0, &mut out);
        }
        self.document(path, SourceKind::Yaml, out);
        Ok(())
    }

    /// Every `.env` value is redacted: they are configuration of a real deployment, secrets or not.
    pub(super) fn env(&mut self, path: &str, text: &str) {
        let mut out = String::new();
        let mut open_quote: Option<char> = None;
        for line in text.lines() {
            if let Some(q) = open_quote {
                if line.trim_end().ends_with(q) {
                    open_quote = None;
                }
                continue;
            }
            let Some(c) = ENV_LINE.captures(line.trim()) else { continue };
            let value = c[2].trim();
            self.synth.remember(value.trim_matches(['"', '\'']));
            if let Some(q) = value.chars().next().filter(|q| *q == '"' || *q == '\'') {
                if value.len() == 1 || !value.ends_with(q) {
                    open_quote = Some(q);
                }
            }
            out.push_str(&format!("{}={REDACTED}\n", self.synth.name("VAR", &c[1])));
        }
        self.document(path, SourceKind::Env, out);
    }

    /// A CSV file is a table named after the file. A first row that does not look like names is data, and
    /// the columns get numbered names.
    pub(super) fn csv(&mut self, path: &str, text: &str) {
        let delimiter = if path.ends_with(".tsv") { b'\t' } else { csv_delimiter(text.lines().next().unwrap_or("")) };
        let mut rd = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(text.as_bytes());
        let mut records = rd.records().flatten().take(1 + super::SAMPLE_ROWS);
        let Some(first) = records.next() else { return };
        let first: Vec<String> = first.iter().map(|f| f.trim().to_string()).collect();
        let is_header = first.iter().all(|c| super::synth::safe_name(c))
            && first.iter().collect::<std::collections::HashSet<_>>().len() == first.len();
        let stem = std::path::Path::new(path).file_stem().and_then(|s| s.to_str()).unwrap_or("csv").to_string();
        let table = vec![stem];
        self.table(&table, path);
        let mut rows: Vec<Vec<String>> = records.map(|r| r.iter().map(str::to_string).collect()).collect();
        let cols: Vec<String> = if is_header {
            first
        } else {
            rows.insert(0, first);
            let width = rows.iter().map(Vec::len).max().unwrap_or(0);
            (1..=width).map(|i| format!("column{i}")).collect()
        };
        for r in rows.into_iter().take(super::SAMPLE_ROWS) {
            let values = r.iter().map(|f| if f.trim().is_empty() { Lit::Null } else { Lit::field(f.trim()) }).collect();
            self.push_row(&table, Some(&cols), values);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_parser_keeps_order_and_number_text() {
        let n = parse_json(r#"{"b": 12.50, "a": [1, -2e3, "x\u00e9\ud83d\ude00\n"], "c": {"d": null, "e": true}}"#)
            .unwrap();
        assert_eq!(
            n,
            Node::Map(vec![
                ("b".into(), Node::Num("12.50".into())),
                (
                    "a".into(),
                    Node::List(vec![Node::Num("1".into()), Node::Num("-2e3".into()), Node::Str("xé😀\n".into())])
                ),
                ("c".into(), Node::Map(vec![("d".into(), Node::Null), ("e".into(), Node::Bool(true))])),
            ])
        );
        for bad in ["{", "[1,]", "{\"a\" 1}", "tru", "\"x", "1 2", "{\"a\":01x}"] {
            assert!(parse_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn renderings_parse_back() {
        let n =
            parse_json(r#"{"a": [{"b": 1, "c": [true, "x"]}, 2], "e": {}, "f": [], "true": "y", "g h": 1}"#).unwrap();
        let mut j = String::new();
        render_json(&n, 0, &mut j);
        assert_eq!(parse_json(&j).unwrap(), n, "{j}");
        let mut y = String::new();
        render_yaml(&n, 0, &mut y);
        assert_eq!(from_yaml(&yaml_rust2::YamlLoader::load_from_str(&y).unwrap()[0]), n, "{y}");
    }

    #[test]
    fn delimiters() {
        assert_eq!(csv_delimiter("a;b;c"), b';');
        assert_eq!(csv_delimiter("a,b"), b',');
        assert_eq!(csv_delimiter("a\tb\tc"), b'\t');
        assert_eq!(csv_delimiter("single"), b',');
    }
}
