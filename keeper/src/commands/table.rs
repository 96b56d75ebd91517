//! Text tables as pg_autoctl 2.0 prints them: columns joined by ` | `, a header, a dashed
//! rule, the rows, then an empty line. Most columns are right-aligned to the widest cell (or a
//! minimum width); some last columns are left-aligned, padded or not.

/// How a column is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Right-aligned, padded to the column width.
    Right,
    /// Left-aligned, padded to the column width.
    Left,
    /// Left-aligned and never padded (a free-text last column); the rule under the header
    /// has this fixed width.
    Free(usize),
}

/// One column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Header text.
    pub header: &'static str,
    /// Minimum width.
    pub min_width: usize,
    /// Layout.
    pub align: Align,
}

/// A right-aligned column at least as wide as its header.
pub const fn right(header: &'static str, min_width: usize) -> Column {
    Column {
        header,
        min_width,
        align: Align::Right,
    }
}

/// Formats `rows` in `columns`, followed by an empty line.
pub fn render(columns: &[Column], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|cell| fsm::vocab::printable(cell).into_owned())
                .collect()
        })
        .collect();
    let rows = rows.as_slice();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|cell| cell.chars().count())
                .chain([c.header.chars().count(), c.min_width])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .zip(columns.iter().zip(&widths))
            .map(|(cell, (column, width))| match column.align {
                Align::Right => format!("{cell:>width$}"),
                Align::Left => format!("{cell:<width$}"),
                Align::Free(_) => cell.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let mut out = line(columns.iter().map(|c| c.header).collect());
    out.push('\n');
    let rule: Vec<String> = columns
        .iter()
        .zip(&widths)
        .map(|(c, w)| match c.align {
            Align::Free(rule) => "-".repeat(rule),
            _ => "-".repeat(*w),
        })
        .collect();
    out.push_str(&rule.join("-+-"));
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_a_line_break_cannot_forge_a_row() {
        let text = render(
            &[right("Name", 4), right("Port", 4)],
            &[vec![
                "node_1\n fake | 1 | primary".to_string(),
                "5432".to_string(),
            ]],
        );
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.contains("node_1\\n fake"), "{text}");
        assert!(!text.contains('\u{202e}'));
    }

    #[test]
    fn columns_are_aligned_to_the_widest_cell_or_their_minimum() {
        let text = render(
            &[
                right("Name", 0),
                right("Node", 5),
                Column {
                    header: "Value",
                    min_width: 0,
                    align: Align::Left,
                },
                Column {
                    header: "Comment",
                    min_width: 0,
                    align: Align::Free(10),
                },
            ],
            &[
                vec![
                    "node_1".into(),
                    "1".into(),
                    "true".into(),
                    "a long comment".into(),
                ],
                vec!["n2".into(), "22".into(), "50".into(), "short".into()],
            ],
        );
        assert_eq!(
            text,
            "  Name |  Node | Value | Comment\n\
             -------+-------+-------+-----------\n\
             node_1 |     1 | true  | a long comment\n    \
             n2 |    22 | 50    | short\n\n"
        );
    }
}
