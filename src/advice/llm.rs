//! The LLM client: chat completions on any OpenAI-compatible endpoint (async-openai), with explicit
//! timeouts, retries with backoff and jitter, a reply checked against the strict schema, one repair
//! request, and a conversation the validate stage continues when a draft is rejected.
//!
//! The API key lives only in the client's configuration and the `Authorization` (or Azure `api-key`)
//! header: no message, note, cache entry or `Debug` output holds it, and errors are scrubbed of it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_openai::config::{AzureConfig, Config, OpenAIConfig};
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequest, CreateChatCompletionResponse, FinishReason, ResponseFormat,
    ResponseFormatJsonSchema,
};
use async_openai::Client;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde_json::Value;

use super::cache::{Entry, ReplyCache};
use super::prompt::{bounded, Prompts, Rejection};
use super::reply::{self, ModelReply};

/// How the reply's shape is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// `response_format: json_schema` with the strict schema (OpenAI, vLLM, llama.cpp, recent Ollama).
    JsonSchema,
    /// `response_format: json_object`, the schema in the prompt: servers without structured output.
    JsonObject,
    /// No response format; the schema in the prompt.
    Plain,
}

impl ResponseMode {
    pub fn from_name(name: &str) -> Option<ResponseMode> {
        match name {
            "json_schema" => Some(ResponseMode::JsonSchema),
            "json_object" => Some(ResponseMode::JsonObject),
            "plain" => Some(ResponseMode::Plain),
            _ => None,
        }
    }

    /// Whether the prompt must carry the schema itself.
    pub fn schema_in_prompt(self) -> bool {
        self != ResponseMode::JsonSchema
    }
}

/// Where requests go and how they are made.
#[derive(Clone)]
pub struct LlmSettings {
    /// The API base, e.g. `https://api.openai.com/v1` (Azure: `https://NAME.openai.azure.com`).
    pub base_url: String,
    /// The model (Azure: the deployment).
    pub model: String,
    api_key: Option<String>,
    /// Azure OpenAI: the `api-version` query parameter; `None` for an OpenAI-compatible API.
    pub azure_api_version: Option<String>,
    /// Extra headers sent with every request (a gateway's routing or tenant header).
    pub headers: Vec<(String, String)>,
    pub mode: ResponseMode,
    pub connect_timeout: Duration,
    /// For one HTTP request, from sending it to the end of the reply.
    pub request_timeout: Duration,
    /// Retries of one request on 429, 5xx and connection errors.
    pub retries: u32,
    /// Requests in flight at once.
    pub concurrency: usize,
    pub max_completion_tokens: u32,
}

impl fmt::Debug for LlmSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmSettings")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "(set)"))
            .field("azure_api_version", &self.azure_api_version)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
pub const DEFAULT_RETRIES: u32 = 3;
pub const DEFAULT_CONCURRENCY: usize = 4;
pub const DEFAULT_MAX_COMPLETION_TOKENS: u32 = 4_096;
/// The longest wait a `Retry-After` header can ask for before a retry; longer ones are cut to it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// The most of a broken reply the repair request quotes back.
const REPAIR_QUOTE_CHARS: usize = 2_000;

impl LlmSettings {
    pub fn new(base_url: String, model: String, api_key: Option<String>) -> LlmSettings {
        LlmSettings {
            base_url: base_url.trim_end_matches('/').to_owned(),
            model,
            api_key: api_key.filter(|k| !k.is_empty()),
            azure_api_version: None,
            headers: Vec::new(),
            mode: ResponseMode::JsonSchema,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            retries: DEFAULT_RETRIES,
            concurrency: DEFAULT_CONCURRENCY,
            max_completion_tokens: DEFAULT_MAX_COMPLETION_TOKENS,
        }
    }

    /// What identifies the endpoint for the cache: never the key.
    pub fn cache_identity(&self) -> String {
        format!(
            "{}\n{}\n{}\n{:?}",
            self.base_url,
            self.azure_api_version.as_deref().unwrap_or(""),
            self.model,
            self.mode
        )
    }
}

/// Why a request gave no usable reply. Messages never hold the API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LlmError {
    /// No HTTP reply: connection refused or closed, timeout.
    Transport(String),
    /// The endpoint answered with an error status (after the retries).
    Status(String),
    /// The model declined to answer.
    Refused(String),
    /// The reply hit the completion-token limit before its JSON ended.
    Truncated,
    /// The endpoint answered with no choice or no content.
    Empty,
    /// The reply did not match the schema, also after the repair request.
    Invalid(String),
    /// A prompt template (from `--prompts`) failed to render the request.
    Template(String),
}

impl fmt::Display for LlmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LlmError::Transport(e) => write!(f, "the LLM endpoint could not be reached: {e}"),
            LlmError::Status(e) => write!(f, "the LLM endpoint answered with an error: {e}"),
            LlmError::Refused(why) => write!(f, "the model refused to answer: {why}"),
            LlmError::Truncated => f.write_str(
                "the reply was cut at the completion-token limit (finish_reason \"length\"); \
                 raise [llm] max-completion-tokens or use a model with a larger output",
            ),
            LlmError::Empty => f.write_str("the endpoint's reply held no message"),
            LlmError::Invalid(e) => write!(f, "{e}, also after a repair request"),
            LlmError::Template(e) => f.write_str(e),
        }
    }
}

/// Tokens one conversation used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// A client for one endpoint; cheap to clone.
#[derive(Clone)]
pub struct Llm {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client<Box<dyn Config>>,
    settings: LlmSettings,
    schema: Value,
}

impl Llm {
    pub fn new(settings: LlmSettings) -> Result<Llm, String> {
        // The TLS backend is ring: one process-wide choice, made once (a second call is a no-op).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &settings.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a valid HTTP header name"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("the value of header `{name}` is not a valid header value"))?;
            headers.insert(name, value);
        }
        let key = settings.api_key.clone().unwrap_or_default();
        let config: Box<dyn Config> = match &settings.azure_api_version {
            Some(version) => Box::new(
                AzureConfig::new()
                    .with_api_base(&settings.base_url)
                    .with_api_version(version)
                    .with_deployment_id(&settings.model)
                    .with_api_key(key),
            ),
            None => Box::new(
                OpenAIConfig::new()
                    .with_api_base(&settings.base_url)
                    .with_org_id("")
                    .with_project_id("")
                    .with_api_key(key),
            ),
        };
        let transport = Transport {
            http,
            headers,
            retries: settings.retries,
        };
        let client = Client::with_config(config).with_http_service(transport);
        Ok(Llm {
            inner: Arc::new(Inner {
                client,
                settings,
                schema: reply::strict_schema(),
            }),
        })
    }

    pub fn settings(&self) -> &LlmSettings {
        &self.inner.settings
    }

    /// The reply schema requests carry (and replies are checked against).
    pub fn schema(&self) -> &Value {
        &self.inner.schema
    }

    /// A conversation that starts with these system and user messages; its repair and correction
    /// requests come from the embedded templates until [`Conversation::with_prompts`].
    pub fn conversation(&self, system: String, user: String) -> Conversation {
        Conversation {
            llm: self.clone(),
            messages: vec![
                ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
                    content: system.into(),
                    name: None,
                }),
                user_message(user),
            ],
            usage: Usage::default(),
            requests: 0,
            prompts: Prompts::embedded(),
            nonce: crate::nonce::nonce(),
            cache: None,
            key: None,
            cache_errors: Vec::new(),
        }
    }

    /// Removes the API key from text that could quote it (an endpoint's error message).
    fn scrub(&self, text: String) -> String {
        match &self.inner.settings.api_key {
            Some(key) if key.len() >= 4 => text.replace(key.as_str(), "(API key)"),
            _ => text,
        }
    }
}

fn user_message(text: String) -> ChatCompletionRequestMessage {
    ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
        content: text.into(),
        name: None,
    })
}

fn assistant_message(text: String) -> ChatCompletionRequestMessage {
    ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
        content: Some(text.into()),
        ..Default::default()
    })
}

/// One exchange with the model: the first question, the repair request when a reply breaks the
/// schema, and the corrections the validator asks for, each seeing everything said before.
///
/// With a cache, every reply is stored under a key that chains the keys before it: the first
/// request's key comes from its prompt, a correction's from the previous key and the correction
/// rendered with a fixed nonce, so a re-run of the same review asks nothing, corrections included.
pub struct Conversation {
    llm: Llm,
    messages: Vec<ChatCompletionRequestMessage>,
    /// Tokens used so far (a cached reply counts what it cost when it was asked).
    pub usage: Usage,
    /// HTTP requests made so far: 0 when every reply came from the cache.
    pub requests: u32,
    prompts: Arc<Prompts>,
    /// Marks the data blocks of the conversation's messages.
    nonce: String,
    cache: Option<ReplyCache>,
    /// The cache key of the last reply.
    key: Option<String>,
    /// Replies that could not be written to the cache (they cost a request next time, nothing more).
    pub cache_errors: Vec<String>,
}

impl Conversation {
    /// Words the repair and correction requests with these templates, the correction's data blocks
    /// marked with `nonce` (the one the first user message uses).
    pub fn with_prompts(mut self, prompts: Arc<Prompts>, nonce: String) -> Self {
        self.prompts = prompts;
        self.nonce = nonce;
        self
    }

    /// Answers from `cache`, and stores replies in it; `key` is the first request's.
    pub fn with_cache(mut self, cache: Option<ReplyCache>, key: String) -> Self {
        self.cache = cache;
        self.key = Some(key);
        self
    }

    pub fn llm(&self) -> &Llm {
        &self.llm
    }

    /// Whether no request was made: every reply so far came from the cache.
    pub fn cached(&self) -> bool {
        self.requests == 0
    }

    /// Asks the question (or answers it from the cache).
    pub async fn ask(&mut self) -> Result<ModelReply, LlmError> {
        let key = self.key.clone();
        self.cached_exchange(key).await
    }

    /// After the validator rejected the model's drafts: sends the reasons in the same conversation
    /// (the `correct` template) and returns the corrected reply, checked like every reply.
    pub async fn correct(&mut self, rejected: &[Rejection]) -> Result<ModelReply, LlmError> {
        let render = |nonce: &str| {
            self.prompts
                .correct(rejected, nonce)
                .map_err(LlmError::Template)
        };
        let message = render(&self.nonce)?;
        // The key comes from the request with a fixed nonce: the real one changes every run.
        let key = match &self.key {
            Some(previous) => Some(ReplyCache::key(
                &self.llm.settings().cache_identity(),
                previous,
                &render("0")?,
            )),
            None => None,
        };
        self.messages.push(user_message(message));
        self.cached_exchange(key).await
    }

    /// The reply stored under `key`, else a request whose reply is stored under it.
    async fn cached_exchange(&mut self, key: Option<String>) -> Result<ModelReply, LlmError> {
        let cache = self.cache.clone().zip(key.clone());
        if let Some(entry) = cache.as_ref().and_then(|(cache, key)| cache.get(key)) {
            if let Ok(reply) = reply::parse(&entry.reply, self.llm.schema()) {
                self.messages.push(assistant_message(entry.reply.clone()));
                self.usage.prompt_tokens += entry.prompt_tokens;
                self.usage.completion_tokens += entry.completion_tokens;
                self.key = key;
                return Ok(reply);
            }
        }
        let before = self.usage;
        let (reply, text) = self.exchange().await?;
        if let Some((cache, key)) = &cache {
            let entry = Entry {
                model: self.llm.settings().model.clone(),
                reply: text,
                prompt_tokens: self.usage.prompt_tokens - before.prompt_tokens,
                completion_tokens: self.usage.completion_tokens - before.completion_tokens,
            };
            if let Err(error) = cache.put(key, &entry) {
                self.cache_errors.push(error);
            }
        }
        self.key = key;
        Ok(reply)
    }

    /// One request, checked; a reply that breaks the schema gets one repair request quoting the
    /// errors.
    async fn exchange(&mut self) -> Result<(ModelReply, String), LlmError> {
        let text = self.request().await?;
        self.messages.push(assistant_message(text.clone()));
        let error = match reply::parse(&text, self.llm.schema()) {
            Ok(reply) => return Ok((reply, text)),
            Err(error) => error,
        };
        let repair = self
            .prompts
            .repair(&bounded(&error, REPAIR_QUOTE_CHARS))
            .map_err(LlmError::Template)?;
        self.messages.push(user_message(repair));
        let text = self.request().await?;
        self.messages.push(assistant_message(text.clone()));
        match reply::parse(&text, self.llm.schema()) {
            Ok(reply) => Ok((reply, text)),
            Err(error) => Err(LlmError::Invalid(bounded(&error, REPAIR_QUOTE_CHARS))),
        }
    }

    /// Sends the conversation; returns the reply's text, added to the conversation by the caller.
    async fn request(&mut self) -> Result<String, LlmError> {
        self.requests += 1;
        let settings = self.llm.settings();
        let response_format = match settings.mode {
            ResponseMode::JsonSchema => Some(ResponseFormat::JsonSchema {
                json_schema: ResponseFormatJsonSchema {
                    description: Some("migagent's advice on one migration".into()),
                    name: "migration_advice".into(),
                    schema: self.llm.schema().clone(),
                    strict: Some(true),
                },
            }),
            ResponseMode::JsonObject => Some(ResponseFormat::JsonObject),
            ResponseMode::Plain => None,
        };
        let request = CreateChatCompletionRequest {
            model: settings.model.clone(),
            messages: self.messages.clone(),
            response_format,
            max_completion_tokens: Some(settings.max_completion_tokens),
            temperature: Some(0.0),
            ..Default::default()
        };
        let response = self
            .llm
            .inner
            .client
            .chat()
            .create(request)
            .await
            .map_err(|e| self.error(e))?;
        self.count(&response);
        let choice = response.choices.into_iter().next().ok_or(LlmError::Empty)?;
        if let Some(refusal) = choice.message.refusal.filter(|r| !r.trim().is_empty()) {
            return Err(LlmError::Refused(bounded(&refusal, 500)));
        }
        if choice.finish_reason == Some(FinishReason::Length) {
            return Err(LlmError::Truncated);
        }
        if choice.finish_reason == Some(FinishReason::ContentFilter) {
            return Err(LlmError::Refused(
                "the endpoint's content filter stopped the reply".into(),
            ));
        }
        choice
            .message
            .content
            .filter(|c| !c.trim().is_empty())
            .ok_or(LlmError::Empty)
    }

    fn count(&mut self, response: &CreateChatCompletionResponse) {
        if let Some(usage) = &response.usage {
            self.usage.prompt_tokens += u64::from(usage.prompt_tokens);
            self.usage.completion_tokens += u64::from(usage.completion_tokens);
        }
    }

    fn error(&self, error: OpenAIError) -> LlmError {
        match error {
            OpenAIError::ApiError(api) => LlmError::Status(self.llm.scrub(format!(
                "HTTP {}: {}",
                api.status_code.as_u16(),
                bounded(&api.api_error.message, 500)
            ))),
            OpenAIError::Reqwest(e) if e.is_timeout() => LlmError::Transport(format!(
                "no reply within {} s ([llm] timeout)",
                self.llm.settings().request_timeout.as_secs()
            )),
            OpenAIError::Reqwest(e) => LlmError::Transport(self.llm.scrub(describe(&e))),
            OpenAIError::JSONDeserialize(e, body) => LlmError::Status(self.llm.scrub(format!(
                "a reply that is not a chat completion ({e}): {}",
                bounded(&body, 300)
            ))),
            other => LlmError::Transport(self.llm.scrub(bounded(&other.to_string(), 500))),
        }
    }
}

/// A transport error with its causes ("error sending request: connection closed before message
/// completed").
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    bounded(&text, 500)
}

/// The HTTP transport under async-openai: extra headers, and retries on 429, 5xx and connection
/// errors with exponential backoff and jitter, honouring `Retry-After` up to [`MAX_RETRY_AFTER`].
/// (async-openai's own retry layer has no jitter and no bound on `Retry-After`.)
#[derive(Clone)]
struct Transport {
    http: reqwest::Client,
    headers: HeaderMap,
    retries: u32,
}

type TransportFuture =
    Pin<Box<dyn Future<Output = Result<reqwest::Response, OpenAIError>> + Send + 'static>>;

impl tower::Service<HttpRequestFactory> for Transport {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = TransportFuture;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), OpenAIError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, factory: HttpRequestFactory) -> TransportFuture {
        let transport = self.clone();
        Box::pin(async move {
            let mut attempt = 0;
            loop {
                let mut request = factory.build().await?;
                for (name, value) in &transport.headers {
                    request.headers_mut().insert(name, value.clone());
                }
                let result = transport.http.execute(request).await;
                let retry = match &result {
                    Ok(response)
                        if response.status().as_u16() == 429
                            || response.status().is_server_error() =>
                    {
                        Some(retry_after(response.headers()))
                    }
                    Err(error) if !error.is_timeout() => Some(None),
                    _ => None,
                };
                match retry {
                    Some(after) if attempt < transport.retries => {
                        tokio::time::sleep(backoff(attempt, after)).await;
                        attempt += 1;
                    }
                    _ => return result.map_err(OpenAIError::Reqwest),
                }
            }
        })
    }
}

/// `Retry-After` in seconds (the form API servers send).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: f64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// The wait before retry `attempt` (0-based): what the server asked for (bounded), else 0.5 s doubled
/// per attempt up to 8 s, with up to half of it random so clients that failed together do not retry
/// together.
fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(after) = retry_after {
        return after.min(MAX_RETRY_AFTER);
    }
    let base = Duration::from_millis(500)
        .saturating_mul(1 << attempt.min(4))
        .min(Duration::from_secs(8));
    let jitter = base.mul_f64((crate::nonce::random_u64() % 1_000) as f64 / 2_000.0);
    base - jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_honours_retry_after_within_bounds_and_jitters_otherwise() {
        assert_eq!(
            backoff(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(backoff(0, Some(Duration::from_secs(3600))), MAX_RETRY_AFTER);
        for attempt in 0..8 {
            let wait = backoff(attempt, None);
            let base = Duration::from_millis(500 << attempt.min(4)).min(Duration::from_secs(8));
            assert!(wait <= base && wait >= base / 2, "{attempt}: {wait:?}");
        }
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1.5"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn settings_never_show_the_key() {
        let settings =
            LlmSettings::new("http://x/v1/".into(), "m".into(), Some("sk-secret".into()));
        assert!(!format!("{settings:?}").contains("sk-secret"));
        assert!(!settings.cache_identity().contains("sk-secret"));
        assert_eq!(settings.base_url, "http://x/v1");
    }
}
