//! Three mock providers, one per protocol (OpenAI, Anthropic, Gemini), and a config with a
//! unified model served by each: `to-openai`, `to-anthropic`, `to-gemini`.

use super::mock::Mock;

pub struct Upstreams {
    pub openai: Mock,
    pub anthropic: Mock,
    pub gemini: Mock,
}

impl Upstreams {
    pub async fn start() -> Self {
        Self {
            openai: Mock::start().await,
            anthropic: Mock::start().await,
            gemini: Mock::start().await,
        }
    }

    pub fn config(&self) -> String {
        format!(
            r#"
[server]
request_timeout_s = 10

[[providers]]
name = "oa"
base_url = "{}"
protocols = ["openai"]
api_key = "sk-oa-secret"
models = ["gpt-x"]

[[providers]]
name = "an"
base_url = "{}"
protocols = ["anthropic"]
api_key = "sk-an-secret"
models = ["claude-x"]

[[providers]]
name = "ge"
base_url = "{}"
protocols = ["gemini"]
api_key = "ge-secret"
models = ["gemini-x"]

[[models]]
name = "to-openai"
include = ["oa/gpt-x"]

[[models]]
name = "to-anthropic"
include = ["an/claude-x"]

[[models]]
name = "to-gemini"
include = ["ge/gemini-x"]

[[client_keys]]
name = "test"
"#,
            self.openai.url(),
            self.anthropic.url(),
            self.gemini.url()
        )
    }

    pub fn mock(&self, model: &str) -> &Mock {
        match model {
            "to-openai" => &self.openai,
            "to-anthropic" => &self.anthropic,
            _ => &self.gemini,
        }
    }
}
