//! Mapping rules: which provider model ids a unified model name stands for.

use regex::Regex;

use crate::config::{Rule, RuleKind};

/// A unified model's rules, compiled once when a snapshot is built.
#[derive(Debug)]
pub struct CompiledRules {
    exact: Vec<String>,
    prefix: Vec<String>,
    keyword: Vec<String>,
    regex: Vec<Regex>,
    exclude_keyword: Vec<String>,
}

impl CompiledRules {
    /// A model with no positive rule matches its own name exactly, so that the simplest config
    /// (`[[models]] name = "gpt-4o"`) does what it says.
    pub fn compile(name: &str, rules: &[Rule]) -> Result<Self, String> {
        let mut c = Self {
            exact: Vec::new(),
            prefix: Vec::new(),
            keyword: Vec::new(),
            regex: Vec::new(),
            exclude_keyword: Vec::new(),
        };
        for r in rules {
            match r.kind {
                RuleKind::Exact => c.exact.push(r.value.clone()),
                // Prefix and keyword rules ignore ASCII case: providers spell the same model
                // `Claude-Opus` and `claude-opus`.
                RuleKind::Prefix => c.prefix.push(r.value.to_ascii_lowercase()),
                RuleKind::Keyword => c.keyword.push(r.value.to_ascii_lowercase()),
                RuleKind::ExcludeKeyword => c.exclude_keyword.push(r.value.to_ascii_lowercase()),
                RuleKind::Regex => c.regex.push(
                    Regex::new(&r.value)
                        .map_err(|e| format!("invalid regex {:?}: {e}", r.value))?,
                ),
            }
        }
        if c.exact.is_empty() && c.prefix.is_empty() && c.keyword.is_empty() && c.regex.is_empty() {
            c.exact.push(name.to_owned());
        }
        Ok(c)
    }

    pub fn excluded(&self, model_id: &str) -> bool {
        if self.exclude_keyword.is_empty() {
            return false;
        }
        let lower = model_id.to_ascii_lowercase();
        self.exclude_keyword
            .iter()
            .any(|k| lower.contains(k.as_str()))
    }

    pub fn matches(&self, model_id: &str) -> bool {
        if self.excluded(model_id) {
            return false;
        }
        if self.exact.iter().any(|e| e == model_id)
            || self.regex.iter().any(|r| r.is_match(model_id))
        {
            return true;
        }
        if self.prefix.is_empty() && self.keyword.is_empty() {
            return false;
        }
        let lower = model_id.to_ascii_lowercase();
        self.prefix.iter().any(|p| lower.starts_with(p.as_str()))
            || self.keyword.iter().any(|k| lower.contains(k.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[(RuleKind, &str)]) -> CompiledRules {
        let r: Vec<Rule> = list
            .iter()
            .map(|(k, v)| Rule {
                kind: *k,
                value: (*v).to_owned(),
            })
            .collect();
        CompiledRules::compile("unified", &r).unwrap()
    }

    #[test]
    fn each_rule_type() {
        use RuleKind::*;
        let exact = rules(&[(Exact, "claude-opus-4-5")]);
        assert!(exact.matches("claude-opus-4-5"));
        assert!(!exact.matches("claude-opus-4-5-20251101"));
        assert!(!exact.matches("Claude-Opus-4-5"));

        let prefix = rules(&[(Prefix, "claude-opus-4-5-")]);
        assert!(prefix.matches("claude-opus-4-5-20251101"));
        assert!(prefix.matches("CLAUDE-OPUS-4-5-20251101"));
        assert!(!prefix.matches("claude-opus-4-5"));

        let keyword = rules(&[(Keyword, "opus-4.5")]);
        assert!(keyword.matches("anthropic/claude-opus-4.5"));
        assert!(!keyword.matches("claude-opus-4-5"));

        let regex = rules(&[(Regex, "^claude-opus-4[-.]5")]);
        assert!(regex.matches("claude-opus-4.5"));
        assert!(regex.matches("claude-opus-4-5-20251101"));
        assert!(!regex.matches("x-claude-opus-4-5"));
    }

    #[test]
    fn exclusion_wins() {
        use RuleKind::*;
        let r = rules(&[(Prefix, "claude-opus"), (ExcludeKeyword, "Thinking")]);
        assert!(r.matches("claude-opus-4-5"));
        assert!(!r.matches("claude-opus-4-5-thinking"));
        let r = rules(&[(Exact, "a-thinking"), (ExcludeKeyword, "thinking")]);
        assert!(!r.matches("a-thinking"));
    }

    #[test]
    fn no_positive_rule_means_own_name() {
        let r = rules(&[(RuleKind::ExcludeKeyword, "x")]);
        assert!(r.matches("unified"));
        assert!(!r.matches("unified-2"));
        assert!(CompiledRules::compile("u", &[]).unwrap().matches("u"));
    }

    #[test]
    fn invalid_regex_is_refused_with_reason() {
        let e = CompiledRules::compile(
            "u",
            &[Rule {
                kind: RuleKind::Regex,
                value: "(".into(),
            }],
        )
        .unwrap_err();
        assert!(e.contains("invalid regex \"(\""), "{e}");
    }
}
