//! "Did you mean ...?" suggestions for misspelt keys, blocks and words, by
//! optimal-string-alignment edit distance (insertions, deletions,
//! substitutions and swaps of neighbouring characters each cost one).

/// The closest candidate to `word`, if it is close enough to be a plausible
/// typo: at most one edit for words of up to five characters, two up to
/// eight, three beyond. Comparison ignores ASCII case. Ties go to the first
/// candidate. Words longer than [`MAX_WORD`] get no suggestion (they are
/// no typo, and the distance table would grow with them).
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    if word.len() > MAX_WORD {
        return None;
    }
    let word = word.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(&word, &candidate.to_ascii_lowercase());
        if distance == 0 || distance > allowed(candidate.chars().count()) {
            continue;
        }
        if best.map_or(true, |(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c.to_owned())
}

/// Longest word considered for a suggestion.
pub const MAX_WORD: usize = 64;

/// Render a suggestion as the tail of a message: ` (did you mean `x`?)`.
pub fn hint(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

fn allowed(len: usize) -> usize {
    match len {
        0..=5 => 1,
        6..=8 => 2,
        _ => 3,
    }
}

/// Optimal string alignment distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j] = distance between a[..i] and b[..j]
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("hash", "hsah"), 1);
        assert_eq!(edit_distance("hash", "hsha"), 2);
        assert_eq!(edit_distance("port", "prot"), 1);
        assert_eq!(edit_distance("multicat", "multicast"), 1);
    }

    #[test]
    fn suggestions() {
        let keys = [
            "key_file",
            "hash",
            "auth",
            "family",
            "address",
            "port",
            "interface",
        ];
        assert_eq!(did_you_mean("adress", keys).as_deref(), Some("address"));
        assert_eq!(did_you_mean("keyfile", keys).as_deref(), Some("key_file"));
        assert_eq!(did_you_mean("Prot", keys).as_deref(), Some("port"));
        assert_eq!(did_you_mean("interfaces", keys).as_deref(), Some("interface"));
        assert_eq!(did_you_mean("colour", keys), None);
        // An exact (case-insensitive) match is not a typo.
        assert_eq!(did_you_mean("PORT", keys), None);
        assert_eq!(did_you_mean(&"p".repeat(1_000_000), keys), None);
        assert_eq!(hint(&Some("x".into())), " (did you mean `x`?)");
        assert_eq!(hint(&None), "");
    }
}
