//! SQL schema sources: DDL and migrations (CREATE/ALTER/DROP TABLE) for the structure, INSERT … VALUES
//! and COPY … FROM stdin for sample rows. A real tokenizer rather than line splitting, because comments
//! and string literals must never be mistaken for names: a name is the only text that passes as it is.
use super::synth::safe_name;
use super::{Anonymizer, Lit};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// Unquoted word: keyword or identifier.
    Word(String),
    /// Quoted identifier ("x", `x`).
    Ident(String),
    /// String literal, unescaped.
    Str(String),
    Num(String),
    Sym(char),
    /// `::`
    Cast,
}

impl Tok {
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }
    fn name(&self) -> Option<&str> {
        match self {
            Tok::Word(w) | Tok::Ident(w) => Some(w),
            _ => None,
        }
    }
}

/// MySQL dumps escape with backslashes inside strings; standard SQL does not.
fn is_mysql(sql: &str) -> bool {
    sql.contains('`')
        || sql.to_ascii_uppercase().contains("ENGINE=")
        || sql.to_ascii_uppercase().contains("AUTO_INCREMENT")
}

/// Read a quoted run starting after the opening `q`; returns the content and the index after the close.
/// An unterminated run swallows the rest of the input: it is then one literal, never names.
fn quoted(c: &[char], mut i: usize, q: char, backslash: bool) -> (String, usize) {
    let mut s = String::new();
    while i < c.len() {
        if backslash && c[i] == '\\' && i + 1 < c.len() {
            s.push(c[i + 1]);
            i += 2;
            continue;
        }
        if c[i] == q {
            if c.get(i + 1) == Some(&q) {
                s.push(q);
                i += 2;
                continue;
            }
            return (s, i + 1);
        }
        s.push(c[i]);
        i += 1;
    }
    (s, i)
}

pub(super) fn tokenize(sql: &str) -> Vec<Tok> {
    let mysql = is_mysql(sql);
    let c: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch.is_whitespace() {
            i += 1;
        } else if (ch == '-' && next == Some('-')) || (ch == '#' && mysql) {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == '\'' {
            let (s, j) = quoted(&c, i + 1, '\'', mysql);
            out.push(Tok::Str(s));
            i = j;
        } else if ch == '"' || (ch == '`' && mysql) {
            let (s, j) = quoted(&c, i + 1, ch, false);
            out.push(Tok::Ident(s));
            i = j;
        } else if ch == '$' && (next == Some('$') || next.is_some_and(|n| n.is_alphabetic() || n == '_')) {
            // Dollar quoting: a function body or a literal, never a name.
            let mut j = i + 1;
            while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            if c.get(j) != Some(&'$') {
                out.push(Tok::Sym('$'));
                i += 1;
                continue;
            }
            let tag: Vec<char> = c[i..=j].to_vec();
            let mut k = j + 1;
            let mut body = String::new();
            while k < c.len() && !c[k..].starts_with(&tag) {
                body.push(c[k]);
                k += 1;
            }
            out.push(Tok::Str(body));
            i = (k + tag.len()).min(c.len());
        } else if ch.is_ascii_digit() || (ch == '.' && next.is_some_and(|n| n.is_ascii_digit())) {
            let mut j = i;
            while j < c.len() && (c[j].is_ascii_digit() || c[j] == '.') {
                j += 1;
            }
            if j < c.len()
                && (c[j] == 'e' || c[j] == 'E')
                && c.get(j + 1).is_some_and(|n| n.is_ascii_digit() || *n == '-' || *n == '+')
            {
                j += 2;
                while j < c.len() && c[j].is_ascii_digit() {
                    j += 1;
                }
            }
            out.push(Tok::Num(c[i..j].iter().collect()));
            i = j;
        } else if ch.is_alphabetic() || ch == '_' {
            let mut j = i;
            while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_' || c[j] == '$') {
                j += 1;
            }
            let word: String = c[i..j].iter().collect();
            // E'…', N'…', B'…', X'…': prefixed string literals.
            if c.get(j) == Some(&'\'') && word.len() == 1 && "EeNnBbXx".contains(word.as_str()) {
                let (s, k) = quoted(&c, j + 1, '\'', mysql || word.eq_ignore_ascii_case("e"));
                out.push(Tok::Str(s));
                i = k;
            } else {
                out.push(Tok::Word(word));
                i = j;
            }
        } else if ch == ':' && next == Some(':') {
            out.push(Tok::Cast);
            i += 2;
        } else {
            out.push(Tok::Sym(ch));
            i += 1;
        }
    }
    out
}

fn statements(toks: &[Tok]) -> Vec<&[Tok]> {
    toks.split(|t| *t == Tok::Sym(';')).filter(|s| !s.is_empty()).collect()
}

/// Index of the `)` matching the `(` at `open`.
fn close_paren(t: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, tok) in t.iter().enumerate().skip(open) {
        match tok {
            Tok::Sym('(') => depth += 1,
            Tok::Sym(')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Split on commas outside parentheses.
fn split_commas(t: &[Tok]) -> Vec<&[Tok]> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, tok) in t.iter().enumerate() {
        match tok {
            Tok::Sym('(') => depth += 1,
            Tok::Sym(')') => depth -= 1,
            Tok::Sym(',') if depth == 0 => {
                out.push(&t[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < t.len() {
        out.push(&t[start..]);
    }
    out.into_iter().filter(|s| !s.is_empty()).collect()
}

/// A possibly qualified name at `i`: its parts and the index after it.
fn qualified(t: &[Tok], mut i: usize) -> Option<(Vec<String>, usize)> {
    let mut parts = vec![t.get(i)?.name()?.to_string()];
    i += 1;
    while t.get(i) == Some(&Tok::Sym('.')) {
        parts.push(t.get(i + 1)?.name()?.to_string());
        i += 2;
    }
    Some((parts, i))
}

/// `(a, b, c)` at `i`: the names and the index after the `)`.
fn name_list(t: &[Tok], i: usize) -> Option<(Vec<String>, usize)> {
    if t.get(i) != Some(&Tok::Sym('(')) {
        return None;
    }
    let end = close_paren(t, i)?;
    let names =
        split_commas(&t[i + 1..end]).iter().filter_map(|item| item.first()?.name().map(str::to_string)).collect();
    Some((names, end + 1))
}

fn skip_kws(t: &[Tok], mut i: usize, kws: &[&str]) -> usize {
    while t.get(i).is_some_and(|tok| kws.iter().any(|k| tok.is_kw(k))) {
        i += 1;
    }
    i
}

const CONSTRAINT_WORDS: &[&str] = &[
    "NOT",
    "NULL",
    "DEFAULT",
    "PRIMARY",
    "REFERENCES",
    "UNIQUE",
    "CHECK",
    "CONSTRAINT",
    "COLLATE",
    "GENERATED",
    "AUTO_INCREMENT",
    "AUTOINCREMENT",
    "COMMENT",
    "ON",
    "IDENTITY",
    "AS",
    "STORED",
    "VIRTUAL",
    "KEY",
];

/// The type of a column definition, from the tokens after its name, up to the first constraint.
fn column_type(t: &[Tok]) -> (String, usize) {
    let mut ty = String::new();
    let mut i = 0;
    while i < t.len() {
        match &t[i] {
            Tok::Word(w) if CONSTRAINT_WORDS.iter().any(|k| w.eq_ignore_ascii_case(k)) => break,
            Tok::Word(w) if w.eq_ignore_ascii_case("CHARACTER") && t.get(i + 1).is_some_and(|n| n.is_kw("SET")) => {
                break
            }
            Tok::Word(w) | Tok::Ident(w) => {
                if !ty.is_empty() && !ty.ends_with('(') {
                    ty.push(' ');
                }
                ty.push_str(if safe_name(w) { w } else { "…" });
            }
            Tok::Sym('(') => {
                let Some(end) = close_paren(t, i) else { break };
                // Lengths and scales pass; enum labels and other literals do not.
                let inner: Vec<String> = split_commas(&t[i + 1..end])
                    .iter()
                    .map(|item| match item {
                        [Tok::Num(n)] => n.clone(),
                        [Tok::Word(w)] if w.chars().all(|c| c.is_ascii_alphabetic()) => w.clone(),
                        _ => "…".into(),
                    })
                    .collect();
                ty.push_str(&format!("({})", inner.join(",")));
                i = end + 1;
                continue;
            }
            Tok::Sym('[') | Tok::Sym(']') => ty.push(if t[i] == Tok::Sym('[') { '[' } else { ']' }),
            _ => break,
        }
        i += 1;
    }
    let ty = if ty.chars().count() > 60 { String::new() } else { ty };
    (ty, i)
}

/// `REFERENCES table [(cols)]` at `i`.
fn references(t: &[Tok], i: usize) -> Option<(String, Vec<String>)> {
    if !t.get(i)?.is_kw("REFERENCES") {
        return None;
    }
    let (parts, j) = qualified(t, i + 1)?;
    let cols = name_list(t, j).map(|(c, _)| c).unwrap_or_default();
    Some((parts.join("."), cols))
}

/// One literal of a VALUES tuple or a COPY field.
fn literal(item: &[Tok]) -> Lit {
    match item {
        [Tok::Word(w)] if w.eq_ignore_ascii_case("NULL") => Lit::Null,
        [Tok::Word(w)] if w.eq_ignore_ascii_case("DEFAULT") => Lit::Default,
        [Tok::Word(w)] if w.eq_ignore_ascii_case("TRUE") => Lit::Bool(true),
        [Tok::Word(w)] if w.eq_ignore_ascii_case("FALSE") => Lit::Bool(false),
        [Tok::Num(n)] => Lit::Num(n.clone()),
        [Tok::Sym(s @ ('-' | '+')), Tok::Num(n)] => Lit::Num(format!("{}{n}", if *s == '-' { "-" } else { "" })),
        [Tok::Str(s)] | [Tok::Str(s), Tok::Cast, ..] => Lit::Text(s.clone()),
        _ => {
            // `DATE '2024-01-01'`, `'x'::jsonb`, `CAST(5 AS int)`: one literal inside → that literal.
            let lits: Vec<&Tok> = item.iter().filter(|t| matches!(t, Tok::Str(_) | Tok::Num(_))).collect();
            match lits.as_slice() {
                [Tok::Str(s)] => Lit::Text(s.clone()),
                [Tok::Num(n)] => Lit::Num(n.clone()),
                _ => Lit::Expr,
            }
        }
    }
}

impl Anonymizer {
    /// Structure: CREATE TABLE, ALTER TABLE, DROP TABLE, in file order (migrations replay).
    pub(super) fn sql_structure(&mut self, source: &str, sql: &str) {
        let toks = tokenize(&strip_copy_blocks(sql).0);
        for st in statements(&toks) {
            if st[0].is_kw("CREATE") {
                self.create_table(source, st);
            } else if st[0].is_kw("ALTER") && st.get(1).is_some_and(|t| t.is_kw("TABLE")) {
                self.alter_table(source, st);
            } else if st[0].is_kw("DROP") && st.get(1).is_some_and(|t| t.is_kw("TABLE")) {
                let mut i = skip_kws(st, 2, &["IF", "EXISTS"]);
                while let Some((parts, j)) = qualified(st, i) {
                    self.drop_table(&parts);
                    i = j + usize::from(st.get(j) == Some(&Tok::Sym(',')));
                }
            }
        }
    }

    /// Sample rows: INSERT … VALUES and COPY … FROM stdin.
    pub(super) fn sql_data(&mut self, source: &str, sql: &str) {
        let (rest, copies) = strip_copy_blocks(sql);
        for (header, lines) in copies {
            self.copy_block(source, &header, &lines);
        }
        let toks = tokenize(&rest);
        for st in statements(&toks) {
            if st[0].is_kw("INSERT") || st[0].is_kw("REPLACE") {
                self.insert(source, st);
            }
        }
    }

    fn create_table(&mut self, source: &str, st: &[Tok]) {
        let Some(at) = st.iter().take(6).position(|t| t.is_kw("TABLE")) else { return };
        if !st[1..at]
            .iter()
            .all(|t| ["OR", "REPLACE", "GLOBAL", "LOCAL", "TEMP", "TEMPORARY", "UNLOGGED"].iter().any(|k| t.is_kw(k)))
        {
            return;
        }
        let i = skip_kws(st, at + 1, &["IF", "NOT", "EXISTS"]);
        let Some((parts, open)) = qualified(st, i) else { return };
        if st.get(open) != Some(&Tok::Sym('(')) {
            return; // CREATE TABLE … AS SELECT: no column list to learn from
        }
        let Some(end) = close_paren(st, open) else { return };
        let t = self.table(&parts, source);
        t.columns.clear();
        t.primary_key.clear();
        t.unique.clear();
        t.foreign_keys.clear();
        for def in split_commas(&st[open + 1..end]) {
            self.definition(&parts, def);
        }
    }

    /// A column or a table constraint inside CREATE TABLE ( … ) or after ALTER TABLE … ADD.
    fn definition(&mut self, table: &[String], def: &[Tok]) {
        let mut d = def;
        if d[0].is_kw("CONSTRAINT") {
            d = &d[2.min(d.len())..];
        }
        let Some(first) = d.first() else { return };
        if first.is_kw("PRIMARY") {
            if let Some((cols, _)) = name_list(d, 2) {
                let cols = self.column_names(&cols);
                self.table(table, "").primary_key = cols;
            }
        } else if first.is_kw("FOREIGN") {
            if let Some((cols, j)) = name_list(d, 2) {
                if let Some((rt, rcols)) = references(d, j) {
                    self.foreign_key(table, &cols, &rt, &rcols);
                }
            }
        } else if first.is_kw("UNIQUE") {
            let i = skip_kws(d, 1, &["KEY", "INDEX"]);
            let i = if d.get(i).is_some_and(|t| t.name().is_some()) { i + 1 } else { i };
            if let Some((cols, _)) = name_list(d, i) {
                let cols = self.column_names(&cols);
                self.table(table, "").unique.push(cols);
            }
        } else if ["CHECK", "KEY", "INDEX", "FULLTEXT", "SPATIAL", "EXCLUDE", "LIKE", "PERIOD"]
            .iter()
            .any(|k| first.is_kw(k))
        {
            // Checks and indexes hold expressions and literals, not structure the payload needs.
        } else if let Some(name) = first.name() {
            let (ty, after) = column_type(&d[1..]);
            let rest = &d[1 + after..];
            let not_null = rest.windows(2).any(|w| w[0].is_kw("NOT") && w[1].is_kw("NULL"));
            let pk = rest.windows(2).any(|w| w[0].is_kw("PRIMARY") && w[1].is_kw("KEY"));
            let unique = rest.iter().any(|t| t.is_kw("UNIQUE"));
            let col = self.add_column(table, name, &ty, not_null || pk);
            if pk {
                self.table(table, "").primary_key = vec![col.clone()];
            }
            if unique {
                self.table(table, "").unique.push(vec![col.clone()]);
            }
            if let Some(r) = rest.iter().position(|t| t.is_kw("REFERENCES")) {
                if let Some((rt, rcols)) = references(rest, r) {
                    self.foreign_key(table, std::slice::from_ref(&name.to_string()), &rt, &rcols);
                }
            }
        }
    }

    fn alter_table(&mut self, source: &str, st: &[Tok]) {
        let i = skip_kws(st, 2, &["ONLY", "IF", "EXISTS"]);
        let Some((parts, j)) = qualified(st, i) else { return };
        self.table(&parts, source);
        for action in split_commas(&st[j..]) {
            let Some(first) = action.first() else { continue };
            if first.is_kw("ADD") {
                let k = skip_kws(action, 1, &["COLUMN", "IF", "NOT", "EXISTS"]);
                if k < action.len() {
                    self.definition(&parts, &action[k..]);
                }
            } else if first.is_kw("DROP") && !action.get(1).is_some_and(|t| t.is_kw("CONSTRAINT")) {
                let k = skip_kws(action, 1, &["COLUMN", "IF", "EXISTS"]);
                if let Some(name) = action.get(k).and_then(Tok::name) {
                    self.drop_column(&parts, name);
                }
            } else if first.is_kw("RENAME") {
                let k = skip_kws(action, 1, &["COLUMN"]);
                match (action.get(k).and_then(Tok::name), action.get(k + 1), action.get(k + 2).and_then(Tok::name)) {
                    (Some(from), Some(to_kw), Some(to)) if to_kw.is_kw("TO") => self.rename_column(&parts, from, to),
                    _ => {}
                }
            } else if first.is_kw("ALTER") || first.is_kw("MODIFY") {
                let k = skip_kws(action, 1, &["COLUMN"]);
                let Some(name) = action.get(k).and_then(Tok::name) else { continue };
                let k = skip_kws(action, k + 1, &["SET", "DATA", "TYPE"]);
                let (ty, _) = column_type(&action[k.min(action.len())..]);
                if !ty.is_empty() {
                    self.set_column_type(&parts, name, &ty);
                }
            }
        }
    }

    fn insert(&mut self, source: &str, st: &[Tok]) {
        let Some(into) = st.iter().take(4).position(|t| t.is_kw("INTO")) else { return };
        let Some((parts, mut i)) = qualified(st, into + 1) else { return };
        let listed = name_list(st, i).map(|(cols, j)| {
            i = j;
            cols
        });
        if !st.get(i).is_some_and(|t| t.is_kw("VALUES") || t.is_kw("VALUE")) {
            return; // INSERT … SELECT or SET: no literal rows
        }
        i += 1;
        let mut tuples = Vec::new();
        while st.get(i) == Some(&Tok::Sym('(')) {
            let Some(end) = close_paren(st, i) else { break };
            tuples.push(split_commas(&st[i + 1..end]).into_iter().map(literal).collect::<Vec<Lit>>());
            i = end + 1;
            if st.get(i) != Some(&Tok::Sym(',')) {
                break;
            }
            i += 1;
        }
        self.table(&parts, source);
        for values in tuples {
            self.push_row(&parts, listed.as_deref(), values);
        }
    }

    fn copy_block(&mut self, source: &str, header: &str, lines: &[String]) {
        let toks = tokenize(header);
        let Some((parts, i)) = qualified(&toks, 1) else { return };
        let listed = name_list(&toks, i).map(|(c, _)| c);
        self.table(&parts, source);
        let upper = header.to_ascii_uppercase();
        if upper.contains("CSV") {
            let text = lines.join("\n");
            let mut rd = csv::ReaderBuilder::new()
                .has_headers(upper.contains("HEADER"))
                .flexible(true)
                .from_reader(text.as_bytes());
            for rec in rd.records().flatten() {
                let values = rec.iter().map(|f| if f.is_empty() { Lit::Null } else { Lit::field(f) }).collect();
                self.push_row(&parts, listed.as_deref(), values);
            }
            return;
        }
        for line in lines {
            let values =
                line.split('\t').map(|f| if f == "\\N" { Lit::Null } else { Lit::field(&unescape_copy(f)) }).collect();
            self.push_row(&parts, listed.as_deref(), values);
        }
    }
}

/// COPY's text format escapes.
fn unescape_copy(f: &str) -> String {
    let mut out = String::new();
    let mut it = f.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(o) => out.push(o),
            None => {}
        }
    }
    out
}

/// Take `COPY … FROM stdin;` blocks (their rows are not SQL) out of the text: the rest of the SQL, and each
/// block's header line and data lines.
fn strip_copy_blocks(sql: &str) -> (String, Vec<(String, Vec<String>)>) {
    let mut rest = String::with_capacity(sql.len());
    let mut blocks = Vec::new();
    let mut lines = sql.lines();
    while let Some(line) = lines.next() {
        let upper = line.trim_start().to_ascii_uppercase();
        if upper.starts_with("COPY ") && upper.contains("FROM STDIN") {
            let mut data = Vec::new();
            for l in lines.by_ref() {
                if l.trim_end() == "\\." {
                    break;
                }
                data.push(l.to_string());
            }
            blocks.push((line.trim().trim_end_matches(';').to_string(), data));
            rest.push('\n');
        } else {
            rest.push_str(line);
            rest.push('\n');
        }
    }
    (rest, blocks)
}

#[cfg(test)]
#[path = "sql_props.rs"]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_strings_never_become_names() {
        let t =
            tokenize("CREATE /* Erika */ TABLE t (a int -- Mustermann\n, b text DEFAULT 'x; y', c $$body; here$$);");
        let words: Vec<&str> =
            t.iter().filter_map(|t| if let Tok::Word(w) = t { Some(w.as_str()) } else { None }).collect();
        assert_eq!(words, vec!["CREATE", "TABLE", "t", "a", "int", "b", "text", "DEFAULT", "c"]);
        assert_eq!(statements(&t).len(), 1, "semicolons inside literals do not split");
        assert!(t.contains(&Tok::Str("x; y".into())) && t.contains(&Tok::Str("body; here".into())));
    }

    #[test]
    fn escapes_and_dialects() {
        assert_eq!(tokenize("'it''s'"), vec![Tok::Str("it's".into())]);
        assert_eq!(tokenize("E'a\\'b'"), vec![Tok::Str("a'b".into())]);
        assert_eq!(tokenize("INSERT INTO `t` VALUES ('a\\'b');")[4], Tok::Sym('('));
        assert!(tokenize("INSERT INTO `t` VALUES ('a\\'b');").contains(&Tok::Str("a'b".into())));
        assert_eq!(tokenize("'unterminated, Erika"), vec![Tok::Str("unterminated, Erika".into())]);
        assert_eq!(tokenize("x::date"), vec![Tok::Word("x".into()), Tok::Cast, Tok::Word("date".into())]);
        assert_eq!(tokenize("-1.5e3"), vec![Tok::Sym('-'), Tok::Num("1.5e3".into())]);
    }

    #[test]
    fn types_stop_at_constraints() {
        let ty = |s: &str| column_type(&tokenize(s)).0;
        assert_eq!(ty("numeric(10, 2) NOT NULL"), "numeric(10,2)");
        assert_eq!(ty("character varying(255) DEFAULT 'x'"), "character varying(255)");
        assert_eq!(ty("timestamp with time zone"), "timestamp with time zone");
        assert_eq!(ty("int[] REFERENCES x"), "int[]");
        assert_eq!(ty("enum('Erika','Max') NOT NULL"), "enum(…,…)");
        assert_eq!(ty("varchar(10) CHARACTER SET utf8"), "varchar(10)");
        assert_eq!(ty("varchar("), "varchar", "an unclosed parenthesis ends the type");
    }

    #[test]
    fn literals() {
        let lit = |s: &str| literal(&tokenize(s));
        assert_eq!(lit("NULL"), Lit::Null);
        assert_eq!(lit("-5"), Lit::Num("-5".into()));
        assert_eq!(lit("'a'::jsonb"), Lit::Text("a".into()));
        assert_eq!(lit("DATE '2024-01-01'"), Lit::Text("2024-01-01".into()));
        assert_eq!(lit("to_date('1.1.2024', 'DD.MM.YYYY')"), Lit::Expr);
        assert_eq!(lit("now()"), Lit::Expr);
    }

    #[test]
    fn copy_blocks_are_taken_out() {
        let (rest, blocks) =
            strip_copy_blocks("SET x = 1;\nCOPY public.t (a, b) FROM stdin;\n1\tErika\n\\.\nSELECT 1;\n");
        assert!(!rest.contains("Erika") && rest.contains("SELECT 1"));
        assert_eq!(blocks, vec![("COPY public.t (a, b) FROM stdin".to_string(), vec!["1\tErika".to_string()])]);
        assert_eq!(unescape_copy("a\\tb\\\\c"), "a\tb\\c");
    }
}
