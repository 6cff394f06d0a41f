//! Checkers' output parsed into one shape. Only errors are kept: a warning never refuses a candidate.
use super::Diagnostic;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `cargo check --message-format=json`: one JSON object per line; compiler errors carry a primary span.
/// `resolve` turns the span's file name (relative to the directory rustc ran in) into a workspace path.
pub(crate) fn cargo(stdout: &str, resolve: impl Fn(&str) -> PathBuf) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for line in stdout.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        if v["reason"] != "compiler-message" {
            continue;
        }
        let m = &v["message"];
        let level = m["level"].as_str().unwrap_or("");
        if !level.starts_with("error") {
            continue;
        }
        let message = m["message"].as_str().unwrap_or("").to_string();
        // The closing "aborting due to N previous errors" has no span and says nothing new.
        let spans = m["spans"].as_array().cloned().unwrap_or_default();
        let Some(span) = spans.iter().find(|s| s["is_primary"] == true).or(spans.first()) else { continue };
        let code = m["code"]["code"].as_str().map(str::to_string);
        let d = Diagnostic {
            file: resolve(span["file_name"].as_str().unwrap_or("")),
            line: span["line_start"].as_u64().unwrap_or(0) as u32,
            message,
            code,
        };
        // `--all-targets` compiles a library twice (as itself and as its tests): one error, reported twice.
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// `tsc --noEmit --pretty false`: `src/a.ts(3,7): error TS2322: Type 'string' is not assignable ...`.
pub(crate) fn tsc(stdout: &str, base: &Path) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for line in stdout.lines() {
        let Some((loc, rest)) = line.split_once("): error ") else { continue };
        let Some((file, pos)) = loc.rsplit_once('(') else { continue };
        let line_no = pos.split(',').next().and_then(|l| l.parse().ok()).unwrap_or(0);
        let (code, message) = match rest.split_once(": ") {
            Some((c, m)) if c.starts_with("TS") => (Some(c.to_string()), m.to_string()),
            _ => (None, rest.to_string()),
        };
        out.push(Diagnostic { file: base.join(file), line: line_no, message, code });
    }
    out
}

/// `go build` / `go vet`: `./a.go:3:7: undefined: x` (vet prefixes `vet: `); package headers
/// (`# example.com/m`) are skipped.
pub(crate) fn go(output: &str, base: &Path) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for line in output.lines() {
        let line = line.strip_prefix("vet: ").unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(4, ':');
        let (Some(file), Some(l), Some(third)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let Ok(line_no) = l.parse::<u32>() else { continue };
        if !file.ends_with(".go") {
            continue;
        }
        // The column is optional.
        let message = match (third.trim().parse::<u32>(), parts.next()) {
            (Ok(_), Some(m)) => m.trim().to_string(),
            _ => line.splitn(3, ':').nth(2).unwrap_or("").trim().to_string(),
        };
        out.push(Diagnostic { file: base.join(file.trim_start_matches("./")), line: line_no, message, code: None });
    }
    out
}

/// Our py_compile driver prints `[{"file", "line", "message", "code"}]`.
pub(crate) fn py_compile(stdout: &str) -> Vec<Diagnostic> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(stdout.trim()) else { return Vec::new() };
    items
        .iter()
        .map(|i| Diagnostic {
            file: PathBuf::from(i["file"].as_str().unwrap_or("")),
            line: i["line"].as_u64().unwrap_or(0) as u32,
            message: i["message"].as_str().unwrap_or("").to_string(),
            code: i["code"].as_str().map(str::to_string),
        })
        .collect()
}

/// `ruff check --output-format=json`: `[{"filename", "location": {"row"}, "message", "code"}]`.
pub(crate) fn ruff(stdout: &str, base: &Path) -> Vec<Diagnostic> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(stdout.trim()) else { return Vec::new() };
    items
        .iter()
        .map(|i| Diagnostic {
            file: relative(i["filename"].as_str().unwrap_or(""), base),
            line: i["location"]["row"].as_u64().unwrap_or(0) as u32,
            message: i["message"].as_str().unwrap_or("").to_string(),
            code: i["code"].as_str().map(str::to_string),
        })
        .collect()
}

/// `pyright --outputjson`: `{"generalDiagnostics": [{"file", "severity", "message", "rule", "range"}]}`,
/// lines 0-based.
pub(crate) fn pyright(stdout: &str, base: &Path) -> Vec<Diagnostic> {
    let Ok(v) = serde_json::from_str::<Value>(stdout.trim()) else { return Vec::new() };
    let items = v["generalDiagnostics"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter(|i| i["severity"] == "error")
        .map(|i| Diagnostic {
            file: relative(i["file"].as_str().unwrap_or(""), base),
            line: i["range"]["start"]["line"].as_u64().unwrap_or(0) as u32 + 1,
            message: i["message"].as_str().unwrap_or("").to_string(),
            code: i["rule"].as_str().map(str::to_string),
        })
        .collect()
}

fn relative(file: &str, base: &Path) -> PathBuf {
    let p = Path::new(file);
    p.strip_prefix(base).map(Path::to_path_buf).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_errors_keep_primary_span_and_code_and_drop_warnings() {
        let out = concat!(
            r#"{"reason":"compiler-artifact","target":{}}"#,
            "\n",
            r#"{"reason":"compiler-message","message":{"level":"warning","message":"unused variable: `x`","code":{"code":"unused_variables"},"spans":[{"file_name":"src/lib.rs","line_start":2,"is_primary":true}]}}"#,
            "\n",
            r#"{"reason":"compiler-message","message":{"level":"error","message":"mismatched types","code":{"code":"E0308"},"spans":[{"file_name":"src/a.rs","line_start":9,"is_primary":false},{"file_name":"src/lib.rs","line_start":4,"is_primary":true}]}}"#,
            "\n",
            r#"{"reason":"compiler-message","message":{"level":"error","message":"aborting due to 1 previous error","code":null,"spans":[]}}"#,
            "\n"
        );
        let d = cargo(out, |f| PathBuf::from("crate").join(f));
        assert_eq!(
            d,
            vec![Diagnostic {
                file: "crate/src/lib.rs".into(),
                line: 4,
                message: "mismatched types".into(),
                code: Some("E0308".into())
            }]
        );
    }

    #[test]
    fn tsc_lines_become_diagnostics_relative_to_the_project() {
        let out = "src/a.ts(3,7): error TS2322: Type 'string' is not assignable to type 'number'.\nFound 1 error.\n";
        let d = tsc(out, Path::new("web"));
        assert_eq!(
            d,
            vec![Diagnostic {
                file: "web/src/a.ts".into(),
                line: 3,
                message: "Type 'string' is not assignable to type 'number'.".into(),
                code: Some("TS2322".into())
            }]
        );
    }

    #[test]
    fn go_build_and_vet_lines_with_and_without_columns() {
        let out = "# example.com/m\n./a.go:3:7: undefined: x\nvet: ./b.go:10: possible misuse\nnot a diagnostic\n";
        let d = go(out, Path::new("svc"));
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].file.as_path(), d[0].line, d[0].message.as_str()), (Path::new("svc/a.go"), 3, "undefined: x"));
        assert_eq!(
            (d[1].file.as_path(), d[1].line, d[1].message.as_str()),
            (Path::new("svc/b.go"), 10, "possible misuse")
        );
    }

    #[test]
    fn ruff_and_pyright_json() {
        let r = ruff(
            r#"[{"filename":"/o/pkg/a.py","location":{"row":5,"column":1},"message":"Undefined name `y`","code":"F821"}]"#,
            Path::new("/o"),
        );
        assert_eq!(
            r,
            vec![Diagnostic {
                file: "pkg/a.py".into(),
                line: 5,
                message: "Undefined name `y`".into(),
                code: Some("F821".into())
            }]
        );
        let p = pyright(
            r#"{"generalDiagnostics":[{"file":"/o/a.py","severity":"warning","message":"w","range":{"start":{"line":0}}},{"file":"/o/a.py","severity":"error","message":"bad","rule":"reportGeneralTypeIssues","range":{"start":{"line":2}}}]}"#,
            Path::new("/o"),
        );
        assert_eq!(
            p,
            vec![Diagnostic {
                file: "a.py".into(),
                line: 3,
                message: "bad".into(),
                code: Some("reportGeneralTypeIssues".into())
            }]
        );
    }
}
