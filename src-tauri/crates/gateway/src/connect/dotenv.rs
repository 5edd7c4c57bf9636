//! Edits of a `.env` file (Gemini CLI's `~/.gemini/.env`) that change only the variables asked
//! for: other lines, comments and blank lines stay as they are.

/// Whether `line` sets `name` (`NAME=...`, `export NAME=...`, spaces around `=` allowed).
fn sets(line: &str, name: &str) -> bool {
    let l = line.trim_start();
    let l = l.strip_prefix("export ").map_or(l, str::trim_start);
    l.strip_prefix(name)
        .is_some_and(|rest| rest.trim_start().starts_with('='))
}

/// The value `name` has (the last line that sets it), quotes taken off.
pub fn get(text: &str, name: &str) -> Option<String> {
    text.lines().rfind(|l| sets(l, name)).map(|l| {
        let v = l.split_once('=').map_or("", |(_, v)| v).trim();
        v.strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v)
            .to_owned()
    })
}

/// `name=value` in place of every line that sets it (the first keeps its place, the others
/// go), or as a new last line.
pub fn set(text: &str, name: &str, value: &str) -> String {
    let line = format!("{name}={value}");
    let mut out = String::with_capacity(text.len() + line.len() + 1);
    let mut done = false;
    for l in text.split_inclusive('\n') {
        if sets(l, name) {
            if !done {
                out.push_str(&line);
                out.push_str(if l.ends_with("\r\n") { "\r\n" } else { "\n" });
                done = true;
            }
        } else {
            out.push_str(l);
        }
    }
    if !done {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Every line that sets `name` taken out.
pub fn remove(text: &str, name: &str) -> String {
    text.split_inclusive('\n')
        .filter(|l| !sets(l, name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_variable_changes() {
        let text = "# my keys\nGEMINI_API_KEY=\"AIza-mine\"\nexport OTHER = 1\n\nGEMINI_MODEL=gemini-2.5-pro";
        let out = set(text, "GEMINI_API_KEY", "sk-sb-1");
        assert_eq!(
            out,
            "# my keys\nGEMINI_API_KEY=sk-sb-1\nexport OTHER = 1\n\nGEMINI_MODEL=gemini-2.5-pro"
        );
        assert_eq!(get(text, "GEMINI_API_KEY").as_deref(), Some("AIza-mine"));
        assert_eq!(get(text, "OTHER").as_deref(), Some("1"));
        assert_eq!(
            get(text, "GEMINI").as_deref(),
            None,
            "a prefix is not a name"
        );
        let added = set(&out, "GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:7340");
        assert!(added.ends_with("gemini-2.5-pro\nGOOGLE_GEMINI_BASE_URL=http://127.0.0.1:7340\n"));
        assert_eq!(
            remove(&added, "GOOGLE_GEMINI_BASE_URL"),
            "# my keys\nGEMINI_API_KEY=sk-sb-1\nexport OTHER = 1\n\nGEMINI_MODEL=gemini-2.5-pro\n"
        );
        assert_eq!(set("", "A", "1"), "A=1\n");
    }
}
