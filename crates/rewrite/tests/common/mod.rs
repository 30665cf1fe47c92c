//! Helpers shared by the snapshot tests.

/// Constant literals longer than 8 elements become `[... N values]`.
pub fn abbreviate(text: &str) -> String {
    text.lines()
        .map(
            |l| match (l.trim_start().starts_with("const "), l.find(" = [")) {
                (true, Some(i)) => {
                    let n = l[i..].matches(',').count() + 1;
                    if n > 8 {
                        format!("{} = [... {n} values]", &l[..i])
                    } else {
                        l.to_string()
                    }
                }
                _ => l.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("\n")
}
