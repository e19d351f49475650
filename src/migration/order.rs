//! The orderings tools apply to migration names, and the version keys read from those names.

use std::cmp::Ordering;

/// Compares two runs of ASCII digits by numeric value. Works on the text, so timestamps and other
/// versions longer than any integer type compare correctly; `007` equals `7`.
pub(super) fn cmp_numeric(a: &str, b: &str) -> Ordering {
    cmp_digits(a.as_bytes(), b.as_bytes())
}

/// Natural order: runs of digits compare by numeric value, everything else bytewise, so `2_x.sql`
/// sorts before `10_x.sql`. Names equal under that rule (`01_x`, `1_x`) fall back to bytewise order
/// so the order stays total and stable.
pub(super) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut rest_a, mut rest_b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (rest_a.split_first(), rest_b.split_first()) {
            (Some((x, _)), Some((y, _))) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (digits_a, tail_a) = split_digits(rest_a);
                let (digits_b, tail_b) = split_digits(rest_b);
                match cmp_digits(digits_a, digits_b) {
                    Ordering::Equal => (rest_a, rest_b) = (tail_a, tail_b),
                    unequal => return unequal,
                }
            }
            (Some((x, tail_a)), Some((y, tail_b))) if x == y => (rest_a, rest_b) = (tail_a, tail_b),
            (Some((x, _)), Some((y, _))) => return x.cmp(y),
            _ => return rest_a.len().cmp(&rest_b.len()).then_with(|| a.cmp(b)),
        }
    }
}

/// Flyway's version order: parts separated by `.` or `_` compare as integers one by one, a missing
/// part counts as 0 (so `1.10` > `1.9` > `1` and `1.0` = `1`).
pub(super) fn cmp_flyway_version(a: &str, b: &str) -> Ordering {
    let mut parts_a = a.split(['.', '_']);
    let mut parts_b = b.split(['.', '_']);
    loop {
        match (parts_a.next(), parts_b.next()) {
            (None, None) => return Ordering::Equal,
            (x, y) => match cmp_numeric(x.unwrap_or("0"), y.unwrap_or("0")) {
                Ordering::Equal => {}
                unequal => return unequal,
            },
        }
    }
}

/// The leading run of ASCII digits of `name` (empty when it starts otherwise).
pub(super) fn leading_digits(name: &str) -> &str {
    let end = name
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(name.len());
    &name[..end]
}

/// The version of a file with no naming scheme: the stem's leading number, or the whole stem when it
/// has none.
pub(super) fn stem_version(stem: &str) -> &str {
    match leading_digits(stem) {
        "" => stem,
        digits => digits,
    }
}

/// The part of a name before its first `_` (the whole name without one): the version of
/// `<version>_<name>` folders and files.
pub(super) fn until_underscore(name: &str) -> &str {
    name.split_once('_').map_or(name, |(version, _)| version)
}

fn cmp_digits(a: &[u8], b: &[u8]) -> Ordering {
    let a = trim_zeros(a);
    let b = trim_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let first = digits
        .iter()
        .position(|&b| b != b'0')
        .unwrap_or(digits.len());
    &digits[first..]
}

fn split_digits(text: &[u8]) -> (&[u8], &[u8]) {
    let end = text
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut names: Vec<&str>, cmp: fn(&str, &str) -> Ordering) -> Vec<&str> {
        names.sort_by(|a, b| cmp(a, b));
        names
    }

    #[test]
    fn natural_order_compares_digit_runs_numerically() {
        assert_eq!(
            sorted(
                vec!["10_x.sql", "2_x.sql", "1_y.sql", "1_x.sql"],
                natural_cmp
            ),
            ["1_x.sql", "1_y.sql", "2_x.sql", "10_x.sql"]
        );
        assert_eq!(
            sorted(
                vec!["v2b.sql", "v10a.sql", "v2a.sql", "init.sql"],
                natural_cmp
            ),
            ["init.sql", "v2a.sql", "v2b.sql", "v10a.sql"]
        );
    }

    #[test]
    fn natural_order_is_total_on_leading_zeros_and_prefixes() {
        assert_eq!(natural_cmp("01_x", "1_x"), Ordering::Less);
        assert_eq!(natural_cmp("1_x", "01_x"), Ordering::Greater);
        assert_eq!(natural_cmp("a", "ab"), Ordering::Less);
        assert_eq!(natural_cmp("ab", "ab"), Ordering::Equal);
        assert_eq!(natural_cmp("é2", "é10"), Ordering::Less);
        assert_eq!(natural_cmp("é1", "è1"), "é1".cmp("è1"));
    }

    #[test]
    fn flyway_versions_compare_part_by_part() {
        assert_eq!(
            sorted(
                vec!["2", "1.10", "1.9", "1", "1_9_1", "10"],
                cmp_flyway_version
            ),
            ["1", "1.9", "1_9_1", "1.10", "2", "10"]
        );
        assert_eq!(cmp_flyway_version("1.0", "1"), Ordering::Equal);
        assert_eq!(cmp_flyway_version("1_1", "1.1"), Ordering::Equal);
    }

    #[test]
    fn integer_versions_compare_by_value_not_text() {
        assert_eq!(cmp_numeric("10", "9"), Ordering::Greater);
        assert_eq!(cmp_numeric("0010", "10"), Ordering::Equal);
        assert_eq!(cmp_numeric("0", ""), Ordering::Equal);
        assert_eq!(
            cmp_numeric("99999999999999999999999", "100000000000000000000000"),
            Ordering::Less
        );
    }

    #[test]
    fn versions_are_read_from_names() {
        assert_eq!(leading_digits("0042_add_age"), "0042");
        assert_eq!(leading_digits("add_age"), "");
        assert_eq!(stem_version("0042_add_age"), "0042");
        assert_eq!(stem_version("add_age"), "add_age");
        assert_eq!(
            until_underscore("2019-02-26-002946_create_user"),
            "2019-02-26-002946"
        );
        assert_eq!(until_underscore("20240101"), "20240101");
    }
}
