//! Filetests of the JIT: `lower` snapshots the loop-nest IR of each `tests/filetests/lower/*.sir`
//! graph; `run` executes every `tests/filetests/run/*.sir` through the JIT (plain and
//! bounds-checked) and compares with the interpreter, feeding the `#| name = literal` inputs.

mod common;

use sinter_ir::text::parse_tensor_literal;
use sinter_runtime::CompileOptions;
use std::collections::HashMap;
use std::path::PathBuf;

fn dir(kind: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/filetests")
        .join(kind)
}

fn files(kind: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sir"))
        .collect();
    v.sort();
    v
}

#[test]
fn lower_files() {
    let files = files("lower");
    assert!(!files.is_empty());
    for path in files {
        let src = std::fs::read_to_string(&path).unwrap();
        let g = sinter_ir::parse(&src).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let p = sinter_lower::lower_graph(&g, Default::default()).unwrap();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        insta::with_settings!({snapshot_path => dir("lower").join("snapshots"), prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!(name, p.to_string());
        });
    }
}

#[test]
fn run_files_through_the_jit() {
    let files = files("run");
    assert!(!files.is_empty());
    for path in files {
        let src = std::fs::read_to_string(&path).unwrap();
        let g = sinter_ir::parse(&src).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut feeds = HashMap::new();
        for line in src.lines().filter_map(|l| l.strip_prefix("#|")) {
            let (name, lit) = line.split_once('=').expect("`#| name = literal`");
            let name = name.trim();
            let v = g
                .find(name)
                .unwrap_or_else(|| panic!("{}: no input `{name}`", path.display()));
            let t =
                parse_tensor_literal(g.ty(v), lit.trim()).unwrap_or_else(|e| panic!("{name}: {e}"));
            feeds.insert(name.to_string(), t);
        }
        for opts in [CompileOptions::default(), CompileOptions::checked()] {
            common::check(&g, &feeds, opts, 1e-6);
        }
    }
}
