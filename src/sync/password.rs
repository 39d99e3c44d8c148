//! Microsoft's cloud password rules (8-256 characters, 3 of 4 classes, its symbol set, no
//! Unicode) and compliant generated passwords.
use rand::seq::SliceRandom;
use rand::Rng;

/// Why a password is refused, in plain words with the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PasswordError(pub String);

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 256;
/// The symbols Microsoft Entra accepts (plus the blank space).
pub const SYMBOLS: &str = "@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<>";

const RULE: &str = "a Microsoft 365 password must be 8 to 256 characters long and use at least \
                    3 of these 4 kinds: lower-case letters, upper-case letters, digits, symbols \
                    (@ # $ % ^ & * - _ ! + = [ ] { } | \\ : ' , . ? / ` ~ \" ( ) ; < > or a space)";

pub fn check(password: &str) -> Result<(), PasswordError> {
    if let Some(c) = password.chars().find(|c| !c.is_ascii()) {
        return Err(PasswordError(format!(
            "the password contains `{c}`, which is not allowed: only unaccented letters, digits, \
             symbols and spaces; {RULE}"
        )));
    }
    // ASCII from here: bytes are characters.
    let len = password.len();
    if len < MIN_LEN {
        return Err(PasswordError(format!(
            "the password is too short ({len} characters); {RULE}"
        )));
    }
    if len > MAX_LEN {
        return Err(PasswordError(format!(
            "the password is too long ({len} characters); {RULE}"
        )));
    }
    if let Some(c) = password
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == ' ' || SYMBOLS.contains(*c)))
    {
        let shown = if c.is_ascii_control() {
            format!("a control character (code {})", c as u32)
        } else {
            format!("`{c}`")
        };
        return Err(PasswordError(format!(
            "the password contains {shown}, which Microsoft does not allow; {RULE}"
        )));
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| c == ' ' || SYMBOLS.contains(c)),
    ];
    let n = classes.iter().filter(|b| **b).count();
    if n < 3 {
        return Err(PasswordError(format!(
            "the password uses only {n} of the 4 kinds of characters; {RULE}"
        )));
    }
    Ok(())
}

/// A random password that meets the rules (shown once, then forgotten): 16 characters with
/// every class present, no space and no look-alike-prone quoting symbols. It never starts
/// with `=`, `+`, `-` or `@`: in a CSV hand-off such a start would be run as a formula by a
/// spreadsheet, and escaping it (`crate::csvsafe`) would change the password.
pub fn generate() -> String {
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGIT: &[u8] = b"23456789";
    const SYM: &[u8] = b"@#$%^&*-_!+=?";
    let mut rng = rand::rng();
    let mut pick = |set: &[u8]| set[rng.random_range(0..set.len())] as char;
    let mut chars: Vec<char> = vec![pick(LOWER), pick(UPPER), pick(DIGIT), pick(SYM)];
    let all: Vec<u8> = [LOWER, UPPER, DIGIT, SYM].concat();
    while chars.len() < 16 {
        chars.push(pick(&all));
    }
    chars.shuffle(&mut rng);
    if FORMULA_START.contains(&chars[0]) {
        // Swap in a letter or digit from elsewhere (there are at least three): the same
        // characters, so the password still meets every rule.
        let alnum: Vec<usize> = (1..chars.len())
            .filter(|&i| chars[i].is_ascii_alphanumeric())
            .collect();
        let j = alnum[rng.random_range(0..alnum.len())];
        chars.swap(0, j);
    }
    chars.into_iter().collect()
}

/// What a spreadsheet runs as a formula when a cell starts with it (see `crate::csvsafe`).
const FORMULA_START: [char; 4] = ['=', '+', '-', '@'];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_limits_exactly_at_and_past_the_bounds() {
        assert!(check("Abcdef1").is_err(), "7 characters");
        assert!(check("Abcdef12").is_ok(), "8 characters");
        let at = format!("Aa1{}", "x".repeat(253));
        assert_eq!(at.len(), 256);
        assert!(check(&at).is_ok());
        let past = format!("{at}x");
        let e = check(&past).unwrap_err();
        assert!(e.0.contains("too long") && e.0.contains("8 to 256"), "{e}");
        let e = check("Ab1").unwrap_err();
        assert!(
            e.0.contains("too short") && e.0.contains("3 of these 4"),
            "{e}"
        );
    }

    #[test]
    fn three_of_four_classes() {
        assert!(check("abcdefgh").is_err());
        assert!(check("abcdEFGH").is_err());
        assert!(check("abcdEFG1").is_ok());
        assert!(check("abcdefg1!").is_ok());
        assert!(check("ABCDEFG1!").is_ok());
        assert!(check("abcd efg1").is_ok(), "a space counts as a symbol");
        let e = check("12345678").unwrap_err();
        assert!(e.0.contains("only 1 of the 4"), "{e}");
    }

    #[test]
    fn symbols_and_unicode() {
        for s in SYMBOLS.chars() {
            assert!(check(&format!("Abcdefg{s}")).is_ok(), "{s}");
        }
        let e = check("Abcdéfg1").unwrap_err();
        assert!(e.0.contains("`é`"), "{e}");
        assert!(check("Abcdefg1\u{1F600}").is_err());
        assert!(check("Abcdefg1\t").is_err(), "tab is not a space");
        assert!(
            check("Abcdefg1\u{a0}").is_err(),
            "no-break space is Unicode"
        );
    }

    #[test]
    fn generated_passwords_always_comply_and_differ() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..5000 {
            let p = generate();
            assert_eq!(p.len(), 16);
            check(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
            assert!(p.chars().any(|c| c.is_ascii_lowercase()));
            assert!(p.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()));
            assert!(
                !p.starts_with(['=', '+', '-', '@']),
                "{p}: a spreadsheet would run it as a formula"
            );
            assert!(
                matches!(crate::csvsafe::cell(&p), std::borrow::Cow::Borrowed(_)),
                "{p}: the hand-off writes it unchanged"
            );
            seen.insert(p);
        }
        assert_eq!(seen.len(), 5000);
    }

    #[test]
    fn the_formula_symbols_are_still_used_after_the_first_character() {
        let mut later = std::collections::HashSet::new();
        let mut first = std::collections::HashSet::new();
        for _ in 0..5000 {
            let p = generate();
            let mut chars = p.chars();
            first.insert(chars.next().unwrap());
            later.extend(chars.filter(|c| FORMULA_START.contains(c)));
        }
        assert_eq!(
            later.len(),
            4,
            "= + - @ all appear after the start: {later:?}"
        );
        assert!(first.iter().all(|c| !FORMULA_START.contains(c)));
        // Every class still starts some password: lower, upper, digit and other symbols.
        assert!(first.iter().any(|c| c.is_ascii_lowercase()));
        assert!(first.iter().any(|c| c.is_ascii_uppercase()));
        assert!(first.iter().any(|c| c.is_ascii_digit()));
        assert!(first.iter().any(|c| "#$%^&*_!?".contains(*c)));
    }
}
