//! Edits of a JSON document (comments and trailing commas allowed, as in Gemini CLI's files)
//! that change only the member asked for: every other byte (order, spacing, comments, the keys
//! around it) stays. A parse-and-print would reformat the user's whole file.

use std::ops::Range;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JsonEditError {
    #[error("not JSON at byte {at}: {what}")]
    Syntax { at: usize, what: &'static str },
    #[error("`{0}` is there but is not an object")]
    NotAnObject(String),
}

type Result<T> = std::result::Result<T, JsonEditError>;

fn syntax(at: usize, what: &'static str) -> JsonEditError {
    JsonEditError::Syntax { at, what }
}

/// A member of an object: where its key starts and where its value is.
#[derive(Debug)]
struct Member {
    key: String,
    start: usize,
    value: Range<usize>,
}

/// Past whitespace and comments.
fn skip(b: &[u8], mut i: usize) -> usize {
    loop {
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        match (b.get(i), b.get(i + 1)) {
            (Some(b'/'), Some(b'/')) => {
                while b.get(i).is_some_and(|c| *c != b'\n') {
                    i += 1;
                }
            }
            (Some(b'/'), Some(b'*')) => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i = (i + 2).min(b.len());
            }
            _ => return i,
        }
    }
}

/// `i` at an opening quote: the index past the closing one.
fn string_end(b: &[u8], mut i: usize) -> Result<usize> {
    let start = i;
    i += 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(syntax(start, "a string that does not end"))
}

/// `i` at a value: the index past it.
fn value_end(b: &[u8], i: usize) -> Result<usize> {
    match b.get(i) {
        Some(b'"') => string_end(b, i),
        Some(b'{') => Ok(members(b, i)?.1 + 1),
        Some(b'[') => {
            let mut j = skip(b, i + 1);
            loop {
                match b.get(j) {
                    Some(b']') => return Ok(j + 1),
                    Some(_) => {}
                    None => return Err(syntax(i, "an array that does not end")),
                }
                j = skip(b, value_end(b, j)?);
                match b.get(j) {
                    Some(b',') => j = skip(b, j + 1),
                    Some(b']') => {}
                    _ => return Err(syntax(j, "expected , or ]")),
                }
            }
        }
        Some(c) if c.is_ascii_alphanumeric() || *c == b'-' => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
            {
                j += 1;
            }
            Ok(j)
        }
        _ => Err(syntax(i, "expected a value")),
    }
}

/// `open` at `{`: its members, and the index of its `}`.
fn members(b: &[u8], open: usize) -> Result<(Vec<Member>, usize)> {
    let mut out = Vec::new();
    let mut i = skip(b, open + 1);
    loop {
        match b.get(i) {
            Some(b'}') => return Ok((out, i)),
            Some(b'"') => {}
            _ => return Err(syntax(i, "expected a key or }")),
        }
        let key_end = string_end(b, i)?;
        let key: String = serde_json::from_slice(&b[i..key_end])
            .map_err(|_| syntax(i, "a key that is not a string"))?;
        let colon = skip(b, key_end);
        if b.get(colon) != Some(&b':') {
            return Err(syntax(colon, "expected :"));
        }
        let v = skip(b, colon + 1);
        let v_end = value_end(b, v)?;
        out.push(Member {
            key,
            start: i,
            value: v..v_end,
        });
        i = skip(b, v_end);
        match b.get(i) {
            Some(b',') => i = skip(b, i + 1),
            Some(b'}') => {}
            _ => return Err(syntax(i, "expected , or }")),
        }
    }
}

/// The top-level object's `{`; an empty document counts as `{}` (a file not made yet).
fn root(text: &str) -> Result<Option<usize>> {
    let b = text.as_bytes();
    let i = skip(b, 0);
    match b.get(i) {
        None => Ok(None),
        Some(b'{') => Ok(Some(i)),
        _ => Err(syntax(i, "the file is not an object")),
    }
}

/// The object at `path` (each step a member holding an object): its `{`.
fn object_at(text: &str, path: &[&str]) -> Result<Option<usize>> {
    let Some(mut open) = root(text)? else {
        return Ok(None);
    };
    let b = text.as_bytes();
    for (n, step) in path.iter().enumerate() {
        let (list, _) = members(b, open)?;
        let Some(m) = list.into_iter().rfind(|m| m.key == *step) else {
            return Ok(None);
        };
        if b.get(m.value.start) != Some(&b'{') {
            return Err(JsonEditError::NotAnObject(path[..=n].join(".")));
        }
        open = m.value.start;
    }
    Ok(Some(open))
}

/// The text of the value at `path` + `key`, if there is one.
pub fn get(text: &str, path: &[&str], key: &str) -> Result<Option<String>> {
    let Some(open) = object_at(text, path)? else {
        return Ok(None);
    };
    let (list, _) = members(text.as_bytes(), open)?;
    Ok(list
        .into_iter()
        .rfind(|m| m.key == key)
        .map(|m| text[m.value].to_owned()))
}

/// The indentation of the line `at` is on, when only whitespace comes before it there.
fn line_indent(text: &str, at: usize) -> Option<&str> {
    let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
    let before = &text[line_start..at];
    before
        .chars()
        .all(|c| c == ' ' || c == '\t')
        .then_some(before)
}

fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// `value` (JSON text) for `key` in the object at `path`, the objects on the way made when
/// missing. A key that is there has its value replaced in place; a new one goes last.
pub fn set(text: &str, path: &[&str], key: &str, value: &str) -> Result<String> {
    // The deepest object of the path that exists, and what is missing below it.
    let mut depth = path.len();
    let open = loop {
        if let Some(open) = object_at(text, &path[..depth])? {
            break Some(open);
        }
        if depth == 0 {
            break None;
        }
        depth -= 1;
    };
    let Some(open) = open else {
        // No file (or an empty one): ours alone, as the client itself would write it.
        let parsed: serde_json::Value =
            serde_json::from_str(value).map_err(|_| syntax(0, "the value to write"))?;
        let mut v = serde_json::json!({ key: parsed });
        for step in path.iter().rev() {
            v = serde_json::json!({ *step: v });
        }
        let pretty = serde_json::to_string_pretty(&v).map_err(|_| syntax(0, "the value"))?;
        // Comments alone (no object yet) stay above it.
        let above = if text.trim().is_empty() { "" } else { text };
        let nl = if above.is_empty() || above.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        return Ok(format!("{above}{nl}{pretty}\n"));
    };
    let b = text.as_bytes();
    let (list, close) = members(b, open)?;
    let missing = &path[depth..];
    if missing.is_empty()
        && let Some(m) = list.iter().rfind(|m| m.key == key)
    {
        return Ok(format!(
            "{}{value}{}",
            &text[..m.value.start],
            &text[m.value.end..]
        ));
    }
    // A new member: `"a": {"b": {"key": value}}` for what is missing, indented as its
    // neighbours are (on one line when they are).
    let parent_indent = line_indent(text, open).unwrap_or("");
    let indent = match list.last() {
        Some(last) => line_indent(text, last.start).map(str::to_owned),
        None => Some(format!("{parent_indent}  ")),
    };
    let new_member = match &indent {
        Some(own) => {
            let step = own
                .strip_prefix(parent_indent)
                .filter(|s| !s.is_empty())
                .unwrap_or("  ");
            let mut chain = format!("{}: {value}", quoted(key));
            for (n, name) in missing.iter().enumerate().rev() {
                let inner = format!("{own}{}", step.repeat(n + 1));
                let outer = format!("{own}{}", step.repeat(n));
                chain = format!("{}: {{\n{inner}{chain}\n{outer}}}", quoted(name));
            }
            chain
        }
        None => missing
            .iter()
            .rev()
            .fold(format!("{}: {value}", quoted(key)), |chain, name| {
                format!("{}: {{{chain}}}", quoted(name))
            }),
    };
    Ok(match (list.last(), indent) {
        (Some(last), Some(indent)) => {
            // After the last member's line when only a comment follows it there, so that the
            // comment stays with its member.
            let end = last.value.end;
            let rest_of_line = text[end..].find('\n').map(|n| end + n);
            match rest_of_line {
                Some(nl)
                    if text[end..nl].trim().is_empty()
                        || text[end..nl].trim_start().starts_with("//") =>
                {
                    format!(
                        "{},{}\n{indent}{new_member}{}",
                        &text[..end],
                        &text[end..nl],
                        &text[nl..]
                    )
                }
                _ => format!("{},\n{indent}{new_member}{}", &text[..end], &text[end..]),
            }
        }
        (Some(last), None) => format!(
            "{}, {new_member}{}",
            &text[..last.value.end],
            &text[last.value.end..]
        ),
        (None, indent) => {
            // An empty object: the member on its own line, the brace back where it was.
            let indent = indent.unwrap_or_default();
            let inner = &text[open + 1..close];
            let keep = if inner.trim().is_empty() { "" } else { inner };
            format!(
                "{}{keep}\n{indent}{new_member}\n{parent_indent}{}",
                &text[..=open],
                &text[close..]
            )
        }
    })
}

/// `key` taken out of the object at `path`, with its comma; the text unchanged when it is not
/// there.
pub fn remove(text: &str, path: &[&str], key: &str) -> Result<String> {
    let Some(open) = object_at(text, path)? else {
        return Ok(text.to_owned());
    };
    let b = text.as_bytes();
    let (list, close) = members(b, open)?;
    let Some(n) = list.iter().rposition(|m| m.key == key) else {
        return Ok(text.to_owned());
    };
    let m = &list[n];
    let own_line = line_indent(text, m.start).is_some();
    let mut out = if n > 0 && own_line {
        // The comma after the member before, and this member's line: a comment after the
        // member before stays.
        let prev = &list[n - 1];
        let comma = skip(b, prev.value.end);
        let line = text[..m.start].rfind('\n').unwrap_or(m.start);
        if b.get(comma) == Some(&b',') && comma < line {
            format!(
                "{}{}{}",
                &text[..comma],
                &text[comma + 1..line],
                &text[m.value.end..]
            )
        } else {
            format!("{}{}", &text[..prev.value.end], &text[m.value.end..])
        }
    } else if n > 0 {
        format!("{}{}", &text[..list[n - 1].value.end], &text[m.value.end..])
    } else if let Some(next) = list.get(1) {
        format!("{}{}", &text[..m.start], &text[next.start..])
    } else {
        let after = skip(b, m.value.end);
        let end = if b.get(after) == Some(&b',') {
            after + 1
        } else {
            m.value.end
        };
        format!("{}{}", &text[..m.start], &text[end..])
    };
    if list.len() == 1 {
        // `{\n  \n}` left behind: the object as the client would write it empty.
        let (_, close) = members(out.as_bytes(), open)?;
        if out[open + 1..close].trim().is_empty() {
            out = format!("{}{}", &out[..=open], &out[close..]);
        }
    }
    let _ = close;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLAUDE: &str = r#"{
  "$schema": "https://json.schemastore.org/claude-code-settings.json",
  "permissions": {
    "allow": ["Bash(npm run lint)", "Read(~/.zshrc)"],
    "deny": []
  },
  "env": {
    "CLAUDE_CODE_ENABLE_TELEMETRY": "0",
    "ANTHROPIC_BASE_URL": "https://relay.example/v1"
  },
  "hooks": {
    "PostToolUse": [{"matcher": "Edit", "hooks": [{"type": "command", "command": "fmt \"$f\""}]}]
  },
  "statusLine": {"type": "command", "command": "~/.claude/status.sh"}
}
"#;

    #[test]
    fn a_value_there_is_replaced_in_place_and_nothing_else_moves() {
        let out = set(
            CLAUDE,
            &["env"],
            "ANTHROPIC_BASE_URL",
            "\"http://127.0.0.1:7340\"",
        )
        .unwrap();
        assert_eq!(
            out,
            CLAUDE.replace("https://relay.example/v1", "http://127.0.0.1:7340")
        );
        assert_eq!(
            get(&out, &["env"], "ANTHROPIC_BASE_URL")
                .unwrap()
                .as_deref(),
            Some("\"http://127.0.0.1:7340\"")
        );
    }

    #[test]
    fn a_new_member_goes_last_indented_as_its_neighbours_and_comes_out_again() {
        let out = set(CLAUDE, &["env"], "ANTHROPIC_AUTH_TOKEN", "\"sk-sb-1\"").unwrap();
        assert!(
            out.contains(
                "\"ANTHROPIC_BASE_URL\": \"https://relay.example/v1\",\n    \"ANTHROPIC_AUTH_TOKEN\": \"sk-sb-1\"\n  },"
            ),
            "{out}"
        );
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
        assert_eq!(
            remove(&out, &["env"], "ANTHROPIC_AUTH_TOKEN").unwrap(),
            CLAUDE
        );
    }

    #[test]
    fn missing_objects_are_made_on_the_way() {
        let text = "{\n    \"theme\": \"dark\" // mine\n}\n";
        let out = set(
            text,
            &["security", "auth"],
            "selectedType",
            "\"gemini-api-key\"",
        )
        .unwrap();
        assert_eq!(
            out,
            "{\n    \"theme\": \"dark\", // mine\n    \"security\": {\n        \"auth\": {\n            \"selectedType\": \"gemini-api-key\"\n        }\n    }\n}\n"
        );
        assert_eq!(
            get(&out, &["security", "auth"], "selectedType")
                .unwrap()
                .as_deref(),
            Some("\"gemini-api-key\"")
        );
        assert_eq!(
            remove(&out, &[], "security").unwrap(),
            text,
            "the comment stays"
        );
        // Made from nothing: a file of ours alone.
        let fresh = set("", &["env"], "A", "\"1\"").unwrap();
        assert_eq!(fresh, "{\n  \"env\": {\n    \"A\": \"1\"\n  }\n}\n");
        let empty = set("{}\n", &["env"], "A", "\"1\"").unwrap();
        assert_eq!(empty, "{\n  \"env\": {\n    \"A\": \"1\"\n  }\n}\n");
    }

    #[test]
    fn comments_trailing_commas_and_one_line_objects_survive() {
        let text = "{\n  // the user's note, with a \"quote\" and a { brace\n  \"a\": [1, 2,], /* x */\n  \"b\": {\"c\": 1},\n}\n";
        let out = set(text, &["b"], "d", "true").unwrap();
        assert!(out.contains("\"b\": {\"c\": 1, \"d\": true},"), "{out}");
        assert!(out.starts_with("{\n  // the user's note"), "{out}");
        assert_eq!(remove(&out, &["b"], "d").unwrap(), text);
        assert_eq!(remove(&out, &["b"], "nope").unwrap(), out);
    }

    #[test]
    fn removing_the_first_or_only_member() {
        let text = "{\n  \"env\": {\n    \"A\": \"1\",\n    \"B\": \"2\"\n  }\n}\n";
        assert_eq!(
            remove(text, &["env"], "A").unwrap(),
            "{\n  \"env\": {\n    \"B\": \"2\"\n  }\n}\n"
        );
        let only = remove(&remove(text, &["env"], "A").unwrap(), &["env"], "B").unwrap();
        assert_eq!(only, "{\n  \"env\": {}\n}\n");
    }

    #[test]
    fn what_is_not_json_or_not_an_object_is_refused_not_overwritten() {
        assert!(matches!(
            set("{\"env\": \"x\"}", &["env"], "A", "\"1\""),
            Err(JsonEditError::NotAnObject(p)) if p == "env"
        ));
        assert!(matches!(
            set("{\"a\": }", &["env"], "A", "\"1\""),
            Err(JsonEditError::Syntax { .. })
        ));
        assert!(set("[1]", &[], "A", "1").is_err());
        assert!(set("{\"a\": \"unterminated}", &[], "A", "1").is_err());
    }
}
