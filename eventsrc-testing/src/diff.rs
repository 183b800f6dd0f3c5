//! Readable mismatch reports: a line diff of two pretty-printed values.

use std::fmt::Write;

/// A unified-style line diff of `expected` and `actual`: lines only in `expected` start with
/// `-`, lines only in `actual` with `+`, common lines with two spaces.
pub fn lines(expected: &str, actual: &str) -> String {
    let (old, new): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    // Longest common subsequence table, filled from the end so the walk below goes forwards.
    let mut lcs = vec![vec![0usize; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            lcs[i][j] = if old[i] == new[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            let _ = writeln!(out, "  {}", old[i]);
            (i, j) = (i + 1, j + 1);
        } else if j < new.len() && (i == old.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
            let _ = writeln!(out, "+ {}", new[j]);
            j += 1;
        } else {
            let _ = writeln!(out, "- {}", old[i]);
            i += 1;
        }
    }
    out
}

/// Events as a numbered list of `name vN {pretty debug}`, for diffing.
pub fn events<E: eventsrc_core::Event + std::fmt::Debug>(events: &[E]) -> String {
    if events.is_empty() {
        return "(no events)\n".to_owned();
    }
    let mut out = String::new();
    for (i, event) in events.iter().enumerate() {
        let _ = writeln!(
            out,
            "#{} {} v{} {:#?}",
            i + 1,
            event.event_type(),
            event.schema_version(),
            event
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn marks_removed_and_added_lines() {
        let diff = super::lines("a\nb\nc\n", "a\nx\nc\n");
        assert_eq!(diff, "  a\n- b\n+ x\n  c\n");
    }

    #[test]
    fn handles_empty_sides() {
        assert_eq!(super::lines("", "a"), "+ a\n");
        assert_eq!(super::lines("a", ""), "- a\n");
    }
}
