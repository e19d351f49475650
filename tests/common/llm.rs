//! What the tests of LLM advice share: a scratch project reviewed by the real binary with an endpoint
//! in its environment, and a real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions API
//! (wiremock) that answers with recorded replies, in order.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub const KEY: &str = "sk-test-Very-Secret-4711";
pub const MODEL: &str = "test-model";

/// The history every project starts with.
pub const USERS: &str =
    "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL DEFAULT '');\n";

/// A scratch project: one history migration and one reviewed migration, and its own cache.
pub struct Project(pub PathBuf);

impl Project {
    pub fn new(name: &str, reviewed: &str) -> Project {
        Project::with_history(name, USERS, reviewed)
    }

    pub fn with_history(name: &str, history: &str, reviewed: &str) -> Project {
        let root = std::env::temp_dir().join(format!("migagent-llm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("db")).unwrap();
        std::fs::write(root.join("db/0001_init.sql"), history).unwrap();
        std::fs::write(root.join("db/0002_change.sql"), reviewed).unwrap();
        Project(root)
    }

    pub fn config(&self, toml: &str) {
        std::fs::write(self.0.join("migagent.toml"), toml).unwrap();
    }

    pub fn cache(&self) -> PathBuf {
        self.0.join("cache")
    }

    /// `migagent review` in the project, with the endpoint, model and key in the environment and
    /// nothing from the caller's.
    pub fn command(&self, base_url: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_migagent"));
        command
            .arg("review")
            .current_dir(&self.0)
            .env("MIGAGENT_LLM_BASE_URL", base_url)
            .env("MIGAGENT_LLM_MODEL", MODEL)
            .env("MIGAGENT_LLM_API_KEY", KEY)
            .env("XDG_CACHE_HOME", self.cache())
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("MIGAGENT_LLM_HEADERS");
        command
    }

    /// `migagent review --shadow off --format json --llm LLM EXTRA… db/0002_change.sql`.
    pub fn review(&self, base_url: &str, llm: &str, extra: &[&str]) -> Output {
        self.review_json(base_url, &["--shadow", "off", "--llm", llm], extra)
    }

    /// `migagent review --format json ARGS… EXTRA… db/0002_change.sql`.
    pub fn review_json(&self, base_url: &str, args: &[&str], extra: &[&str]) -> Output {
        self.command(base_url)
            .args(["--format", "json"])
            .args(args)
            .args(extra)
            .arg("db/0002_change.sql")
            .output()
            .expect("the binary runs")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The first reviewed migration's advice.
pub fn advice(json: &Value) -> &Value {
    &json["migrations"][0]["advice"]
}

/// A chat completion whose message has `content` (or a refusal), with token usage.
pub fn completion(content: Option<&str>, refusal: Option<&str>, finish: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": MODEL,
        "choices": [{"index": 0, "finish_reason": finish, "logprobs": null,
                     "message": {"role": "assistant", "content": content, "refusal": refusal}}],
        "usage": {"prompt_tokens": 321, "completion_tokens": 45, "total_tokens": 366}
    })
}

pub fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

/// A 200 answer whose message is `reply` (a model's JSON).
pub fn answer(reply: &str) -> ResponseTemplate {
    ok(completion(Some(reply), None, "stop"))
}

/// A model reply with these drafts (`null` for none) and one explanation of finding 0.
pub fn reply_with(rewrite: Value, down: Value) -> String {
    json!({
        "summary": "Builds an index while blocking writes to users.",
        "risk": "high",
        "explanations": [{"finding": 0, "explanation": "CREATE INDEX takes a SHARE lock",
                          "impact": "Writes to users wait until the index is built."}],
        "rewrite": rewrite,
        "down": down
    })
    .to_string()
}

/// A rewrite of these steps (`(sql, transactional)`).
pub fn rewrite_of(steps: &[(&str, bool)]) -> Value {
    let steps: Vec<Value> = steps
        .iter()
        .map(|(sql, transactional)| json!({"sql": sql, "transactional": transactional, "note": ""}))
        .collect();
    json!({"steps": steps, "rationale": "builds without blocking writes"})
}

pub fn down_of(sql: &str) -> Value {
    json!({"sql": sql, "data_loss": false, "notes": ""})
}

/// A server answering each request with the next of `responses`, the last one for every further
/// request.
pub async fn server_answering(responses: Vec<ResponseTemplate>) -> MockServer {
    let server = MockServer::start().await;
    let count = responses.len();
    for (n, response) in responses.into_iter().enumerate() {
        let mock = Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(response);
        let mock = if n + 1 < count {
            mock.up_to_n_times(1)
        } else {
            mock
        };
        server.register(mock.with_priority(n as u8 + 1)).await;
    }
    server
}

/// The API base of the server, as a user would configure it.
pub fn base(server: &MockServer) -> String {
    format!("{}/v1", server.uri())
}

/// The request bodies the server received.
pub async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r: &Request| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// The nonce of the data blocks in a user message.
pub fn nonce_of(user: &str) -> &str {
    user.split("<data-")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                files_under(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

/// The key is nowhere in the output or the cache.
pub fn assert_key_nowhere(project: &Project, output: &Output) {
    assert!(!String::from_utf8_lossy(&output.stdout).contains(KEY));
    assert!(!String::from_utf8_lossy(&output.stderr).contains(KEY));
    for file in files_under(&project.cache()) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(!text.contains(KEY), "{}", file.display());
    }
}
