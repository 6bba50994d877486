//! EQL functions: name/arity checking at compile time and evaluation on scalars.
//! Every function returns null when an input is null.

use crate::casefold::fold;
use crate::value::Val;
use crate::wildcard::Wildcard;
use std::borrow::Cow;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
    Between,
    CidrMatch,
    Concat,
    EndsWith,
    IndexOf,
    Length,
    Number,
    StartsWith,
    String,
    StringContains,
    Substring,
    Wildcard,
}

impl Func {
    /// Looks a function up by name (case-insensitively, as Elasticsearch does)
    /// and checks arity and the `~` form. Returns an error message on misuse.
    pub fn resolve(name: &str, ci: bool, argc: usize) -> Result<Func, String> {
        use Func::*;
        let (f, min, max, ci_ok) = match name.to_ascii_lowercase().as_str() {
            "add" => (Add, 2, 2, false),
            "subtract" => (Subtract, 2, 2, false),
            "multiply" => (Multiply, 2, 2, false),
            "divide" => (Divide, 2, 2, false),
            "modulo" => (Modulo, 2, 2, false),
            "between" => (Between, 3, 4, true),
            "cidrmatch" => (CidrMatch, 2, usize::MAX, false),
            "concat" => (Concat, 1, usize::MAX, false),
            "endswith" => (EndsWith, 2, 2, true),
            "indexof" => (IndexOf, 2, 3, true),
            "length" => (Length, 1, 1, false),
            "number" => (Number, 1, 2, false),
            "startswith" => (StartsWith, 2, 2, true),
            "string" => (String, 1, 1, false),
            "stringcontains" => (StringContains, 2, 2, true),
            "substring" => (Substring, 2, 3, false),
            "wildcard" => (Wildcard, 2, usize::MAX, true),
            _ => return Err(format!("unknown function '{name}'")),
        };
        if ci && !ci_ok {
            return Err(format!(
                "function '{name}' has no case-insensitive '~' form"
            ));
        }
        if argc < min || argc > max {
            let want = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(format!(
                "function '{name}' takes {want} arguments, found {argc}"
            ));
        }
        Ok(f)
    }
}

/// Pre-compiled constant arguments for functions whose patterns must be literal.
#[derive(Debug, Clone)]
pub enum Prepared {
    None,
    Wildcards(Vec<Wildcard>),
    Cidrs(Vec<Cidr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("invalid CIDR block {s:?}"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("invalid CIDR prefix in {s:?}"))?,
            None => max,
        };
        Ok(Cidr { net, prefix })
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        let mask = |bits: u32, p: u8| -> u128 {
            if p == 0 {
                0
            } else {
                (!0u128) << (bits - u32::from(p))
            }
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = mask(32, self.prefix) as u32;
                u32::from(n) & m == u32::from(*a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = mask(128, self.prefix);
                u128::from(n) & m == u128::from(*a) & m
            }
            (IpAddr::V4(n), IpAddr::V6(a)) => a.to_ipv4_mapped().is_some_and(|a4| {
                Cidr {
                    net: IpAddr::V4(n),
                    prefix: self.prefix,
                }
                .contains(&IpAddr::V4(a4))
            }),
            _ => false,
        }
    }
}

fn text<'v>(v: &'v Val, ci: bool) -> Option<Cow<'v, str>> {
    let s = v.keyword()?;
    Some(if ci {
        match s {
            Cow::Borrowed(b) => fold(b),
            Cow::Owned(o) => Cow::Owned(fold(&o).into_owned()),
        }
    } else {
        s
    })
}

fn int(v: &Val) -> Option<i64> {
    match v {
        Val::Int(i) => Some(*i),
        Val::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
        _ => None,
    }
}

/// Character index → byte index, clamping Python-style negative indexes.
fn char_slice(s: &str, start: i64, end: Option<i64>) -> String {
    let n = s.chars().count() as i64;
    let norm = |i: i64| if i < 0 { (n + i).max(0) } else { i.min(n) };
    let (a, b) = (norm(start), norm(end.unwrap_or(n)));
    if a >= b {
        return String::new();
    }
    s.chars().skip(a as usize).take((b - a) as usize).collect()
}

/// Arithmetic with EQL's integer/float rules; overflow and division by zero give null.
pub fn arith(op: Func, a: &Val, b: &Val) -> Val<'static> {
    if let (Val::Int(x), Val::Int(y)) = (a, b) {
        let r = match op {
            Func::Add => x.checked_add(*y),
            Func::Subtract => x.checked_sub(*y),
            Func::Multiply => x.checked_mul(*y),
            Func::Divide => x.checked_div(*y),
            Func::Modulo => x.checked_rem(*y),
            _ => None,
        };
        return r.map_or(Val::Null, Val::Int);
    }
    let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
        return Val::Null;
    };
    let r = match op {
        Func::Add => x + y,
        Func::Subtract => x - y,
        Func::Multiply => x * y,
        Func::Divide if y != 0.0 => x / y,
        Func::Modulo if y != 0.0 => x % y,
        _ => return Val::Null,
    };
    if r.is_finite() {
        Val::Float(r)
    } else {
        Val::Null
    }
}

/// Evaluates `f` on one combination of argument values.
pub fn call<'a>(f: Func, ci: bool, prepared: &Prepared, args: &[Val<'a>]) -> Val<'a> {
    if args.iter().any(Val::is_null) {
        return Val::Null;
    }
    match f {
        Func::Add | Func::Subtract | Func::Multiply | Func::Divide | Func::Modulo => {
            arith(f, &args[0], &args[1])
        }
        Func::Length => {
            text(&args[0], false).map_or(Val::Null, |s| Val::Int(s.chars().count() as i64))
        }
        Func::StartsWith | Func::EndsWith | Func::StringContains => {
            let (Some(s), Some(p)) = (text(&args[0], ci), text(&args[1], ci)) else {
                return Val::Null;
            };
            Val::Bool(match f {
                Func::StartsWith => s.starts_with(p.as_ref()),
                Func::EndsWith => s.ends_with(p.as_ref()),
                _ => s.contains(p.as_ref()),
            })
        }
        Func::IndexOf => {
            let (Some(s), Some(p)) = (text(&args[0], ci), text(&args[1], ci)) else {
                return Val::Null;
            };
            let start = args.get(2).and_then(int).unwrap_or(0).max(0) as usize;
            let Some((byte_start, _)) =
                s.char_indices()
                    .nth(start)
                    .or(if start == s.chars().count() {
                        Some((s.len(), ' '))
                    } else {
                        None
                    })
            else {
                return Val::Null;
            };
            match s[byte_start..].find(p.as_ref()) {
                Some(b) => Val::Int((start + s[byte_start..byte_start + b].chars().count()) as i64),
                None => Val::Null,
            }
        }
        Func::Between => {
            let (Some(src), Some(l), Some(r)) = (
                text(&args[0], false),
                text(&args[1], ci),
                text(&args[2], ci),
            ) else {
                return Val::Null;
            };
            let greedy = matches!(args.get(3), Some(Val::Bool(true)));
            // Search a folded copy but cut the original, so the case is kept.
            let hay = if ci {
                fold(&src).into_owned()
            } else {
                src.to_string()
            };
            if hay.len() != src.len() {
                return Val::Null; // folding changed lengths; offsets would not map back
            }
            let Some(a) = hay.find(l.as_ref()).map(|i| i + l.len()) else {
                return Val::Str(Cow::Owned(String::new()));
            };
            let b = if greedy {
                hay[a..].rfind(r.as_ref())
            } else {
                hay[a..].find(r.as_ref())
            };
            Val::Str(Cow::Owned(
                b.map_or(String::new(), |b| src[a..a + b].to_string()),
            ))
        }
        Func::Concat => {
            let mut out = String::new();
            for a in args {
                match a.keyword() {
                    Some(s) => out.push_str(&s),
                    None => return Val::Null,
                }
            }
            Val::Str(Cow::Owned(out))
        }
        Func::Number => {
            let Some(s) = text(&args[0], false) else {
                return Val::Null;
            };
            let s = s.trim();
            let base = args.get(1).and_then(int).unwrap_or(10);
            if base == 10 {
                match s.parse::<i64>() {
                    Ok(i) => Val::Int(i),
                    Err(_) => s
                        .parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .map_or(Val::Null, Val::Float),
                }
            } else if (2..=36).contains(&base) {
                let digits = if base == 16 {
                    s.trim_start_matches("0x").trim_start_matches("0X")
                } else {
                    s
                };
                i64::from_str_radix(digits, base as u32).map_or(Val::Null, Val::Int)
            } else {
                Val::Null
            }
        }
        Func::String => args[0]
            .keyword()
            .map_or(Val::Null, |s| Val::Str(Cow::Owned(s.into_owned()))),
        Func::Substring => {
            let Some(s) = text(&args[0], false) else {
                return Val::Null;
            };
            let Some(start) = int(&args[1]) else {
                return Val::Null;
            };
            let end = match args.get(2) {
                Some(v) => match int(v) {
                    Some(e) => Some(e),
                    None => return Val::Null,
                },
                None => None,
            };
            Val::Str(Cow::Owned(char_slice(&s, start, end)))
        }
        Func::Wildcard => {
            let Prepared::Wildcards(ws) = prepared else {
                return Val::Null;
            };
            let Some(s) = args[0].keyword() else {
                return Val::Null;
            };
            Val::Bool(ws.iter().any(|w| w.matches(&s)))
        }
        Func::CidrMatch => {
            let Prepared::Cidrs(cs) = prepared else {
                return Val::Null;
            };
            let Some(s) = args[0].keyword() else {
                return Val::Null;
            };
            match s.trim().parse::<IpAddr>() {
                Ok(ip) => Val::Bool(cs.iter().any(|c| c.contains(&ip))),
                Err(_) => Val::Null,
            }
        }
    }
}
