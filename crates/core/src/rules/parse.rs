//! The expression grammar, parsed with `winnow` into an [`Expr`] tree whose nodes carry the
//! column of their first character (1-based), so every later error can point at a token.
//!
//! Precedence, loosest first: `or`, `and`, `not`, comparisons, `+ -`, `* /`, unary minus,
//! `x[k]`, atoms (numbers, `true`/`false`, names, calls, strings, parentheses).

use winnow::ascii::{digit0, digit1, multispace0};
use winnow::combinator::{
    alt, cut_err, delimited, not, opt, preceded, repeat, separated, terminated,
};
use winnow::error::{ContextError, ErrMode, StrContext, StrContextValue};
use winnow::prelude::*;
use winnow::stream::{LocatingSlice, Location};
use winnow::token::{one_of, take_while};

/// Longest expression accepted, in bytes.
pub const MAX_LEN: usize = 2_000;
/// Deepest nesting of parentheses, calls and indexing accepted.
pub const MAX_DEPTH: usize = 32;

/// A parsed expression with the column (1-based, in characters) where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: Kind,
    /// Column of its first character.
    pub col: usize,
}

/// The expression forms.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A number literal.
    Num(f64),
    /// `true` or `false`.
    Bool(bool),
    /// A string literal (only the timeframe of `on`).
    Str(String),
    /// A bare name: a candle field or an argument-less SMC predicate.
    Name(String),
    /// `-x`.
    Neg(Box<Expr>),
    /// `not x`.
    Not(Box<Expr>),
    /// `a op b`.
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// `name(args)`.
    Call(String, Vec<Arg>),
    /// `x[k]`: the value `k` closed candles ago.
    Index(Box<Expr>, Box<Expr>),
}

/// A call argument, positional or `name = value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    /// The name of a named argument.
    pub name: Option<String>,
    /// Its value.
    pub value: Expr,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `and`
    And,
    /// `or`
    Or,
}

impl BinOp {
    /// How it is written.
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::And => "and",
            BinOp::Or => "or",
        }
    }
}

/// Why an expression does not parse, with the 1-based column.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// 1-based column.
    pub col: usize,
    /// What was expected or wrong.
    pub message: String,
}

type In<'a> = LocatingSlice<&'a str>;

/// Parses one expression (the whole input).
pub fn parse(src: &str) -> Result<Expr, SyntaxError> {
    if src.len() > MAX_LEN {
        return Err(SyntaxError {
            col: 1,
            message: format!("expression longer than {MAX_LEN} bytes"),
        });
    }
    check_depth(src)?;
    let col_of = |byte: usize| src.get(..byte).map_or(1, |s| s.chars().count() + 1);
    delimited(ws, expr, ws)
        .parse(LocatingSlice::new(src))
        .map_err(|e| {
            let at = e.offset();
            let ctx = e.inner().to_string();
            let found = src.get(at..).and_then(|s| s.chars().next());
            let message = match (found, ctx.is_empty()) {
                (Some(ch), true) => format!("unexpected '{ch}'"),
                (None, true) => "unexpected end of expression".into(),
                (Some(ch), false) => format!("unexpected '{ch}': {ctx}"),
                (None, false) => format!("unexpected end of expression: {ctx}"),
            };
            SyntaxError {
                col: col_of(at),
                message,
            }
        })
        .map(|mut e| {
            fix_cols(&mut e, src);
            e
        })
}

/// Bounds the parser's recursion before it starts: every level of nesting opens a bracket.
fn check_depth(src: &str) -> Result<(), SyntaxError> {
    let mut depth = 0usize;
    for (col, ch) in src.chars().enumerate() {
        match ch {
            '(' | '[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(SyntaxError {
                        col: col + 1,
                        message: format!("nested deeper than {MAX_DEPTH} levels"),
                    });
                }
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The parser records byte offsets; columns are characters (non-ASCII only in strings).
fn fix_cols(e: &mut Expr, src: &str) {
    e.col = src.get(..e.col).map_or(1, |s| s.chars().count() + 1);
    match &mut e.kind {
        Kind::Neg(x) | Kind::Not(x) => fix_cols(x, src),
        Kind::Bin(_, a, b) | Kind::Index(a, b) => {
            fix_cols(a, src);
            fix_cols(b, src);
        }
        Kind::Call(_, args) => args.iter_mut().for_each(|a| fix_cols(&mut a.value, src)),
        Kind::Num(_) | Kind::Bool(_) | Kind::Str(_) | Kind::Name(_) => {}
    }
}

fn ws(i: &mut In<'_>) -> ModalResult<()> {
    multispace0.void().parse_next(i)
}

fn expected(what: &'static str) -> StrContext {
    StrContext::Expected(StrContextValue::Description(what))
}

fn ident<'a>(i: &mut In<'a>) -> ModalResult<&'a str> {
    (
        one_of(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(0.., |c: char| c.is_ascii_alphanumeric() || c == '_'),
    )
        .take()
        .parse_next(i)
}

/// A keyword: the word itself, not the start of a longer name.
fn keyword<'a>(word: &'static str) -> impl Parser<In<'a>, (), ErrMode<ContextError>> {
    ident.verify(move |w: &str| w == word).void()
}

fn expr(i: &mut In<'_>) -> ModalResult<Expr> {
    let first = and_expr(i)?;
    let rest: Vec<Expr> =
        repeat(0.., preceded((ws, keyword("or"), ws), cut_err(and_expr))).parse_next(i)?;
    Ok(fold(first, rest.into_iter().map(|e| (BinOp::Or, e))))
}

fn and_expr(i: &mut In<'_>) -> ModalResult<Expr> {
    let first = not_expr(i)?;
    let rest: Vec<Expr> =
        repeat(0.., preceded((ws, keyword("and"), ws), cut_err(not_expr))).parse_next(i)?;
    Ok(fold(first, rest.into_iter().map(|e| (BinOp::And, e))))
}

/// `not` binds looser than comparisons: `not a < b` is `not (a < b)`. Repeated `not`s are
/// read in a loop, not by recursion.
fn not_expr(i: &mut In<'_>) -> ModalResult<Expr> {
    let nots: Vec<usize> = repeat(
        0..,
        terminated(
            (|i: &mut In<'_>| Ok(i.current_token_start()), keyword("not")).map(|(p, _)| p),
            ws,
        ),
    )
    .parse_next(i)?;
    let mut e = cut_err(cmp_expr).parse_next(i)?;
    for col in nots.into_iter().rev() {
        e = Expr {
            kind: Kind::Not(Box::new(e)),
            col,
        };
    }
    Ok(e)
}

fn cmp_op(i: &mut In<'_>) -> ModalResult<BinOp> {
    alt((
        "<=".value(BinOp::Le),
        ">=".value(BinOp::Ge),
        "==".value(BinOp::Eq),
        "!=".value(BinOp::Ne),
        "<".value(BinOp::Lt),
        ">".value(BinOp::Gt),
    ))
    .parse_next(i)
}

fn cmp_expr(i: &mut In<'_>) -> ModalResult<Expr> {
    let first = add_expr(i)?;
    let rest: Vec<(BinOp, Expr)> =
        repeat(0.., (preceded(ws, cmp_op), preceded(ws, cut_err(add_expr)))).parse_next(i)?;
    Ok(fold(first, rest))
}

fn add_expr(i: &mut In<'_>) -> ModalResult<Expr> {
    let first = mul_expr(i)?;
    let op = alt(('+'.value(BinOp::Add), '-'.value(BinOp::Sub)));
    let rest: Vec<(BinOp, Expr)> =
        repeat(0.., (preceded(ws, op), preceded(ws, cut_err(mul_expr)))).parse_next(i)?;
    Ok(fold(first, rest))
}

fn mul_expr(i: &mut In<'_>) -> ModalResult<Expr> {
    let first = unary(i)?;
    let op = alt(('*'.value(BinOp::Mul), '/'.value(BinOp::Div)));
    let rest: Vec<(BinOp, Expr)> =
        repeat(0.., (preceded(ws, op), preceded(ws, cut_err(unary)))).parse_next(i)?;
    Ok(fold(first, rest))
}

/// Unary minus, read in a loop (no recursion per `-`).
fn unary(i: &mut In<'_>) -> ModalResult<Expr> {
    let negs: Vec<usize> = repeat(
        0..,
        terminated(
            (|i: &mut In<'_>| Ok(i.current_token_start()), '-').map(|(p, _)| p),
            ws,
        ),
    )
    .parse_next(i)?;
    let mut e = postfix(i)?;
    for col in negs.into_iter().rev() {
        e = Expr {
            kind: Kind::Neg(Box::new(e)),
            col,
        };
    }
    Ok(e)
}

fn postfix(i: &mut In<'_>) -> ModalResult<Expr> {
    let mut e = atom(i)?;
    let idx: Vec<Expr> = repeat(
        0..,
        preceded(
            (ws, '['),
            cut_err(terminated(
                delimited(ws, expr, ws),
                ']'.context(expected("']'")),
            )),
        ),
    )
    .parse_next(i)?;
    for k in idx {
        let col = e.col;
        e = Expr {
            kind: Kind::Index(Box::new(e), Box::new(k)),
            col,
        };
    }
    Ok(e)
}

fn atom(i: &mut In<'_>) -> ModalResult<Expr> {
    let col = i.current_token_start();
    let kind = alt((
        number.map(Kind::Num),
        string.map(Kind::Str),
        delimited(
            ('(', ws),
            cut_err(expr),
            cut_err((ws, ')')).context(expected("')'")),
        )
        .map(|e| e.kind),
        call_or_name,
    ))
    .context(expected("a number, a name, a call or '('"))
    .parse_next(i)?;
    Ok(Expr { kind, col })
}

fn number(i: &mut In<'_>) -> ModalResult<f64> {
    (digit1, opt(('.', digit0)))
        .take()
        .try_map(str::parse::<f64>)
        .parse_next(i)
}

fn string(i: &mut In<'_>) -> ModalResult<String> {
    let quoted = |q: char| {
        delimited(
            q,
            take_while(0.., move |c: char| c != q),
            cut_err(q).context(expected("a closing quote")),
        )
    };
    alt((quoted('"'), quoted('\'')))
        .map(str::to_string)
        .parse_next(i)
}

fn call_or_name(i: &mut In<'_>) -> ModalResult<Kind> {
    let name = ident(i)?;
    match name {
        "true" => return Ok(Kind::Bool(true)),
        "false" => return Ok(Kind::Bool(false)),
        "and" | "or" | "not" => {
            return Err(ErrMode::Backtrack(ContextError::new()));
        }
        _ => {}
    }
    let args: Option<Vec<Arg>> = opt(preceded(
        (ws, '(', ws),
        cut_err(terminated(
            separated(0.., delimited(ws, arg, ws), ','),
            ')'.context(expected("',' or ')'")),
        )),
    ))
    .parse_next(i)?;
    Ok(match args {
        Some(args) => Kind::Call(name.to_string(), args),
        None => Kind::Name(name.to_string()),
    })
}

fn arg(i: &mut In<'_>) -> ModalResult<Arg> {
    // `name = value`, but not `name == value` (a comparison).
    let name = opt(terminated(ident, (ws, '=', not('='), ws))).parse_next(i)?;
    let value = expr(i)?;
    Ok(Arg {
        name: name.map(str::to_string),
        value,
    })
}

fn fold(first: Expr, rest: impl IntoIterator<Item = (BinOp, Expr)>) -> Expr {
    rest.into_iter().fold(first, |a, (op, b)| {
        let col = a.col;
        Expr {
            kind: Kind::Bin(op, Box::new(a), Box::new(b)),
            col,
        }
    })
}

impl std::fmt::Display for Expr {
    /// Prints the expression back in the language (nested operators in parentheses).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sub = |f: &mut std::fmt::Formatter<'_>, e: &Expr| match e.kind {
            Kind::Bin(..) => write!(f, "({e})"),
            _ => write!(f, "{e}"),
        };
        match &self.kind {
            Kind::Num(v) => write!(f, "{v}"),
            Kind::Bool(b) => write!(f, "{b}"),
            Kind::Str(s) => write!(f, "\"{s}\""),
            Kind::Name(n) => f.write_str(n),
            Kind::Neg(x) => {
                f.write_str("-")?;
                sub(f, x)
            }
            Kind::Not(x) => {
                f.write_str("not ")?;
                sub(f, x)
            }
            Kind::Bin(op, a, b) => {
                sub(f, a)?;
                write!(f, " {} ", op.as_str())?;
                sub(f, b)
            }
            Kind::Call(name, args) => {
                write!(f, "{name}(")?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if let Some(n) = &a.name {
                        write!(f, "{n} = ")?;
                    }
                    write!(f, "{}", a.value)?;
                }
                f.write_str(")")
            }
            Kind::Index(x, k) => {
                sub(f, x)?;
                write!(f, "[{k}]")
            }
        }
    }
}
