//! Which indexed files a file's imports name, by each language's module rules, looked up in the index only
//! (no file system access: this runs for every completion request). External packages resolve to nothing.
use super::index::{normalize, SymbolIndex};
use super::tags::Import;
use crate::syntax::Lang;
use std::path::{Path, PathBuf};

/// An imported file and the names taken from it (empty: the whole module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: PathBuf,
    pub names: Vec<String>,
}

/// The files `from`'s imports resolve to, in import order, each once (a file imported whole once is
/// taken whole). Go files also get the other files of their package, which they use without importing.
pub fn targets(ix: &SymbolIndex, from: &Path, lang: Lang, imports: &[Import]) -> Vec<Target> {
    let mut out: Vec<Target> = vec![];
    let mut add = |path: PathBuf, names: &[String]| {
        if path == from {
            return;
        }
        match out.iter_mut().find(|t| t.path == path) {
            Some(t) if t.names.is_empty() => {}
            Some(t) if names.is_empty() => t.names.clear(),
            Some(t) => {
                for n in names {
                    if !t.names.contains(n) {
                        t.names.push(n.clone());
                    }
                }
            }
            None => out.push(Target { path, names: names.to_vec() }),
        }
    };
    for i in imports {
        match lang {
            Lang::Rust => {
                let module: Vec<&str> = i.module.split("::").collect();
                if i.names.is_empty() {
                    if let Some(p) = rust(ix, from, &module) {
                        add(p, &[]);
                    }
                }
                for name in &i.names {
                    let mut segs = module.clone();
                    segs.extend(name.split("::"));
                    let last = segs.last().map(|s| s.to_string()).unwrap_or_default();
                    // `use crate::invoice;` names a module: all of it; `use crate::invoice::Invoice;` one item.
                    if let Some(p) = rust(ix, from, &segs) {
                        let whole = rust(ix, from, &segs[..segs.len() - 1]).as_ref() != Some(&p);
                        add(p, if whole { &[] } else { std::slice::from_ref(&last) });
                    }
                }
            }
            Lang::Python => {
                if i.names.is_empty() {
                    if let Some(p) = python(ix, from, &i.module) {
                        add(p, &[]);
                    }
                }
                for name in &i.names {
                    let sep = if i.module.ends_with('.') { "" } else { "." };
                    match python(ix, from, &format!("{}{sep}{name}", i.module)) {
                        Some(p) => add(p, &[]),
                        None => {
                            if let Some(p) = python(ix, from, &i.module) {
                                add(p, std::slice::from_ref(name));
                            }
                        }
                    }
                }
            }
            Lang::TypeScript | Lang::Tsx => {
                if let Some(p) = typescript(ix, from, &i.module) {
                    add(p, &i.names);
                }
            }
            Lang::Go => {
                for p in go_package(ix, &i.module) {
                    add(p, &[]);
                }
            }
        }
    }
    if lang == Lang::Go {
        if let Some(dir) = from.parent() {
            for p in go_files_in(ix, dir) {
                add(p, &[]);
            }
        }
    }
    out
}

/// The directory holding a Rust file's child modules.
fn rust_module_dir(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap_or(Path::new("")).to_path_buf();
    match file.file_stem().and_then(|s| s.to_str()) {
        Some("lib" | "main" | "mod") | None => parent,
        Some(stem) => parent.join(stem),
    }
}

fn rust_crate_root(file: &Path) -> PathBuf {
    file.ancestors()
        .skip(1)
        .find(|a| a.file_name().is_some_and(|n| n == "src"))
        .or(file.parent())
        .unwrap_or(Path::new(""))
        .to_path_buf()
}

/// The deepest indexed module file along `segs` (`crate`, `self`, `super` or a first module name).
fn rust(ix: &SymbolIndex, from: &Path, segs: &[&str]) -> Option<PathBuf> {
    let root = rust_crate_root(from);
    let module_file = |dir: &Path| -> Option<PathBuf> {
        if dir == root {
            return ["lib.rs", "main.rs"].iter().map(|f| dir.join(f)).find(|p| ix.contains(p));
        }
        let a = dir.with_extension("rs");
        let b = dir.join("mod.rs");
        [a, b].into_iter().find(|p| ix.contains(p))
    };
    let (mut dir, mut file, mut rest) = match segs.first().copied() {
        Some("crate") => (root.clone(), module_file(&root), &segs[1..]),
        Some("self") => (rust_module_dir(from), Some(from.to_path_buf()), &segs[1..]),
        Some("super") => {
            let mut dir = rust_module_dir(from);
            let mut rest = segs;
            while rest.first() == Some(&"super") {
                dir = dir.parent()?.to_path_buf();
                rest = &rest[1..];
            }
            (dir.clone(), module_file(&dir), rest)
        }
        // Edition 2015 paths and external crates: only what the crate itself has resolves.
        Some(_) => (root.clone(), None, segs),
        None => return None,
    };
    while let Some(s) = rest.first() {
        let a = dir.join(format!("{s}.rs"));
        let b = dir.join(s).join("mod.rs");
        let Some(p) = [a, b].into_iter().find(|p| ix.contains(p)) else { break };
        file = Some(p);
        dir = dir.join(s);
        rest = &rest[1..];
    }
    file.map(|f| normalize(&f))
}

/// A Python module by dotted name: relative (`.x`, `..pkg.x`) to the file's package, absolute from the
/// nearest ancestor directory where it exists.
fn python(ix: &SymbolIndex, from: &Path, module: &str) -> Option<PathBuf> {
    let dots = module.chars().take_while(|c| *c == '.').count();
    let segs: Vec<&str> = module[dots..].split('.').filter(|s| !s.is_empty()).collect();
    let find = |base: &Path| -> Option<PathBuf> {
        let p = segs.iter().fold(base.to_path_buf(), |p, s| p.join(s));
        if segs.is_empty() {
            let init = p.join("__init__.py");
            return ix.contains(&init).then_some(init);
        }
        [p.with_extension("py"), p.join("__init__.py")].into_iter().find(|c| ix.contains(c))
    };
    let dir = from.parent()?;
    if dots > 0 {
        let base = dir.ancestors().nth(dots - 1)?;
        return find(base);
    }
    dir.ancestors().take_while(|a| ix.root_of(a).is_some() || ix.roots().is_empty()).find_map(find)
}

/// A relative TypeScript/JavaScript import (`./api`, `../lib/http.js`); packages resolve to nothing.
fn typescript(ix: &SymbolIndex, from: &Path, spec: &str) -> Option<PathBuf> {
    if !spec.starts_with('.') {
        return None;
    }
    let base = normalize(&from.parent()?.join(spec));
    let s = base.to_string_lossy().to_string();
    // `./x.js` in TypeScript sources names the compiled output of `./x.ts`.
    let stem = s.strip_suffix(".js").unwrap_or(&s);
    let mut candidates = vec![base.clone()];
    for ext in ["ts", "tsx", "d.ts", "js", "jsx", "mjs", "mts"] {
        candidates.push(PathBuf::from(format!("{stem}.{ext}")));
    }
    for ext in ["ts", "tsx", "js", "jsx"] {
        candidates.push(base.join(format!("index.{ext}")));
    }
    candidates.into_iter().find(|c| ix.contains(c))
}

fn go_files_in<'a>(ix: &'a SymbolIndex, dir: &'a Path) -> impl Iterator<Item = PathBuf> + 'a {
    let mut v: Vec<PathBuf> = ix
        .paths()
        .filter(move |p| {
            p.parent() == Some(dir)
                && p.extension().is_some_and(|e| e == "go")
                && !p.to_string_lossy().ends_with("_test.go")
        })
        .map(Path::to_path_buf)
        .collect();
    v.sort();
    v.into_iter()
}

/// A Go import path's package: the indexed directory whose path ends with the import path's last
/// segments (the module prefix is in go.mod, which the index does not read). The standard library
/// (no dot in the first segment) resolves to nothing.
fn go_package(ix: &SymbolIndex, import: &str) -> Vec<PathBuf> {
    let segs: Vec<&str> = import.split('/').collect();
    if !segs[0].contains('.') || segs.len() < 2 {
        return vec![];
    }
    let tail: PathBuf = segs[segs.len().saturating_sub(2).max(1)..].iter().collect();
    let mut dirs: Vec<PathBuf> =
        ix.paths().filter_map(Path::parent).filter(|d| d.ends_with(&tail)).map(Path::to_path_buf).collect();
    dirs.sort();
    dirs.dedup();
    dirs.first().map(|d| go_files_in(ix, d).collect()).unwrap_or_default()
}
