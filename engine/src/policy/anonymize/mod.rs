//! The Tier-2 anonymizer: from a workspace's schema sources, a payload that keeps the structure (tables,
//! columns, types, keys, relations, JSON/YAML keys, variable names) and replaces every value with a
//! synthetic one of the same type and shape, consistently within the payload, so joins still line up.
//!
//! The rule that keeps it safe: text from a source reaches the payload only as a name that passed
//! [`synth::safe_name`] or as a stand-in made by [`synth::Synth`]. Nothing else is copied, so a parser that
//! misreads a file can lose structure but cannot leak a value. Files that do not parse are left out whole.
//!
//! What is not caught: a personal name used as a single-word key or column name (`"Erika": {…}`) looks like
//! any other name and passes. A CSV file without a header whose first row is plain words is read as
//! having one.
mod collect;
pub mod detect;
mod docs;
pub mod pass;
mod sql;
pub mod synth;

pub use collect::{
    collect_schema_sources, collect_schema_sources_with, CollectLimits, SchemaFile, SchemaSources, SourceKind,
};

use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use synth::{safe_name, Synth};

/// Sample rows kept per table: enough to show what the data looks like.
pub const SAMPLE_ROWS: usize = 5;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: String,
    /// As declared; inferred from the data (`integer`, `numeric`, `date`, …) where no DDL declares it.
    #[serde(rename = "type")]
    pub ty: String,
    pub not_null: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    pub table: String,
    pub ref_columns: Vec<String>,
}

/// Synthetic rows for one column list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub columns: Vec<String>,
    /// SQL literals: `NULL`, numbers, `'text'`.
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Table {
    pub name: String,
    /// The file that first named the table.
    pub source: String,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    pub unique: Vec<Vec<String>>,
    pub foreign_keys: Vec<ForeignKey>,
    pub samples: Vec<Sample>,
}

impl Table {
    fn sample_rows(&self) -> usize {
        self.samples.iter().map(|s| s.rows.len()).sum()
    }
}

/// A JSON, YAML or `.env` sample with synthetic values, rendered in its own format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Document {
    pub path: String,
    pub kind: SourceKind,
    pub text: String,
}

/// A source left out of the payload, and why (never with any of its content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Omitted {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AnonymizedPayload {
    pub tables: Vec<Table>,
    pub documents: Vec<Document>,
    /// Files whose structure is in the payload.
    pub sources: Vec<String>,
    pub omitted: Vec<Omitted>,
}

/// A literal as a source wrote it, before it is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lit {
    Null,
    Default,
    Bool(bool),
    Num(String),
    Text(String),
    /// A function call or other expression: shown as a placeholder, never evaluated or copied.
    Expr,
}

impl Lit {
    /// An untyped field (CSV, COPY): a plain number is a number, anything else (a code with leading zeros
    /// included) is text.
    fn field(f: &str) -> Lit {
        static PLAIN_NUMBER: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new(r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$").unwrap());
        if PLAIN_NUMBER.is_match(f) {
            Lit::Num(f.to_string())
        } else {
            Lit::Text(f.to_string())
        }
    }
}

/// Builds one payload; one [`Synth`] for all sources, so a value means the same stand-in everywhere.
#[derive(Default)]
pub struct Anonymizer {
    synth: Synth,
    tables: Vec<Table>,
    index: HashMap<String, usize>,
    documents: Vec<Document>,
    sources: Vec<String>,
    omitted: Vec<Omitted>,
}

fn table_key(parts: &[String]) -> String {
    parts.last().map(|p| p.to_lowercase()).unwrap_or_default()
}

fn inferred_type(l: &Lit) -> Option<&'static str> {
    static DATE: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"^\d{4}-\d{2}-\d{2}$").unwrap());
    static STAMP: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}").unwrap());
    Some(match l {
        Lit::Null | Lit::Default | Lit::Expr => return None,
        Lit::Bool(_) => "boolean",
        Lit::Num(n) if n.contains(['.', 'e', 'E']) => "numeric",
        Lit::Num(_) => "integer",
        Lit::Text(t) if DATE.is_match(t) => "date",
        Lit::Text(t) if STAMP.is_match(t) => "timestamp",
        Lit::Text(t)
            if t.eq_ignore_ascii_case("t")
                || t.eq_ignore_ascii_case("f")
                || t.eq_ignore_ascii_case("true")
                || t.eq_ignore_ascii_case("false") =>
        {
            "boolean"
        }
        Lit::Text(_) => "text",
    })
}

fn sql_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''").replace(['\n', '\r'], " "))
}

impl Anonymizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The table a (possibly qualified) name stands for, created on first mention.
    fn table(&mut self, parts: &[String], source: &str) -> &mut Table {
        let key = table_key(parts);
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                let name = parts.iter().map(|p| self.synth.name("table", p)).collect::<Vec<_>>().join(".");
                let source = self.synth_path(source);
                self.tables.push(Table { name, source, ..Default::default() });
                self.index.insert(key, self.tables.len() - 1);
                self.tables.len() - 1
            }
        };
        &mut self.tables[i]
    }

    fn drop_table(&mut self, parts: &[String]) {
        if let Some(i) = self.index.remove(&table_key(parts)) {
            self.tables.remove(i);
            for v in self.index.values_mut() {
                if *v > i {
                    *v -= 1;
                }
            }
        }
    }

    fn column_names(&mut self, raw: &[String]) -> Vec<String> {
        raw.iter().map(|c| self.synth.name("column", c)).collect()
    }

    /// Adds or replaces a column; returns its name as it appears in the payload.
    fn add_column(&mut self, table: &[String], raw: &str, ty: &str, not_null: bool) -> String {
        let name = self.synth.name("column", raw);
        let t = self.table(table, "");
        let col = Column { name: name.clone(), ty: ty.to_string(), not_null };
        match t.columns.iter_mut().find(|c| c.name.eq_ignore_ascii_case(&name)) {
            Some(c) => *c = col,
            None => t.columns.push(col),
        }
        name
    }

    fn drop_column(&mut self, table: &[String], raw: &str) {
        let name = self.synth.name("column", raw);
        self.table(table, "").columns.retain(|c| !c.name.eq_ignore_ascii_case(&name));
    }

    fn rename_column(&mut self, table: &[String], from: &str, to: &str) {
        let (from, to) = (self.synth.name("column", from), self.synth.name("column", to));
        if let Some(c) = self.table(table, "").columns.iter_mut().find(|c| c.name.eq_ignore_ascii_case(&from)) {
            c.name = to;
        }
    }

    fn set_column_type(&mut self, table: &[String], raw: &str, ty: &str) {
        let name = self.synth.name("column", raw);
        if let Some(c) = self.table(table, "").columns.iter_mut().find(|c| c.name.eq_ignore_ascii_case(&name)) {
            c.ty = ty.to_string();
        }
    }

    fn foreign_key(&mut self, table: &[String], cols: &[String], ref_table: &str, ref_cols: &[String]) {
        let columns = self.column_names(cols);
        let ref_columns = self.column_names(ref_cols);
        let table_name = ref_table.split('.').map(|p| self.synth.name("table", p)).collect::<Vec<_>>().join(".");
        self.table(table, "").foreign_keys.push(ForeignKey { columns, table: table_name, ref_columns });
    }

    /// One row of literals: replaced value by value, under the column each belongs to.
    fn push_row(&mut self, table: &[String], listed: Option<&[String]>, values: Vec<Lit>) {
        let t = self.table(table, "");
        if t.sample_rows() >= SAMPLE_ROWS {
            return;
        }
        let declared: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
        let cols = match listed {
            Some(l) => self.column_names(l),
            None => declared.clone(),
        };
        let mut row = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let col = cols.get(i).cloned().unwrap_or_default();
            row.push(self.literal(&col, v));
            if col.is_empty() {
                continue;
            }
            let t = self.table(table, "");
            match t.columns.iter_mut().find(|c| c.name.eq_ignore_ascii_case(&col)) {
                Some(c) if c.ty.is_empty() => c.ty = inferred_type(v).unwrap_or_default().to_string(),
                Some(_) => {}
                None => t.columns.push(Column {
                    name: col.clone(),
                    ty: inferred_type(v).unwrap_or_default().to_string(),
                    not_null: false,
                }),
            }
        }
        let cols: Vec<String> =
            if listed.is_none() && cols.len() >= row.len() { cols[..row.len()].to_vec() } else { cols };
        let t = self.table(table, "");
        match t.samples.iter_mut().find(|s| s.columns == cols) {
            Some(s) => s.rows.push(row),
            None => t.samples.push(Sample { columns: cols, rows: vec![row] }),
        }
    }

    fn literal(&mut self, column: &str, l: &Lit) -> String {
        match l {
            Lit::Null => "NULL".into(),
            Lit::Default => "DEFAULT".into(),
            Lit::Expr => "'<expression>'".into(),
            Lit::Bool(b) => if self.synth.boolean(*b) { "TRUE" } else { "FALSE" }.into(),
            Lit::Num(n) => {
                let v = self.synth.value(column, n);
                if v.parse::<f64>().is_ok() {
                    v
                } else {
                    sql_quote(&v)
                }
            }
            Lit::Text(t) => {
                // A JSON document in a text column keeps its keys, like a JSON file.
                let trimmed = t.trim_start();
                if trimmed.starts_with('{') || trimmed.starts_with('[') {
                    if let Ok(tree) = docs::parse_json(t) {
                        let n = self.node(column, &tree, synth::is_secret_key(column), 0);
                        let mut s = String::new();
                        docs::render_json(&n, 0, &mut s);
                        return sql_quote(&s.split_whitespace().collect::<Vec<_>>().join(" "));
                    }
                }
                sql_quote(&self.synth.value(column, t))
            }
        }
    }

    /// A source path as the payload shows it: each part that does not look like a name is replaced.
    fn synth_path(&mut self, path: &str) -> String {
        if path.is_empty() {
            return String::new();
        }
        path.split('/')
            .map(|part| {
                let (stem, ext) = match part.rsplit_once('.') {
                    Some((s, e)) if !s.is_empty() && safe_name(e) => (s, Some(e)),
                    _ => (part, None),
                };
                let stem = if stem.starts_with('.') && safe_name(&stem[1..]) {
                    stem.to_string()
                } else {
                    self.synth.name("file", stem)
                };
                match ext {
                    Some(e) => format!("{stem}.{e}"),
                    None => stem,
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    fn omit(&mut self, path: &str, reason: &str) {
        let path = self.synth_path(path);
        self.omitted.push(Omitted { path, reason: reason.to_string() });
    }

    /// Add every source: all SQL structure first (so data statements know their columns wherever the
    /// DDL lives), then SQL data, then the other files.
    pub fn add_sources(&mut self, sources: &SchemaSources) {
        let sql: Vec<&SchemaFile> = sources.files.iter().filter(|f| f.kind == SourceKind::Sql).collect();
        for f in &sql {
            self.sql_structure(&f.path, &f.text);
        }
        for f in &sql {
            self.sql_data(&f.path, &f.text);
            let p = self.synth_path(&f.path);
            self.sources.push(p);
        }
        for f in sources.files.iter().filter(|f| f.kind != SourceKind::Sql) {
            self.add_file(f);
        }
        for (path, reason) in &sources.skipped {
            self.omit(path, reason);
        }
    }

    /// One non-SQL file, or a SQL file on its own.
    pub fn add_file(&mut self, f: &SchemaFile) {
        let result = match f.kind {
            SourceKind::Sql => {
                self.sql_structure(&f.path, &f.text);
                self.sql_data(&f.path, &f.text);
                Ok(())
            }
            SourceKind::Csv => {
                self.csv(&f.path, &f.text);
                Ok(())
            }
            SourceKind::Json => self.json(&f.path, &f.text).map_err(|_| "does not parse as JSON".to_string()),
            SourceKind::Yaml => self.yaml(&f.path, &f.text),
            SourceKind::Env => {
                self.env(&f.path, &f.text);
                Ok(())
            }
        };
        match result {
            Ok(()) => {
                let p = self.synth_path(&f.path);
                self.sources.push(p);
            }
            Err(reason) => self.omit(&f.path, &reason),
        }
    }

    pub fn finish(self) -> AnonymizedPayload {
        self.finish_with_pass().0
    }

    /// The payload, and the text pass that continues its mapping: the values it saw are the known data,
    /// and the same value gets the same stand-in in the schema and in any text.
    pub fn finish_with_pass(self) -> (AnonymizedPayload, pass::Pass) {
        let mut sources = self.sources;
        sources.dedup();
        (
            AnonymizedPayload { tables: self.tables, documents: self.documents, sources, omitted: self.omitted },
            pass::Pass::new(self.synth),
        )
    }
}

/// The payload for a set of schema sources.
pub fn anonymize(sources: &SchemaSources) -> AnonymizedPayload {
    let mut a = Anonymizer::new();
    a.add_sources(sources);
    a.finish()
}

/// Collect a workspace's schema sources and anonymize them.
pub fn anonymize_workspace(root: &Path) -> AnonymizedPayload {
    anonymize(&collect_schema_sources(root))
}

impl AnonymizedPayload {
    /// Exactly the text that goes to the cloud model, so the user can read it before anything is sent.
    pub fn preview(&self) -> String {
        let mut out = String::from(
            "-- Data structure of this workspace, anonymized by lokal: table, column and key names are real;\n\
             -- every value is synthetic (same type and shape, the same stand-in for the same value), and\n\
             -- credentials are <redacted>.\n",
        );
        if !self.sources.is_empty() {
            out.push_str(&format!("-- Sources: {}\n", self.sources.join(", ")));
        }
        for t in &self.tables {
            out.push('\n');
            out.push_str(&format!("CREATE TABLE {} (\n", t.name));
            let mut lines: Vec<String> = t
                .columns
                .iter()
                .map(|c| {
                    let mut l = format!("  {}", c.name);
                    if !c.ty.is_empty() {
                        l.push_str(&format!(" {}", c.ty));
                    }
                    if c.not_null {
                        l.push_str(" NOT NULL");
                    }
                    l
                })
                .collect();
            if !t.primary_key.is_empty() {
                lines.push(format!("  PRIMARY KEY ({})", t.primary_key.join(", ")));
            }
            for u in &t.unique {
                lines.push(format!("  UNIQUE ({})", u.join(", ")));
            }
            for fk in &t.foreign_keys {
                let refs =
                    if fk.ref_columns.is_empty() { String::new() } else { format!(" ({})", fk.ref_columns.join(", ")) };
                lines.push(format!("  FOREIGN KEY ({}) REFERENCES {}{refs}", fk.columns.join(", "), fk.table));
            }
            out.push_str(&lines.join(",\n"));
            out.push_str("\n);\n");
            for s in &t.samples {
                let cols = if s.columns.is_empty() { String::new() } else { format!(" ({})", s.columns.join(", ")) };
                let rows: Vec<String> = s.rows.iter().map(|r| format!("  ({})", r.join(", "))).collect();
                out.push_str(&format!("INSERT INTO {}{cols} VALUES\n{};\n", t.name, rows.join(",\n")));
            }
        }
        for d in &self.documents {
            let kind = match d.kind {
                SourceKind::Json => "JSON, synthetic values",
                SourceKind::Yaml => "YAML, synthetic values",
                SourceKind::Env => "environment file: names only, every value redacted",
                SourceKind::Sql | SourceKind::Csv => "data, synthetic values",
            };
            out.push_str(&format!("\n-- {} ({kind})\n{}", d.path, d.text.trim_end()));
            out.push('\n');
        }
        for o in &self.omitted {
            out.push_str(&format!("\n-- left out: {} ({})", o.path, o.reason));
        }
        if !self.omitted.is_empty() {
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests;
