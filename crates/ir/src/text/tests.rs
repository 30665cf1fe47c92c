//! Unit tests of the text format: hand-written round trips and one test per error kind.

use super::*;
use crate::attr::AttrValue;
use crate::graph::InputKind;
use crate::ops::OpKind;
use crate::types::DType;

const LENET: &str = include_str!("../../../../ir-spec/examples/lenet.sir");

/// The parse error of `src`, as `line:col: message`.
fn err(src: &str) -> String {
    match parse(src) {
        Ok(g) => panic!("expected an error, parsed:\n{}", print(&g)),
        Err(e) => e.to_string(),
    }
}

/// A graph body wrapped in `graph @g { ... }` (the body starts on line 2).
fn wrap(body: &str) -> String {
    format!("graph @g {{\n{body}}}\n")
}

fn round_trip(src: &str) -> Graph {
    let g = parse(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    let text = print(&g);
    let g2 = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(print(&g2), text);
    g2
}

#[test]
fn brief_example_round_trips() {
    let src = "# comment to end of line
graph @lenet {
  input %x: f32[1,1,32,32]
  param %w1: f32[6,1,5,5]
  const %b1: f32[6] = 0.0
  const %c: f32[2,2] = [1.0, 2.5, -3.0, 4.0]
  const %lbl: i64[3] = [1, 0, 2]
  const %m: bool[2] = [true, false]
  %y: f32[1,6,28,28] = conv2d(%x, %w1, %b1) {stride=[1, 1], pad=[0, 0, 0, 0], dilation=[1, 1], groups=1}
  %r: f32[1,6,28,28] = relu(%y)
  %a: f32[1,3,28,28], %b: f32[1,3,28,28] = split(%r) {axis=1, sizes=[3, 3]}
  %u: f32[4] = random_uniform() {shape=[4], low=0.0, high=1.0, seed=7}
  output %a, %b
}
";
    let g = parse(src).unwrap();
    // The canonical text is the source without its comment line.
    let canonical = src.split_once('\n').unwrap().1;
    assert_eq!(print(&g), canonical);
    assert_eq!(g.name(), "lenet");
    assert_eq!(g.nodes().len(), 10);
    assert_eq!(
        g.inputs().map(|(_, k)| k).collect::<Vec<_>>(),
        vec![InputKind::Data, InputKind::Param]
    );
    let b1 = g.node(g.find("b1").unwrap().node);
    assert_eq!(
        b1.kind,
        crate::NodeKind::Const(Tensor::from_f32(&[6], vec![0.0; 6]))
    );
    assert_eq!(g.outputs().len(), 2);
    assert_eq!(parse(&print(&g)).unwrap(), g);
}

#[test]
fn lenet_example_round_trips() {
    let g = round_trip(LENET);
    assert_eq!(g.name(), "lenet");
    // The example is written canonically, apart from its comments.
    let without_comments: String = LENET
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(print(&g), without_comments);
}

#[test]
fn defaults_are_filled_and_types_optional() {
    let g = round_trip(&wrap(
        "input %x: f32[1,2,5,5]\nparam %w: f32[4,2,3,3]\n%y = conv2d(%x, %w)\n%z = leaky_relu(%y) {alpha=1}\n%p = max_pool2d(%z) {stride=[1, 1], kernel=[2, 2]}\noutput %p\n",
    ));
    assert_eq!(
        print(&g),
        "graph @g {
  input %x: f32[1,2,5,5]
  param %w: f32[4,2,3,3]
  %y: f32[1,4,3,3] = conv2d(%x, %w) {stride=[1, 1], pad=[0, 0, 0, 0], dilation=[1, 1], groups=1}
  %z: f32[1,4,3,3] = leaky_relu(%y) {alpha=1.0}
  %p: f32[1,4,2,2] = max_pool2d(%z) {kernel=[2, 2], stride=[1, 1], pad=[0, 0, 0, 0]}
  output %p
}
"
    );
}

#[test]
fn literals_and_odd_names() {
    let src = "graph @net.v2_0 {
  input %0: f32[]
  const %a.b: f32[3] = [-0.0, 1e-45, 3.4028235e38]
  const %nan: f32[2] = nan
  const %infs: f32[3] = [inf, -inf, 1]
  const %e: f32[0,3] = []
  const %big: i64[2] = [-9223372036854775808, 9223372036854775807]
  const %t: bool[] = true
  %c: f32[3] = cast(%big.x) {to=f32}
  output %0
}
";
    // `%big.x` is undefined: the name includes the dot.
    assert_eq!(err(src), "9:21: unknown value `%big.x`");
    let g = round_trip(&src.replace("%big.x", "%a.b"));
    let text = print(&g);
    assert!(
        text.contains("const %a.b: f32[3] = [-0.0, 1e-45, 3.4028235e38]\n"),
        "{text}"
    );
    assert!(text.contains("const %nan: f32[2] = nan\n"), "{text}");
    assert!(
        text.contains("const %infs: f32[3] = [inf, -inf, 1.0]\n"),
        "{text}"
    );
    assert!(text.contains("const %e: f32[0,3] = []\n"), "{text}");
    assert!(text.contains("const %t: bool[] = true\n"), "{text}");
    assert!(
        text.contains("%c: f32[3] = cast(%a.b) {to=f32}\n"),
        "{text}"
    );
    let a = g.node(g.find("a.b").unwrap().node);
    let crate::NodeKind::Const(t) = &a.kind else {
        panic!()
    };
    let bits: Vec<u32> = t.as_f32().unwrap().iter().map(|x| x.to_bits()).collect();
    assert_eq!(bits, vec![0x8000_0000, 1, f32::MAX.to_bits()]);
}

#[test]
fn tensor_literal_api() {
    let ty = crate::TensorType::f32(&[2, 2]);
    let t = parse_tensor_literal(&ty, " [1, 2.5, -3e2, nan] # c").unwrap();
    assert_eq!(print_tensor_literal(&t), "[1.0, 2.5, -300.0, nan]");
    let t = parse_tensor_literal(&ty, "0.1").unwrap();
    assert_eq!(t, Tensor::full(&[2, 2], 0.1));
    assert_eq!(print_tensor_literal(&t), "0.1");
    let ty = crate::TensorType::i64(&[3]);
    assert_eq!(
        parse_tensor_literal(&ty, "[1, 2]").unwrap_err(),
        "1:1: literal has 2 elements but i64[3] needs 3"
    );
    assert_eq!(
        parse_tensor_literal(&ty, "[1, 2, 3] 4").unwrap_err(),
        "1:11: expected end of input after the literal, found `4`"
    );
    assert_eq!(
        parse_tensor_literal(&ty, "1.5").unwrap_err(),
        "1:1: expected an i64 integer, found `1.5`"
    );
    assert_eq!(print_tensor_literal(&Tensor::from_i64(&[0], vec![])), "[]");
    assert_eq!(
        print_tensor_literal(&Tensor::from_bool(&[2], vec![true, false])),
        "[true, false]"
    );
    let huge = crate::TensorType::f32(&[1 << 20, 1 << 20]);
    assert_eq!(
        parse_tensor_literal(&huge, "0").unwrap_err(),
        "type f32[1048576,1048576] has more than 2^32 elements"
    );
}

#[test]
fn attribute_values() {
    let g = round_trip(&wrap(
        "input %x: f32[2,3]\n%y = leaky_relu(%x) {alpha=-inf}\n%z = leaky_relu(%y) {alpha=nan}\n%w = gemm(%z, %x) {trans_b=true, alpha=2.5e-3}\n%i = cast(%w) {to=i64}\noutput %i\n",
    ));
    let ops: Vec<_> = g.nodes().iter().filter_map(|n| n.op()).collect();
    assert_eq!(
        ops[0].attrs(),
        vec![("alpha", AttrValue::Float(f32::NEG_INFINITY))]
    );
    assert!(matches!(ops[1].attrs()[0].1, AttrValue::Float(x) if x.is_nan()));
    assert_eq!(ops[2].attrs()[1], ("trans_b", AttrValue::Bool(true)));
    assert_eq!(ops[3].kind(), OpKind::Cast);
    assert_eq!(ops[3].attrs(), vec![("to", AttrValue::DType(DType::I64))]);
}

// ---- errors, one per kind, with exact positions ----

#[test]
fn empty_and_trailing_input() {
    assert_eq!(err(""), "1:1: expected `graph`, found end of input");
    assert_eq!(
        err("  # only a comment\n"),
        "2:1: expected `graph`, found end of input"
    );
    assert_eq!(
        err("graph g {"),
        "1:7: expected a graph name `@name`, found `g`"
    );
    assert_eq!(err("graph @g\n%x"), "2:1: expected `{`, found `%x`");
    let two = format!("{}{}", wrap("input %x: f32[]\noutput %x\n"), "graph @h {}");
    assert_eq!(
        err(&two),
        "5:1: expected end of input after the graph, found `graph`"
    );
}

#[test]
fn unexpected_tokens() {
    assert_eq!(
        err(&wrap("input x: f32[2]\n")),
        "2:7: expected a value name `%name`, found `x`"
    );
    assert_eq!(
        err(&wrap("input %x f32[2]\n")),
        "2:10: expected `:`, found `f32`"
    );
    assert_eq!(
        err(&wrap("input %x: f64[2]\n")),
        "2:11: expected a type such as `f32[2,3]` (dtype `f32`, `i64` or `bool`), found `f64`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2;3]\n")),
        "2:16: unexpected character `;`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2 3]\n")),
        "2:17: expected `,` or `]`, found `3`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[-2]\n")),
        "2:15: expected a dimension (a non-negative integer), found `-2`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\n%y relu(%x)\n")),
        "3:4: expected `:`, `,` or `=`, found `relu`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\n%y: f32[2] relu(%x)\n")),
        "3:12: expected `,` or `=`, found `relu`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\n%y = relu(%x\n")),
        "4:1: expected `,` or `)`, found `}`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\n%y = relu(%x) {alpha 1}\n")),
        "3:22: expected `=`, found `1`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\n%y = leaky_relu(%x) {alpha=1,}\n")),
        "3:30: expected an attribute name, found `}`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\n%y = leaky_relu(%x) {alpha=%x}\n")),
        "3:28: expected an attribute value (number, `true`, `false`, `[ints]` or dtype), found `%x`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\n%y = reshape(%x) {shape=[1.5]}\n")),
        "3:26: expected an integer, found `1.5`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\nrelu(%x)\n")),
        "3:1: expected `input`, `param`, `const`, `output` or a result `%name`, found `relu`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\noutput %x\n%y = relu(%x)\n")),
        "4:1: expected `,` or `}`, found `%y`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\noutput\n")),
        "4:1: expected a value `%name`, found `}`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\n%y = (%x)\n")),
        "3:6: expected an op name, found `(`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\n%y = 1.5e\n")),
        "3:6: malformed number `1.5e`"
    );
    assert_eq!(
        err(&wrap("input %\u{3b1}: f32[2]\n")),
        "2:7: expected a name after `%` (letters, digits, `_` or `.`)"
    );
    assert_eq!(
        err("graph @g {\n  input %x: f32[2] \u{2028}\n"),
        "2:20: unexpected character `\\u{2028}`"
    );
}

#[test]
fn unknown_op() {
    assert_eq!(
        err(&wrap("input %x: f32[2]\n%y = foo(%x)\n")),
        "3:6: unknown op `foo`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\n%y = relux(%x)\n")),
        "3:6: unknown op `relux` (did you mean `relu`?)"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\n%y = maxpool2d(%x)\n")),
        "3:6: unknown op `maxpool2d` (did you mean `max_pool2d`?)"
    );
}

#[test]
fn unknown_value() {
    assert_eq!(
        err(&wrap("input %x: f32[2]\n%y = add(%x, %z)\n%z = relu(%x)\n")),
        "3:14: unknown value `%z`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\n%y = relu(%y)\n")),
        "3:11: unknown value `%y`"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\noutput %x, %q\n")),
        "3:12: unknown value `%q`"
    );
}

#[test]
fn duplicate_names() {
    assert_eq!(
        err(&wrap("input %x: f32[2]\nparam %x: f32[2]\n")),
        "3:7: value `%x` is already defined (at 2:7)"
    );
    assert_eq!(
        err(&wrap(
            "input %x: f32[2]\n%y = relu(%x)\nconst %y: f32[] = 1\n"
        )),
        "4:7: value `%y` is already defined (at 3:1)"
    );
    assert_eq!(
        err(&wrap(
            "input %x: f32[4]\n%a, %a = split(%x) {axis=0, sizes=[2, 2]}\n"
        )),
        "3:5: value `%a` is already defined (at 3:1)"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\noutput %x, %x\n")),
        "3:12: output `%x` is listed twice"
    );
}

#[test]
fn bad_attributes() {
    let x = "input %x: f32[1,1,4,4]\n";
    assert_eq!(
        err(&wrap(&format!("{x}%y = relu(%x) {{alpha=1}}\n"))),
        "3:16: unknown attribute `alpha` for `relu` (it takes: none)"
    );
    assert_eq!(
        err(&wrap(&format!(
            "{x}%y = max_pool2d(%x) {{stride=[1, 1]}}\n"
        ))),
        "3:6: missing attribute `kernel` ([int; 2])"
    );
    assert_eq!(
        err(&wrap(&format!(
            "{x}%y = max_pool2d(%x) {{kernel=[2, 2], stride=[1], pad=[0, 0, 0, 0]}}\n"
        ))),
        "3:37: attribute `stride`: expected a list of 2 ints, found 1 in `[1]`"
    );
    assert_eq!(
        err(&wrap(&format!("{x}%y = softmax(%x) {{axis=1, axis=2}}\n"))),
        "3:27: attribute `axis` given twice"
    );
    assert_eq!(
        err(&wrap(&format!("{x}%y = softmax(%x) {{axis=1.0}}\n"))),
        "3:19: attribute `axis`: expected int, found `1.0`"
    );
    assert_eq!(
        err(&wrap(&format!("{x}%y = cast(%x) {{to=f16}}\n"))),
        "3:19: expected an attribute value (number, `true`, `false`, `[ints]` or dtype), found `f16`"
    );
}

#[test]
fn shape_errors() {
    assert_eq!(
        err(&wrap(
            "input %x: f32[1,3,8,8]\nparam %w: f32[4,1,3,3]\n%y = conv2d(%x, %w)\noutput %y\n"
        )),
        "4:6: %y = conv2d(%x, %w): input f32[1,3,8,8] has 3 channels, weight f32[4,1,3,3] expects 1"
    );
    assert_eq!(
        err(&wrap("input %x: f32[2]\n%y = add(%x)\n")),
        "3:6: %y = add(%x): `add` takes 2 inputs, got 1"
    );
    assert_eq!(
        err(&wrap(
            "input %x: f32[4]\n%a = split(%x) {axis=0, sizes=[2, 2]}\n"
        )),
        "3:6: %a = split(%x): `split` has 2 outputs but 1 names were given"
    );
    assert_eq!(
        err(&wrap("input %x: f32[100000,100000,100000]\n")),
        "2:11: %x: type f32[100000,100000,100000] has more than 2^32 elements"
    );
    assert_eq!(
        err(&wrap("const %c: f32[100000,100000,100000] = 0\n")),
        "2:11: %c: type f32[100000,100000,100000] has more than 2^32 elements"
    );
}

#[test]
fn declared_type_mismatch() {
    assert_eq!(
        err(&wrap("input %x: f32[2,3]\n%y: f32[3,2] = relu(%x)\n")),
        "3:5: `%y` is declared f32[3,2] but `relu` gives f32[2,3]"
    );
    assert_eq!(
        err(&wrap(
            "input %x: f32[4]\n%a: f32[2], %b: i64[2] = split(%x) {axis=0, sizes=[2, 2]}\n"
        )),
        "3:17: `%b` is declared i64[2] but `split` gives f32[2]"
    );
}

#[test]
fn literal_errors() {
    assert_eq!(
        err(&wrap("const %c: f32[2,2] = [1, 2, 3]\n")),
        "2:22: literal has 3 elements but f32[2,2] needs 4"
    );
    assert_eq!(
        err(&wrap("const %c: f32[2] = [1, [2]]\n")),
        "2:24: expected an f32 number (or `nan`, `inf`, `-inf`), found `[`"
    );
    assert_eq!(
        err(&wrap("const %c: bool[2] = [true, 1]\n")),
        "2:28: expected `true` or `false`, found `1`"
    );
    assert_eq!(
        err(&wrap("const %c: i64[] = nan\n")),
        "2:19: expected an i64 integer, found `nan`"
    );
    assert_eq!(
        err(&wrap("const %c: f32[] = -nan\n")),
        "2:19: unexpected `-`: only a number or `-inf` may start with `-`"
    );
    assert_eq!(
        err(&wrap("const %c: f32[2]\n")),
        "3:1: expected `=`, found `}`"
    );
    // Fuzzer findings (fuzz/corpus/ir_text/issue-*-splat.sir): a splat of 2.9G elements ran
    // out of memory, one of 800M took seconds. Splats stop at 2^26 elements.
    assert_eq!(
        err(&wrap("const %c: f32[2888888888,1] = 8\n")),
        "2:31: a constant of 2888888888 elements is larger than the text format expands a \
         splat value to (2^26 = 67108864); make it an input"
    );
    assert!(err(&wrap("const %c: i64[8192,8193] = 0\n")).contains("67108864"));
    let ok = parse(&wrap("const %c: f32[8192,8192] = 0\n  output %c\n")).unwrap();
    assert_eq!(ok.ty(ok.outputs()[0]).numel(), 1 << 26);
}

#[test]
fn out_of_range_numbers() {
    assert_eq!(
        err(&wrap("const %c: i64[] = 9223372036854775808\n")),
        "2:19: integer `9223372036854775808` is out of range for i64"
    );
    assert_eq!(
        err(&wrap("const %c: f32[] = 1e39\n")),
        "2:19: number `1e39` is out of range for f32"
    );
    assert_eq!(
        err(&wrap("input %x: f32[99999999999999999999999]\n")),
        "2:15: dimension `99999999999999999999999` is out of range"
    );
    assert_eq!(
        err(&wrap(
            "input %x: f32[2]\n%y = softmax(%x) {axis=-99999999999999999999}\n"
        )),
        "3:24: integer `-99999999999999999999` is out of range for i64"
    );
    let long = "9".repeat(100);
    assert_eq!(
        err(&wrap(&format!("const %c: i64[] = {long}\n"))),
        format!("2:19: integer `{long}` is out of range for i64")
    );
}

#[test]
fn missing_output_and_unterminated() {
    assert_eq!(
        err(&wrap("input %x: f32[2]\n")),
        "3:1: missing `output`: the graph ends without one"
    );
    assert_eq!(
        err("graph @g {\n  input %x: f32[2]\n"),
        "3:1: unterminated graph: expected a statement or `output`, found end of input"
    );
    assert_eq!(
        err("graph @g {\n  input %x: f32[2]\n  output %x"),
        "3:12: unterminated graph: expected `}`, found end of input"
    );
    assert_eq!(
        err("graph @g {\n  input %x: f32["),
        "2:17: expected a dimension (a non-negative integer), found end of input"
    );
}

#[test]
fn never_panics_on_odd_inputs() {
    for src in [
        "\u{0}",
        "graph",
        "graph @",
        "graph @g { %",
        "graph @g { input %x: f32[] output %x } extra",
        "graph @g { %a: f32[ = relu() }",
        "graph @g { const %c: f32[3] = [1, 2, 3,] output %c }",
        "graph @g { %y = random_uniform() {shape=[-1]} output %y }",
        "graph @g { %y = random_uniform() {shape=[4294967296, 2]} output %y }",
        "graph @g { input %x: f32[2] %y = reshape(%x) {shape=[9223372036854775807, -1]} output %y }",
        "graph @g { input %x: f32[1,1,2,2] %y = max_pool2d(%x) {kernel=[9223372036854775807, 1], stride=[1, 1]} output %y }",
        "graph @g { input %x: f32[1,1,2,2] %y = conv_transpose2d(%x, %x) {stride=[9223372036854775807, 1]} output %y }",
        "\u{feff}graph @g {}",
    ] {
        assert!(parse(src).is_err(), "{src}");
    }
}

#[test]
fn grammar_doc_examples_hold() {
    let doc = include_str!("../../../../ir-spec/grammar.md");
    let blocks: Vec<&str> = doc
        .split("```sir\n")
        .skip(1)
        .map(|b| b.split_once("```").unwrap().0)
        .collect();
    assert_eq!(blocks.len(), 3);
    for b in &blocks {
        round_trip(b);
    }
    // The full example is canonical apart from its comment line.
    assert_eq!(
        print(&parse(blocks[0]).unwrap()),
        blocks[0].split_once('\n').unwrap().1
    );
    // The short form prints as the doc says.
    let short = parse(blocks[1]).unwrap();
    assert_eq!(print(&short), blocks[2]);
    assert_eq!(parse(blocks[2]).unwrap(), short);
}
