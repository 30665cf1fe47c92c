//! Recursive-descent parser of the `.sir` format. Grammar: `ir-spec/grammar.md`.
//!
//! The graph is built through [`Graph::add_input`], [`Graph::add_const`] and [`Graph::add_op`]
//! as the text is read, so shape inference checks each line as soon as it is parsed and its
//! errors point at that line.

use super::ParseError;
use super::lexer::{Lexer, Tok, Token};
use crate::attr::AttrValue;
use crate::graph::{Graph, InputKind, Value, check_type};
use crate::ops::OpKind;
use crate::tensor::{Tensor, TensorData};
use crate::types::{DType, Shape, TensorType};
use std::collections::HashMap;

/// The parser: a lexer with one token of lookahead.
pub(crate) struct Parser<'a> {
    lex: Lexer<'a>,
    peeked: Option<Token>,
}

/// A graph under construction, with where each value was defined.
struct Builder {
    graph: Graph,
    names: HashMap<String, (Value, usize, usize)>,
}

impl Builder {
    /// Errors at `t` if `%name` is already defined (also among `pending`, earlier results of
    /// the same line).
    fn check_fresh(&self, name: &str, t: &Token, pending: &[Token]) -> Result<(), ParseError> {
        let earlier = self.names.get(name).map(|&(_, l, c)| (l, c)).or_else(|| {
            pending
                .iter()
                .find(|p| p.tok == t.tok)
                .map(|p| (p.line, p.col))
        });
        match earlier {
            Some((l, c)) => {
                Err(t.error(format!("value `%{name}` is already defined (at {l}:{c})")))
            }
            None => Ok(()),
        }
    }

    fn define(&mut self, name: String, v: Value, t: &Token) {
        self.names.insert(name, (v, t.line, t.col));
    }

    fn lookup(&self, t: &Token) -> Result<Value, ParseError> {
        match &t.tok {
            Tok::Value(n) => match self.names.get(n) {
                Some(&(v, _, _)) => Ok(v),
                None => Err(t.error(format!("unknown value `%{n}`"))),
            },
            _ => Err(t.unexpected("a value `%name`")),
        }
    }
}

/// Whether a number's text denotes a float (rather than an integer).
fn is_float_text(s: &str) -> bool {
    s.contains(['.', 'e', 'E'])
}

fn parse_i64(s: &str, t: &Token) -> Result<i64, ParseError> {
    s.parse::<i64>()
        .map_err(|_| t.error(format!("integer `{s}` is out of range for i64")))
}

/// An f32 from a number token or `nan`, `inf`, `-inf`; `None` if the token is neither.
fn f32_value(t: &Token) -> Result<Option<f32>, ParseError> {
    Ok(Some(match &t.tok {
        Tok::Num(s) => {
            let v: f32 = s
                .parse()
                .map_err(|_| t.error(format!("malformed number `{s}`")))?;
            if v.is_infinite() {
                return Err(t.error(format!("number `{s}` is out of range for f32")));
            }
            v
        }
        Tok::Word(w) if w == "nan" => f32::NAN,
        Tok::Word(w) if w == "inf" => f32::INFINITY,
        Tok::Word(w) if w == "-inf" => f32::NEG_INFINITY,
        _ => return Ok(None),
    }))
}

/// Most elements a splat literal (`const %c: f32[...] = 0`) may expand to: 2^26 (256 MiB of
/// `f32`). A few bytes of text must not make the parser allocate gigabytes (a fuzzer found
/// `f32[2888888888,1] = 8`); a tensor that large belongs in an input.
pub const MAX_SPLAT_ELEMENTS: usize = 1 << 26;

/// A vector of `n` copies of `v`, or an error (rather than an abort) if it is larger than
/// [`MAX_SPLAT_ELEMENTS`] or cannot be allocated.
fn splat<T: Clone>(v: T, n: usize, at: &Token) -> Result<Vec<T>, ParseError> {
    if n > MAX_SPLAT_ELEMENTS {
        return Err(at.error(format!(
            "a constant of {n} elements is larger than the text format expands a splat value \
             to (2^26 = {MAX_SPLAT_ELEMENTS}); make it an input"
        )));
    }
    let mut out = Vec::new();
    out.try_reserve_exact(n)
        .map_err(|_| at.error(format!("cannot allocate a constant of {n} elements")))?;
    out.resize(n, v);
    Ok(out)
}

/// The op name closest to `name`, if it is within a third of `name`'s length.
fn closest_op(name: &str) -> Option<&'static str> {
    if name.chars().count() > 64 {
        return None;
    }
    OpKind::ALL
        .iter()
        .map(|k| (strsim::levenshtein(name, k.name()), k.name()))
        .filter(|&(d, _)| d * 3 <= name.chars().count())
        .min_by_key(|&(d, _)| d)
        .map(|(_, n)| n)
}

impl<'a> Parser<'a> {
    /// A parser at the start of `src`.
    pub fn new(src: &'a str) -> Parser<'a> {
        Parser {
            lex: Lexer::new(src),
            peeked: None,
        }
    }

    fn peek(&mut self) -> Result<&Token, ParseError> {
        let t = match self.peeked.take() {
            Some(t) => t,
            None => self.lex.next_token()?,
        };
        Ok(self.peeked.insert(t))
    }

    fn next(&mut self) -> Result<Token, ParseError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lex.next_token(),
        }
    }

    /// Consumes the next token if it is `c`.
    fn eat(&mut self, c: char) -> Result<bool, ParseError> {
        if self.peek()?.tok == Tok::Punct(c) {
            self.next()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn expect(&mut self, c: char) -> Result<Token, ParseError> {
        let t = self.next()?;
        if t.tok != Tok::Punct(c) {
            return Err(t.unexpected(&format!("`{c}`")));
        }
        Ok(t)
    }

    fn expect_value_name(&mut self) -> Result<(String, Token), ParseError> {
        let t = self.next()?;
        match &t.tok {
            Tok::Value(n) => Ok((n.clone(), t)),
            _ => Err(t.unexpected("a value name `%name`")),
        }
    }

    /// Fails unless the input is used up.
    pub fn expect_eof(&mut self, after: &str) -> Result<(), ParseError> {
        let t = self.next()?;
        if t.tok != Tok::Eof {
            return Err(t.unexpected(&format!("end of input after {after}")));
        }
        Ok(())
    }

    /// `dtype [ dims ]`, with the token it starts at.
    fn tensor_type(&mut self) -> Result<(TensorType, Token), ParseError> {
        let t = self.next()?;
        let dtype = match &t.tok {
            Tok::Word(w) => DType::from_name(w),
            _ => None,
        };
        let Some(dtype) = dtype else {
            return Err(t.unexpected("a type such as `f32[2,3]` (dtype `f32`, `i64` or `bool`)"));
        };
        self.expect('[')?;
        let mut shape = Shape::new();
        if !self.eat(']')? {
            loop {
                let d = self.next()?;
                match &d.tok {
                    Tok::Num(s) if !is_float_text(s) && !s.starts_with('-') => shape.push(
                        s.parse::<usize>()
                            .map_err(|_| d.error(format!("dimension `{s}` is out of range")))?,
                    ),
                    _ => return Err(d.unexpected("a dimension (a non-negative integer)")),
                }
                let sep = self.next()?;
                match sep.tok {
                    Tok::Punct(',') => {}
                    Tok::Punct(']') => break,
                    _ => return Err(sep.unexpected("`,` or `]`")),
                }
            }
        }
        Ok((TensorType { dtype, shape }, t))
    }

    /// One element of a literal of `dtype`, appended to `data`.
    fn element(&mut self, data: &mut TensorData) -> Result<(), ParseError> {
        let t = self.next()?;
        match data {
            TensorData::F32(v) => match f32_value(&t)? {
                Some(x) => v.push(x),
                None => return Err(t.unexpected("an f32 number (or `nan`, `inf`, `-inf`)")),
            },
            TensorData::I64(v) => match &t.tok {
                Tok::Num(s) if !is_float_text(s) => v.push(parse_i64(s, &t)?),
                _ => return Err(t.unexpected("an i64 integer")),
            },
            TensorData::Bool(v) => match &t.tok {
                Tok::Word(w) if w == "true" => v.push(true),
                Tok::Word(w) if w == "false" => v.push(false),
                _ => return Err(t.unexpected("`true` or `false`")),
            },
        }
        Ok(())
    }

    /// A tensor literal of type `ty`: one splat value or a flat list `[v, ...]`. The caller
    /// has checked `ty` with [`check_type`].
    pub fn literal(&mut self, ty: &TensorType) -> Result<Tensor, ParseError> {
        let n = ty.numel();
        let mut data = match ty.dtype {
            DType::F32 => TensorData::F32(Vec::new()),
            DType::I64 => TensorData::I64(Vec::new()),
            DType::Bool => TensorData::Bool(Vec::new()),
        };
        let open = self.peek()?.clone();
        if self.eat('[')? {
            if !self.eat(']')? {
                loop {
                    self.element(&mut data)?;
                    let sep = self.next()?;
                    match sep.tok {
                        Tok::Punct(',') => {}
                        Tok::Punct(']') => break,
                        _ => return Err(sep.unexpected("`,` or `]`")),
                    }
                }
            }
            if data.len() != n {
                return Err(open.error(format!(
                    "literal has {} elements but {ty} needs {n}",
                    data.len()
                )));
            }
        } else {
            self.element(&mut data)?;
            data = match data {
                TensorData::F32(v) => TensorData::F32(splat(v[0], n, &open)?),
                TensorData::I64(v) => TensorData::I64(splat(v[0], n, &open)?),
                TensorData::Bool(v) => TensorData::Bool(splat(v[0], n, &open)?),
            };
        }
        Tensor::new(&ty.shape, data).map_err(|e| open.error(e.to_string()))
    }

    /// An attribute value: int, float, bool, `[int, ...]` or dtype.
    fn attr_value(&mut self) -> Result<AttrValue, ParseError> {
        let t = self.next()?;
        let expected = "an attribute value (number, `true`, `false`, `[ints]` or dtype)";
        match &t.tok {
            Tok::Num(s) if !is_float_text(s) => Ok(AttrValue::Int(parse_i64(s, &t)?)),
            Tok::Punct('[') => {
                let mut v = Vec::new();
                if !self.eat(']')? {
                    loop {
                        let x = self.next()?;
                        match &x.tok {
                            Tok::Num(s) if !is_float_text(s) => v.push(parse_i64(s, &x)?),
                            _ => return Err(x.unexpected("an integer")),
                        }
                        let sep = self.next()?;
                        match sep.tok {
                            Tok::Punct(',') => {}
                            Tok::Punct(']') => break,
                            _ => return Err(sep.unexpected("`,` or `]`")),
                        }
                    }
                }
                Ok(AttrValue::Ints(v))
            }
            Tok::Word(w) if w == "true" => Ok(AttrValue::Bool(true)),
            Tok::Word(w) if w == "false" => Ok(AttrValue::Bool(false)),
            Tok::Word(w) if let Some(d) = DType::from_name(w) => Ok(AttrValue::DType(d)),
            _ => match f32_value(&t)? {
                Some(x) => Ok(AttrValue::Float(x)),
                None => Err(t.unexpected(expected)),
            },
        }
    }

    /// `input`/`param` declaration, after the keyword.
    fn input(&mut self, st: &mut Builder, kind: InputKind) -> Result<(), ParseError> {
        let (name, nt) = self.expect_value_name()?;
        st.check_fresh(&name, &nt, &[])?;
        self.expect(':')?;
        let (ty, tt) = self.tensor_type()?;
        let v = st
            .graph
            .add_input(&name, ty, kind)
            .map_err(|e| tt.error(e.to_string()))?;
        st.define(name, v, &nt);
        Ok(())
    }

    /// `const` declaration, after the keyword.
    fn constant(&mut self, st: &mut Builder) -> Result<(), ParseError> {
        let (name, nt) = self.expect_value_name()?;
        st.check_fresh(&name, &nt, &[])?;
        self.expect(':')?;
        let (ty, tt) = self.tensor_type()?;
        check_type(&ty).map_err(|m| tt.error(format!("%{name}: {m}")))?;
        self.expect('=')?;
        let tensor = self.literal(&ty)?;
        let v = st
            .graph
            .add_const(&name, tensor)
            .map_err(|e| nt.error(e.to_string()))?;
        st.define(name, v, &nt);
        Ok(())
    }

    /// An op line, after its first result token `first`.
    fn op_line(&mut self, st: &mut Builder, first: Token) -> Result<(), ParseError> {
        // Results: `%a[: type], %b[: type] =`.
        let mut results: Vec<Token> = Vec::new();
        let mut declared: Vec<Option<(TensorType, Token)>> = Vec::new();
        let mut t = first;
        loop {
            let Tok::Value(name) = &t.tok else {
                return Err(t.unexpected("a value name `%name`"));
            };
            st.check_fresh(name, &t, &results)?;
            results.push(t);
            declared.push(if self.eat(':')? {
                Some(self.tensor_type()?)
            } else {
                None
            });
            let sep = self.next()?;
            match sep.tok {
                Tok::Punct(',') => t = self.next()?,
                Tok::Punct('=') => break,
                _ if declared.last().is_some_and(Option::is_some) => {
                    return Err(sep.unexpected("`,` or `=`"));
                }
                _ => return Err(sep.unexpected("`:`, `,` or `=`")),
            }
        }
        // `opname(operands)`.
        let op_tok = self.next()?;
        let kind = match &op_tok.tok {
            Tok::Word(w) => OpKind::from_name(w).ok_or_else(|| {
                op_tok.error(match closest_op(w) {
                    Some(c) => format!("unknown op `{w}` (did you mean `{c}`?)"),
                    None => format!("unknown op `{w}`"),
                })
            })?,
            _ => return Err(op_tok.unexpected("an op name")),
        };
        self.expect('(')?;
        let mut inputs = Vec::new();
        if !self.eat(')')? {
            loop {
                let v = self.next()?;
                inputs.push(st.lookup(&v)?);
                let sep = self.next()?;
                match sep.tok {
                    Tok::Punct(',') => {}
                    Tok::Punct(')') => break,
                    _ => return Err(sep.unexpected("`,` or `)`")),
                }
            }
        }
        // `{name=value, ...}`.
        let mut attrs: Vec<(String, AttrValue)> = Vec::new();
        let mut attr_toks: Vec<Token> = Vec::new();
        if self.eat('{')? && !self.eat('}')? {
            loop {
                let nt = self.next()?;
                let Tok::Word(name) = &nt.tok else {
                    return Err(nt.unexpected("an attribute name"));
                };
                let name = name.clone();
                self.expect('=')?;
                attrs.push((name, self.attr_value()?));
                attr_toks.push(nt);
                let sep = self.next()?;
                match sep.tok {
                    Tok::Punct(',') => {}
                    Tok::Punct('}') => break,
                    _ => return Err(sep.unexpected("`,` or `}`")),
                }
            }
        }
        let op = kind.with_attrs(&attrs).map_err(|m| {
            // Point at the attribute the message names (its repetition for "given twice"),
            // or at the op for a missing one.
            let named = |(n, _): &&(String, AttrValue)| m.contains(&format!("attribute `{n}`"));
            let idx = if m.contains("given twice") {
                attrs.iter().rposition(|a| named(&a))
            } else {
                attrs.iter().position(|a| named(&a))
            };
            idx.map_or(&op_tok, |i| &attr_toks[i]).error(m.clone())
        })?;
        let names: Vec<&str> = results
            .iter()
            .map(|t| match &t.tok {
                Tok::Value(n) => n.as_str(),
                _ => "",
            })
            .collect();
        let values = st
            .graph
            .add_op(&names, op, &inputs)
            .map_err(|e| op_tok.error(e.to_string()))?;
        for ((v, d), name) in values.iter().zip(&declared).zip(&names) {
            if let Some((ty, tt)) = d
                && st.graph.ty(*v) != ty
            {
                return Err(tt.error(format!(
                    "`%{name}` is declared {ty} but `{}` gives {}",
                    kind.name(),
                    st.graph.ty(*v)
                )));
            }
        }
        for (v, t) in values.iter().zip(&results) {
            if let Tok::Value(n) = &t.tok {
                st.define(n.clone(), *v, t);
            }
        }
        Ok(())
    }

    /// `output %a, %b`, after the keyword `kw`.
    fn outputs(&mut self, st: &mut Builder, kw: &Token) -> Result<(), ParseError> {
        let mut outs: Vec<Value> = Vec::new();
        loop {
            let t = self.next()?;
            let v = st.lookup(&t)?;
            if outs.contains(&v) {
                return Err(t.error(format!("output {} is listed twice", t.tok)));
            }
            outs.push(v);
            if !self.eat(',')? {
                break;
            }
        }
        st.graph
            .set_outputs(&outs)
            .map_err(|e| kw.error(e.to_string()))
    }

    /// The statements of the graph body, up to and including the `output` line; returns the
    /// `output` keyword.
    fn body(&mut self, st: &mut Builder) -> Result<Token, ParseError> {
        const UNTERMINATED: &str =
            "unterminated graph: expected a statement or `output`, found end of input";
        const STATEMENT: &str = "`input`, `param`, `const`, `output` or a result `%name`";
        loop {
            let t = self.next()?;
            match &t.tok {
                Tok::Word(w) if w == "input" => self.input(st, InputKind::Data)?,
                Tok::Word(w) if w == "param" => self.input(st, InputKind::Param)?,
                Tok::Word(w) if w == "const" => self.constant(st)?,
                Tok::Word(w) if w == "output" => {
                    self.outputs(st, &t)?;
                    return Ok(t);
                }
                Tok::Value(_) => self.op_line(st, t)?,
                Tok::Punct('}') => {
                    return Err(t.error("missing `output`: the graph ends without one"));
                }
                Tok::Eof => return Err(t.error(UNTERMINATED)),
                _ => return Err(t.unexpected(STATEMENT)),
            }
        }
    }

    /// A whole file: one graph, then only trivia.
    pub fn graph(&mut self) -> Result<Graph, ParseError> {
        let t = self.next()?;
        if t.tok != Tok::Word("graph".into()) {
            return Err(t.unexpected("`graph`"));
        }
        let t = self.next()?;
        let Tok::Global(name) = &t.tok else {
            return Err(t.unexpected("a graph name `@name`"));
        };
        let mut st = Builder {
            graph: Graph::new(name),
            names: HashMap::new(),
        };
        self.expect('{')?;
        let kw = self.body(&mut st)?;
        let t = self.next()?;
        match t.tok {
            Tok::Punct('}') => {}
            Tok::Eof => return Err(t.error("unterminated graph: expected `}`, found end of input")),
            _ => return Err(t.unexpected("`,` or `}`")),
        }
        self.expect_eof("the graph")?;
        st.graph.verify().map_err(|e| kw.error(e.to_string()))?;
        Ok(st.graph)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_and_suggestions() {
        assert_eq!(closest_op("relux"), Some("relu"));
        assert_eq!(closest_op("conv2"), Some("conv2d"));
        assert_eq!(closest_op("foo"), None);
    }
}
