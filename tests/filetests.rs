//! Filetests in the Cranelift spirit: one folder per kind under `tests/filetests/`, each
//! `.sir` file a case, the expected result an `insta` snapshot beside this file
//! (`tests/snapshots/`). Re-bless with `cargo insta review` (or `INSTA_UPDATE=always`) after
//! reading every changed snapshot: a snapshot is a claim.
//!
//! - `parse/`: the file parses and verifies; the snapshot is its canonical print, which must
//!   also be a fixed point (`print(parse(print(g))) == print(g)`).
//! - `verify/`: the file must be rejected; the snapshot is the error (with line and column).
//! - `run/`: the file runs on the reference interpreter with inputs given by `#| name = literal`
//!   lines; the snapshot is every output. Expected values are derived by hand in each file's
//!   header comment.

use sinter::ir::{Tensor, TensorData, parse, print, text::parse_tensor_literal};
use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn parse_files() {
    insta::glob!("filetests/parse/*.sir", |path| {
        let g = parse(&read(path)).unwrap_or_else(|e| panic!("{}:{e}", path.display()));
        let printed = print(&g);
        let again =
            parse(&printed).unwrap_or_else(|e| panic!("reparse {}:{e}\n{printed}", path.display()));
        assert_eq!(
            print(&again),
            printed,
            "{}: print is not a fixed point",
            path.display()
        );
        insta::assert_snapshot!(printed);
    });
}

#[test]
fn verify_files() {
    insta::glob!("filetests/verify/*.sir", |path| {
        match parse(&read(path)) {
            Ok(g) => panic!(
                "{} should be rejected but parsed as:\n{}",
                path.display(),
                print(&g)
            ),
            Err(e) => insta::assert_snapshot!(e.to_string()),
        }
    });
}

/// Values rounded to 6 significant digits so snapshots do not depend on the last bit of
/// `exp` or `ln` in the platform's libm.
fn show(t: &Tensor) -> String {
    let items: Vec<String> = match t.data() {
        TensorData::F32(v) => v
            .iter()
            .map(|x| {
                let s = format!("{:.6e}", x);
                let r: f32 = s.parse().unwrap_or(*x);
                if r == 0.0 {
                    "0".to_string()
                } else {
                    format!("{r}")
                }
            })
            .collect(),
        TensorData::I64(v) => v.iter().map(i64::to_string).collect(),
        TensorData::Bool(v) => v.iter().map(bool::to_string).collect(),
    };
    format!("[{}]", items.join(", "))
}

#[test]
fn run_files() {
    insta::glob!("filetests/run/*.sir", |path| {
        let src = read(path);
        let g = parse(&src).unwrap_or_else(|e| panic!("{}:{e}", path.display()));
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
        let outs =
            sinter::interp::run(&g, &feeds).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut s = String::new();
        for (name, t) in &outs {
            writeln!(s, "%{name}: {} = {}", t.ty(), show(t)).unwrap();
        }
        insta::assert_snapshot!(s);
    });
}
