//! OData `$filter` and `$search` for users: a small parser and an evaluator that uses the
//! tenant's indexes where it can (eq on id/UPN/mail, startswith on UPN/mail/displayName).
//!
//! Bounded against hostile input: the parser recurses only into `( ... )` and `not`, and
//! refuses nesting deeper than [`MAX_DEPTH`] (`FilterError::TooDeep`) before its stack could
//! overflow; `and`/`or` chains are parsed in a loop into one n-ary node, so a long chain adds
//! no depth to the parser, the evaluator or the tree's drop. `$search` is parsed in a loop.

use std::collections::HashSet;

use super::tenant::{str_value, Prop, Tenant, User};

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Cmp {
        prop: Prop,
        negate: bool,
        value: Lit,
    },
    StartsWith(Prop, String),
    EndsWith(Prop, String),
    In(Prop, Vec<Lit>),
    /// `proxyAddresses/any(x:x eq 'v')` (starts = false) or `any(x:startswith(x,'v'))`.
    AnyProxy {
        starts: bool,
        value: String,
    },
    Not(Box<Filter>),
    /// Two or more clauses, all true (a chain `a and b and c` is one node).
    And(Vec<Filter>),
    /// Two or more clauses, any true (a chain `a or b or c` is one node).
    Or(Vec<Filter>),
}

/// How deeply `( ... )` and `not` may nest. Microsoft's directory allows far less without the
/// advanced-query mode (`search filter expression has excessive height: 4. Max allowed: 3`,
/// seen in microsoft-graph-docs #3641); this bound only keeps a hostile `$filter` from
/// exhausting the stack, so every filter a real tenant accepts is accepted here too.
pub const MAX_DEPTH: usize = 100;

#[derive(Debug)]
pub enum FilterError {
    Syntax(String),
    UnknownProperty(String),
    Unsupported(String),
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl Filter {
    /// The most clauses joined by `or` in one place (an `in (...)` list counts its values):
    /// what Graph's directory limits to 15 outside the advanced-query mode.
    pub fn widest_or(&self) -> usize {
        match self {
            Filter::In(_, v) => v.len(),
            Filter::Or(v) => v
                .iter()
                .map(Filter::widest_or)
                .max()
                .unwrap_or(0)
                .max(v.len()),
            Filter::And(v) => v.iter().map(Filter::widest_or).max().unwrap_or(0),
            Filter::Not(f) => f.widest_or(),
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    LParen,
    RParen,
    Comma,
    Colon,
    Slash,
}

fn lex(s: &str) -> Result<Vec<Tok>, FilterError> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            ':' => {
                out.push(Tok::Colon);
                i += 1
            }
            '/' => {
                out.push(Tok::Slash);
                i += 1
            }
            '\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(FilterError::Syntax(format!(
                                "Unterminated string literal at position {i} in '{s}'."
                            )))
                        }
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            v.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            c if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '$' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.' | '$'))
                {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => {
                return Err(FilterError::Syntax(format!(
                    "Syntax error: character '{other}' is not valid at position {i} in '{s}'."
                )))
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    src: String,
    /// Open `(` and `not` around the current position: the parser's recursion depth.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn syntax(&self) -> FilterError {
        FilterError::Syntax(format!(
            "Syntax error at position {} in '{}'.",
            self.pos, self.src
        ))
    }
    fn expect(&mut self, t: Tok) -> Result<(), FilterError> {
        if self.next() == Some(t) {
            Ok(())
        } else {
            Err(self.syntax())
        }
    }
    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(kw))
    }

    /// Enters one level of `(` or `not`; refused past [`MAX_DEPTH`].
    fn deeper(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::TooDeep);
        }
        Ok(())
    }
    fn or(&mut self) -> Result<Filter, FilterError> {
        let first = self.and()?;
        if !self.keyword("or") {
            return Ok(first);
        }
        let mut all = vec![first];
        while self.keyword("or") {
            self.pos += 1;
            all.push(self.and()?);
        }
        Ok(Filter::Or(all))
    }
    fn and(&mut self) -> Result<Filter, FilterError> {
        let first = self.unary()?;
        if !self.keyword("and") {
            return Ok(first);
        }
        let mut all = vec![first];
        while self.keyword("and") {
            self.pos += 1;
            all.push(self.unary()?);
        }
        Ok(Filter::And(all))
    }
    fn unary(&mut self) -> Result<Filter, FilterError> {
        if self.keyword("not") {
            self.pos += 1;
            self.deeper()?;
            let f = self.unary()?;
            self.depth -= 1;
            return Ok(Filter::Not(Box::new(f)));
        }
        self.primary()
    }
    fn literal(&mut self) -> Result<Lit, FilterError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("true") => Ok(Lit::Bool(true)),
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("false") => Ok(Lit::Bool(false)),
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("null") => Ok(Lit::Null),
            _ => Err(self.syntax()),
        }
    }
    fn string(&mut self) -> Result<String, FilterError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            _ => Err(self.syntax()),
        }
    }
    fn primary(&mut self) -> Result<Filter, FilterError> {
        match self.next() {
            Some(Tok::LParen) => {
                self.deeper()?;
                let f = self.or()?;
                self.expect(Tok::RParen)?;
                self.depth -= 1;
                Ok(f)
            }
            Some(Tok::Ident(name)) => {
                let lname = name.to_ascii_lowercase();
                if (lname == "startswith" || lname == "endswith")
                    && self.peek() == Some(&Tok::LParen)
                {
                    self.pos += 1;
                    let prop = match self.next() {
                        Some(Tok::Ident(p)) => filterable(&p)?,
                        _ => return Err(self.syntax()),
                    };
                    self.expect(Tok::Comma)?;
                    let v = self.string()?;
                    self.expect(Tok::RParen)?;
                    return Ok(if lname == "startswith" {
                        Filter::StartsWith(prop, v)
                    } else {
                        Filter::EndsWith(prop, v)
                    });
                }
                if self.peek() == Some(&Tok::Slash) {
                    return self.lambda(&name);
                }
                let prop = filterable(&name)?;
                match self.next() {
                    Some(Tok::Ident(op))
                        if op.eq_ignore_ascii_case("eq") || op.eq_ignore_ascii_case("ne") =>
                    {
                        let value = self.literal()?;
                        Ok(Filter::Cmp {
                            prop,
                            negate: op.eq_ignore_ascii_case("ne"),
                            value,
                        })
                    }
                    Some(Tok::Ident(op)) if op.eq_ignore_ascii_case("in") => {
                        self.expect(Tok::LParen)?;
                        let mut vals = vec![self.literal()?];
                        while self.peek() == Some(&Tok::Comma) {
                            self.pos += 1;
                            vals.push(self.literal()?);
                        }
                        self.expect(Tok::RParen)?;
                        Ok(Filter::In(prop, vals))
                    }
                    Some(Tok::Ident(op))
                        if ["ge", "le", "gt", "lt", "has"]
                            .iter()
                            .any(|o| o.eq_ignore_ascii_case(&op)) =>
                    {
                        Err(FilterError::Unsupported(prop.name().to_owned()))
                    }
                    _ => Err(self.syntax()),
                }
            }
            _ => Err(self.syntax()),
        }
    }
    /// `proxyAddresses/any(x:x eq 'v')` and `proxyAddresses/any(x:startswith(x,'v'))`.
    fn lambda(&mut self, collection: &str) -> Result<Filter, FilterError> {
        self.expect(Tok::Slash)?;
        match Prop::parse(collection) {
            Some(Prop::ProxyAddresses) => {}
            Some(p) => return Err(FilterError::Unsupported(p.name().to_owned())),
            None => return Err(FilterError::UnknownProperty(collection.to_owned())),
        }
        match self.next() {
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("any") => {}
            _ => return Err(self.syntax()),
        }
        self.expect(Tok::LParen)?;
        let var = match self.next() {
            Some(Tok::Ident(v)) => v,
            _ => return Err(self.syntax()),
        };
        self.expect(Tok::Colon)?;
        let f = match self.next() {
            Some(Tok::Ident(w)) if w == var => {
                match self.next() {
                    Some(Tok::Ident(op)) if op.eq_ignore_ascii_case("eq") => {}
                    _ => return Err(self.syntax()),
                }
                Filter::AnyProxy {
                    starts: false,
                    value: self.string()?,
                }
            }
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("startswith") => {
                self.expect(Tok::LParen)?;
                match self.next() {
                    Some(Tok::Ident(v)) if v == var => {}
                    _ => return Err(self.syntax()),
                }
                self.expect(Tok::Comma)?;
                let value = self.string()?;
                self.expect(Tok::RParen)?;
                Filter::AnyProxy {
                    starts: true,
                    value,
                }
            }
            _ => return Err(self.syntax()),
        };
        self.expect(Tok::RParen)?;
        Ok(f)
    }
}

fn filterable(name: &str) -> Result<Prop, FilterError> {
    match Prop::parse(name) {
        None => Err(FilterError::UnknownProperty(name.to_owned())),
        Some(
            p @ (Prop::BusinessPhones
            | Prop::ProxyAddresses
            | Prop::CreatedDateTime
            | Prop::PasswordPolicies
            | Prop::DeletedDateTime
            | Prop::ExternalUserStateChangeDateTime
            | Prop::OnPremisesLastSyncDateTime
            | Prop::SignInSessionsValidFromDateTime
            | Prop::AssignedLicenses
            | Prop::LicenseAssignmentStates
            | Prop::Unmodeled(..)),
        ) => Err(FilterError::Unsupported(p.name().to_owned())),
        Some(p) => Ok(p),
    }
}

pub fn parse(s: &str) -> Result<Filter, FilterError> {
    let toks = lex(s)?;
    let mut p = Parser {
        toks,
        pos: 0,
        src: s.to_owned(),
        depth: 0,
    };
    let f = p.or()?;
    if p.pos != p.toks.len() {
        return Err(p.syntax());
    }
    Ok(f)
}

enum Val<'a> {
    Str(Option<&'a str>),
    Bool(bool),
}

fn value(u: &User, p: Prop) -> Val<'_> {
    if let Some(v) = str_value(u, p) {
        return Val::Str(v);
    }
    match p {
        Prop::AccountEnabled => Val::Bool(u.account_enabled),
        Prop::OnPremisesSyncEnabled => match u.ext.get().on_premises_sync_enabled {
            Some(b) => Val::Bool(b),
            None => Val::Str(None),
        },
        _ => Val::Str(None),
    }
}

fn lit_eq(v: &Val<'_>, lit: &Lit) -> bool {
    match (v, lit) {
        (Val::Str(Some(s)), Lit::Str(l)) => s.to_lowercase() == l.to_lowercase(),
        (Val::Str(None), Lit::Null) => true,
        (Val::Bool(b), Lit::Bool(l)) => b == l,
        _ => false,
    }
}

pub fn matches(u: &User, f: &Filter) -> bool {
    match f {
        Filter::Cmp {
            prop,
            negate,
            value: lit,
        } => lit_eq(&value(u, *prop), lit) != *negate,
        Filter::StartsWith(p, v) => {
            matches!(value(u, *p), Val::Str(Some(s)) if s.to_lowercase().starts_with(&v.to_lowercase()))
        }
        Filter::EndsWith(p, v) => {
            matches!(value(u, *p), Val::Str(Some(s)) if s.to_lowercase().ends_with(&v.to_lowercase()))
        }
        Filter::In(p, lits) => {
            let v = value(u, *p);
            lits.iter().any(|l| lit_eq(&v, l))
        }
        Filter::AnyProxy { starts, value } => {
            let v = value.to_lowercase();
            u.proxy_addresses.iter().any(|a| {
                let a = a.to_lowercase();
                if *starts {
                    a.starts_with(&v)
                } else {
                    a == v
                }
            })
        }
        Filter::Not(f) => !matches(u, f),
        Filter::And(all) => all.iter().all(|f| matches(u, f)),
        Filter::Or(all) => all.iter().any(|f| matches(u, f)),
    }
}

fn prefix_range(
    t: &Tenant,
    sorted: &[u32],
    key: fn(&User) -> Option<&str>,
    prefix: &str,
) -> Vec<u32> {
    let prefix = prefix.to_lowercase();
    let lc = |i: u32| key(&t.users[i as usize]).unwrap_or_default().to_lowercase();
    let start = sorted.partition_point(|&i| lc(i) < prefix);
    sorted[start..]
        .iter()
        .copied()
        .take_while(|&i| lc(i).starts_with(&prefix))
        .collect()
}

fn lookup(t: &Tenant, p: Prop, lit: &Lit) -> Option<Option<u32>> {
    let Lit::Str(v) = lit else { return None };
    let v = v.to_lowercase();
    match p {
        Prop::UserPrincipalName => Some(t.by_upn.get(&v).copied()),
        Prop::Id => Some(t.by_id.get(&v).copied()),
        Prop::Mail => Some(t.by_mail.get(&v).copied()),
        _ => None,
    }
}

/// The indexes of the matching users, using an index where one applies.
pub fn evaluate(t: &Tenant, f: &Filter) -> Vec<u32> {
    match f {
        Filter::Cmp {
            prop,
            negate: false,
            value,
        } => {
            if let Some(hit) = lookup(t, *prop, value) {
                return hit.into_iter().collect();
            }
        }
        Filter::In(prop, lits) => {
            let hits: Option<Vec<Option<u32>>> = lits.iter().map(|l| lookup(t, *prop, l)).collect();
            if let Some(hits) = hits {
                let mut seen = HashSet::new();
                return hits
                    .into_iter()
                    .flatten()
                    .filter(|i| seen.insert(*i))
                    .collect();
            }
        }
        Filter::StartsWith(Prop::UserPrincipalName, v) => {
            return prefix_range(t, t.sorted_upn(), |u| Some(&u.user_principal_name), v)
        }
        Filter::StartsWith(Prop::Mail, v) => {
            return prefix_range(t, t.sorted_mail(), |u| u.mail.as_deref(), v)
        }
        Filter::StartsWith(Prop::DisplayName, v) => {
            return prefix_range(t, t.sorted_display(), |u| Some(&u.display_name), v)
        }
        _ => {}
    }
    t.users
        .iter()
        .enumerate()
        .filter(|(_, u)| matches(u, f))
        .map(|(i, _)| i as u32)
        .collect()
}

/// `$search="displayName:ann" OR "mail:ann"`: clauses joined left to right.
pub struct Search {
    clauses: Vec<(bool /* and */, Prop, String)>,
}

pub fn parse_search(s: &str) -> Result<Search, String> {
    let mut clauses = Vec::new();
    let mut rest = s.trim();
    let mut and = true;
    while !rest.is_empty() {
        let body = rest.strip_prefix('"').ok_or_else(|| {
            format!("Invalid $search syntax: '{s}'. Use \"property:value\" clauses.")
        })?;
        let end = body
            .find('"')
            .ok_or_else(|| format!("Invalid $search syntax: unterminated quote in '{s}'."))?;
        let clause = &body[..end];
        let (prop, term) = clause.split_once(':').ok_or_else(|| {
            format!("Invalid $search clause '{clause}': expected \"property:value\".")
        })?;
        let p = Prop::parse(prop.trim())
            .ok_or_else(|| format!("Invalid $search property '{prop}'."))?;
        clauses.push((and, p, term.trim().to_lowercase()));
        rest = body[end + 1..].trim_start();
        if rest.is_empty() {
            break;
        }
        let (kw, after) = rest.split_once(' ').unwrap_or((rest, ""));
        and = match kw.to_ascii_uppercase().as_str() {
            "AND" => true,
            "OR" => false,
            _ => {
                return Err(format!(
                    "Invalid $search syntax: expected AND or OR in '{s}'."
                ))
            }
        };
        rest = after.trim_start();
    }
    Ok(Search { clauses })
}

fn search_clause(u: &User, p: Prop, term: &str) -> bool {
    let Val::Str(Some(v)) = value(u, p) else {
        return false;
    };
    let v = v.to_lowercase();
    if term.chars().any(|c| !c.is_alphanumeric()) {
        return v.contains(term);
    }
    v.split(|c: char| !c.is_alphanumeric())
        .any(|w| w.starts_with(term))
}

pub fn search_matches(u: &User, s: &Search) -> bool {
    let mut acc = true;
    for (i, (and, p, term)) in s.clauses.iter().enumerate() {
        let m = search_clause(u, *p, term);
        acc = if i == 0 {
            m
        } else if *and {
            acc && m
        } else {
            acc || m
        };
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_filters() {
        assert!(matches!(
            parse("userPrincipalName eq 'a@b.com'"),
            Ok(Filter::Cmp { negate: false, .. })
        ));
        assert!(matches!(
            parse("startswith(mail,'ann')"),
            Ok(Filter::StartsWith(Prop::Mail, _))
        ));
        assert!(matches!(
            parse("accountEnabled eq false and startswith(displayName, 'A')"),
            Ok(Filter::And(ref v)) if v.len() == 2
        ));
        assert!(matches!(
            parse("proxyAddresses/any(x:x eq 'smtp:a@b.com')"),
            Ok(Filter::AnyProxy { .. })
        ));
        assert!(matches!(parse("id in ('a','b')"), Ok(Filter::In(..))));
        assert!(matches!(
            parse("foo eq 'x'"),
            Err(FilterError::UnknownProperty(_))
        ));
        assert!(matches!(
            parse("businessPhones eq 'x'"),
            Err(FilterError::Unsupported(_))
        ));
        assert!(matches!(parse("mail eq"), Err(FilterError::Syntax(_))));
        assert!(
            matches!(parse("mail eq 'it''s'"), Ok(Filter::Cmp { value: Lit::Str(ref s), .. }) if s == "it's")
        );
    }

    #[test]
    fn chains_are_flat_and_precedence_holds() {
        let f = parse("mail eq 'a' or mail eq 'b' and mail eq 'c' or mail eq 'd'").unwrap();
        let Filter::Or(v) = &f else { panic!("{f:?}") };
        assert_eq!(v.len(), 3);
        assert!(matches!(&v[1], Filter::And(a) if a.len() == 2));
        assert_eq!(f.widest_or(), 3);
        assert_eq!(parse("id in ('a','b','c','d')").unwrap().widest_or(), 4);
        // A chain of thousands is one node: no depth, no deep recursion anywhere.
        let long = vec!["mail eq 'x'"; 5000].join(" or ");
        assert_eq!(parse(&long).unwrap().widest_or(), 5000);
    }

    #[test]
    fn nesting_is_bounded_not_a_stack_overflow() {
        let ok = format!(
            "{}mail eq 'x'{}",
            "(".repeat(MAX_DEPTH),
            ")".repeat(MAX_DEPTH)
        );
        assert!(parse(&ok).is_ok());
        let deep = format!(
            "{}mail eq 'x'{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(matches!(parse(&deep), Err(FilterError::TooDeep)));
        for n in [5_000, 200_000] {
            let parens = format!("{}mail eq 'x'{}", "(".repeat(n), ")".repeat(n));
            assert!(matches!(parse(&parens), Err(FilterError::TooDeep)));
            let nots = format!("{}mail eq 'x'", "not ".repeat(n));
            assert!(matches!(parse(&nots), Err(FilterError::TooDeep)));
            let mixed = format!("{}mail eq 'x'{}", "not (".repeat(n), ")".repeat(n));
            assert!(matches!(parse(&mixed), Err(FilterError::TooDeep)));
            // Unbalanced: never closed.
            assert!(matches!(parse(&"(".repeat(n)), Err(FilterError::TooDeep)));
        }
        // Depth is released after each group: many groups side by side are fine.
        let wide = vec!["(((mail eq 'x')))"; 500].join(" and ");
        assert!(parse(&wide).is_ok());
    }
}
