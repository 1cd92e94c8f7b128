//! The join-token file format both daemons read: one token per line, trimmed; blank lines and
//! `#` comments skipped. The master accepts every token in its file, an agent presents the first.

/// The tokens in a token file's text, in order.
pub fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn blank_lines_and_comments_are_skipped() {
        let text = "\n# rotated 2026-12-01\n  new-token  \n\nold-token\n";
        assert_eq!(
            super::tokens(text).collect::<Vec<_>>(),
            ["new-token", "old-token"]
        );
        assert_eq!(super::tokens("# only a comment\n").count(), 0);
    }
}
