//! Tokens of the `.sir` format, produced one at a time with their line and column.
//!
//! Line breaks are plain whitespace; `#` starts a comment that runs to the end of the line.

use super::ParseError;
use crate::graph::is_name_char;
use std::fmt;

/// One token.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// `%name`, stored without the `%`.
    Value(String),
    /// `@name`, stored without the `@`.
    Global(String),
    /// A word: keyword, op, attribute or dtype name, `true`, `false`, `nan`, `inf`, `-inf`.
    Word(String),
    /// A number as written, sign included: `3`, `-1`, `2.5e-3`.
    Num(String),
    /// One of `[ ] ( ) { } , : =`.
    Punct(char),
    /// End of input.
    Eof,
}

/// Longest token text quoted in full in an error message.
const SHOW_MAX: usize = 40;

fn shorten(s: &str) -> String {
    if s.chars().count() <= SHOW_MAX {
        s.to_string()
    } else {
        let head: String = s.chars().take(SHOW_MAX).collect();
        format!("{head}...")
    }
}

impl fmt::Display for Tok {
    /// How an error message names the token: `` `%x` ``, `` `,` ``, `end of input`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Value(n) => write!(f, "`%{}`", shorten(n)),
            Tok::Global(n) => write!(f, "`@{}`", shorten(n)),
            Tok::Word(w) | Tok::Num(w) => write!(f, "`{}`", shorten(w)),
            Tok::Punct(c) => write!(f, "`{c}`"),
            Tok::Eof => f.write_str("end of input"),
        }
    }
}

/// A token and where it starts (1-based line and column, columns counted in characters).
#[derive(Clone, Debug)]
pub(crate) struct Token {
    /// The token.
    pub tok: Tok,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

impl Token {
    /// An error located at this token.
    pub fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            col: self.col,
            message: message.into(),
        }
    }

    /// "expected X, found Y" at this token.
    pub fn unexpected(&self, expected: &str) -> ParseError {
        self.error(format!("expected {expected}, found {}", self.tok))
    }
}

/// The tokenizer: a cursor over the source.
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    col: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `src`.
    pub fn new(src: &'a str) -> Lexer<'a> {
        Lexer {
            src,
            pos: 0,
            line: 1,
            col: 1,
        }
    }

    fn peek_char(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_char2(&self) -> Option<char> {
        self.src[self.pos..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek_char().is_some_and(&f) {
            self.bump();
        }
        &self.src[start..self.pos]
    }

    fn skip_trivia(&mut self) {
        while let Some(c) = self.peek_char() {
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    self.bump();
                }
                '#' => {
                    self.take_while(|c| c != '\n');
                }
                _ => break,
            }
        }
    }

    /// The next token, or an error for a character that starts none.
    pub fn next_token(&mut self) -> Result<Token, ParseError> {
        self.skip_trivia();
        let (line, col) = (self.line, self.col);
        let at = |tok| Ok(Token { tok, line, col });
        let err = |message: String| Err(ParseError { line, col, message });
        let Some(c) = self.peek_char() else {
            return at(Tok::Eof);
        };
        match c {
            '%' | '@' => {
                self.bump();
                let name = self.take_while(is_name_char);
                if name.is_empty() {
                    return err(format!(
                        "expected a name after `{c}` (letters, digits, `_` or `.`)"
                    ));
                }
                let name = name.to_string();
                at(if c == '%' {
                    Tok::Value(name)
                } else {
                    Tok::Global(name)
                })
            }
            '[' | ']' | '(' | ')' | '{' | '}' | ',' | ':' | '=' => {
                self.bump();
                at(Tok::Punct(c))
            }
            '-' if self.peek_char2().is_some_and(|c| c.is_ascii_digit()) => self.number(line, col),
            '-' if self.src[self.pos..].starts_with("-inf")
                && !self.src[self.pos + 4..]
                    .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') =>
            {
                self.pos += 4;
                self.col += 4;
                at(Tok::Word("-inf".into()))
            }
            '-' => err("unexpected `-`: only a number or `-inf` may start with `-`".into()),
            c if c.is_ascii_digit() => self.number(line, col),
            c if c.is_ascii_alphabetic() || c == '_' => {
                let w = self.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
                at(Tok::Word(w.to_string()))
            }
            c => err(format!("unexpected character `{}`", c.escape_debug())),
        }
    }

    /// `-? digit+ ("." digit+)? ([eE] [+-]? digit+)?`
    fn number(&mut self, line: usize, col: usize) -> Result<Token, ParseError> {
        let start = self.pos;
        if self.peek_char() == Some('-') {
            self.bump();
        }
        let digits = |l: &mut Lexer<'a>| !l.take_while(|c| c.is_ascii_digit()).is_empty();
        let mut ok = digits(self);
        if ok && self.peek_char() == Some('.') {
            self.bump();
            ok = digits(self);
        }
        if ok && matches!(self.peek_char(), Some('e' | 'E')) {
            self.bump();
            if matches!(self.peek_char(), Some('+' | '-')) {
                self.bump();
            }
            ok = digits(self);
        }
        let text = &self.src[start..self.pos];
        if !ok {
            return Err(ParseError {
                line,
                col,
                message: format!("malformed number `{}`", shorten(text)),
            });
        }
        Ok(Token {
            tok: Tok::Num(text.to_string()),
            line,
            col,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        let mut l = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let t = l.next_token().unwrap();
            if t.tok == Tok::Eof {
                return out;
            }
            out.push(t.tok);
        }
    }

    #[test]
    fn tokens() {
        assert_eq!(
            toks("%a.1 @g f32[2,3] = -1.5e-3 -inf # c\n{x=-2}"),
            vec![
                Tok::Value("a.1".into()),
                Tok::Global("g".into()),
                Tok::Word("f32".into()),
                Tok::Punct('['),
                Tok::Num("2".into()),
                Tok::Punct(','),
                Tok::Num("3".into()),
                Tok::Punct(']'),
                Tok::Punct('='),
                Tok::Num("-1.5e-3".into()),
                Tok::Word("-inf".into()),
                Tok::Punct('{'),
                Tok::Word("x".into()),
                Tok::Punct('='),
                Tok::Num("-2".into()),
                Tok::Punct('}'),
            ]
        );
    }

    #[test]
    fn positions_and_errors() {
        let mut l = Lexer::new("# c\n  \u{e9}x");
        let e = l.next_token().unwrap_err();
        assert_eq!(e.to_string(), "2:3: unexpected character `\u{e9}`");
        let e = Lexer::new("1.").next_token().unwrap_err();
        assert_eq!(e.to_string(), "1:1: malformed number `1.`");
        let e = Lexer::new(" -infx").next_token().unwrap_err();
        assert_eq!(
            e.to_string(),
            "1:2: unexpected `-`: only a number or `-inf` may start with `-`"
        );
        let e = Lexer::new("% x").next_token().unwrap_err();
        assert_eq!(
            e.to_string(),
            "1:1: expected a name after `%` (letters, digits, `_` or `.`)"
        );
    }
}
