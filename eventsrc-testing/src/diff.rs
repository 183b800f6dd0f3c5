//! Readable mismatch reports: a line diff of two pretty-printed values.

use std::fmt::Write;

/// A unified-style line diff of `expected` and `actual`: lines only in `expected` start with
/// `-`, lines only in `actual` with `+`, common lines with two spaces. Where a run of lines was
/// changed, all its expected lines come first, then all its actual ones.
///
/// The diff is `similar`'s patience diff: it lines up lines that occur once on each side (a
/// field with its value, an event's header) before the ones that repeat in pretty-printed
/// values (`},`, `]`), so a changed field shows as one `-`/`+` pair rather than a shuffle of
/// brackets.
pub(crate) fn lines(expected: &str, actual: &str) -> String {
    let (old, new): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = String::new();
    let mut write = |mark: &str, lines: &[&str]| {
        for line in lines {
            let _ = writeln!(out, "{mark} {line}");
        }
    };
    for op in similar::capture_diff_slices(similar::Algorithm::Patience, &old, &new) {
        let (_, old_range, new_range) = op.as_tag_tuple();
        if op.tag() == similar::DiffTag::Equal {
            write(" ", &old[old_range]);
        } else {
            write("-", &old[old_range]);
            write("+", &new[new_range]);
        }
    }
    out
}

/// Events as a numbered list of `name vN {pretty debug}`, for diffing.
pub(crate) fn events<E: eventsrc_core::Event + std::fmt::Debug>(events: &[E]) -> String {
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
    fn a_changed_run_shows_its_expected_lines_before_its_actual_ones() {
        let diff = super::lines("a\nb\nc\nd\n", "a\nx\ny\nd\n");
        assert_eq!(diff, "  a\n- b\n- c\n+ x\n+ y\n  d\n");
    }

    #[test]
    fn a_changed_field_lines_up_with_its_brackets() {
        let expected = "A {\n    id: 1,\n    tags: [\n        x,\n    ],\n}\nB {\n    id: 2,\n}\n";
        let actual = "A {\n    id: 1,\n    tags: [\n        y,\n    ],\n}\nB {\n    id: 3,\n}\n";
        assert_eq!(
            super::lines(expected, actual),
            "  A {\n      id: 1,\n      tags: [\n-         x,\n+         y,\n      ],\n  }\n  B {\n-     id: 2,\n+     id: 3,\n  }\n"
        );
    }

    #[test]
    fn handles_empty_sides() {
        assert_eq!(super::lines("", "a"), "+ a\n");
        assert_eq!(super::lines("a", ""), "- a\n");
    }
}
