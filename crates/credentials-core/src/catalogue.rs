//! The type catalogue: every credential type the vault knows, its category and its value fields.

/// The family a credential type belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Large language model providers.
    Llm,
    /// Speech-to-text and text-to-speech providers.
    Speech,
    /// Image generation providers.
    Image,
    /// Video generation providers.
    Video,
    /// Databases and data warehouses.
    DataWarehouse,
    /// Generic credentials for tools: API keys, OAuth, databases, SMTP.
    Tools,
}

impl Category {
    /// Every category, in declaration order.
    pub const ALL: [Category; 6] = [
        Category::Llm,
        Category::Speech,
        Category::Image,
        Category::Video,
        Category::DataWarehouse,
        Category::Tools,
    ];

    /// The stable wire name, e.g. `data_warehouse`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Llm => "llm",
            Category::Speech => "speech",
            Category::Image => "image",
            Category::Video => "video",
            Category::DataWarehouse => "data_warehouse",
            Category::Tools => "tools",
        }
    }

    /// The category with this wire name; `None` if unknown.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One field of a credential type's value.
#[derive(Debug)]
pub struct FieldSpec {
    /// The field name clients send, e.g. `api_key`.
    pub name: &'static str,
    /// What the field holds, for humans.
    pub description: &'static str,
    /// Whether the field is secret; non-secret fields appear in the masked preview.
    pub secret: bool,
    /// Whether every value must carry the field.
    pub required: bool,
    /// The only values accepted; empty means any.
    pub allowed_values: &'static [&'static str],
}

/// A credential type.
#[derive(Debug)]
pub struct TypeSpec {
    /// The stable type id, e.g. `openai`.
    pub id: &'static str,
    /// Its category.
    pub category: Category,
    /// Name shown to humans.
    pub display_name: &'static str,
    /// What the type is for.
    pub description: &'static str,
    /// The fields of its value, in display order.
    pub fields: &'static [FieldSpec],
    /// The field a single secret string fills, and the one the masked preview shows.
    pub primary_field: &'static str,
    /// At least one of these fields must be present; empty means no such rule.
    pub requires_one_of: &'static [&'static str],
    /// Whether the vault can probe the credential against its target.
    pub supports_validation: bool,
    /// Whether the vault can discover the target's schema.
    pub supports_schema_discovery: bool,
}

impl TypeSpec {
    /// The field with this name; `None` if the type has no such field.
    pub fn field(&self, name: &str) -> Option<&'static FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Every type, sorted by category (in enum order) then id.
pub fn all() -> &'static [TypeSpec] {
    &TYPES
}

/// The type with this id; `None` if unknown.
pub fn lookup(id: &str) -> Option<&'static TypeSpec> {
    TYPES.iter().find(|t| t.id == id)
}

const REQUIRED: bool = true;
const OPTIONAL: bool = false;

const fn secret(name: &'static str, description: &'static str, required: bool) -> FieldSpec {
    FieldSpec {
        name,
        description,
        secret: true,
        required,
        allowed_values: &[],
    }
}

const fn plain(name: &'static str, description: &'static str, required: bool) -> FieldSpec {
    FieldSpec {
        name,
        description,
        secret: false,
        required,
        allowed_values: &[],
    }
}

const fn choice(
    name: &'static str,
    description: &'static str,
    required: bool,
    allowed_values: &'static [&'static str],
) -> FieldSpec {
    FieldSpec {
        name,
        description,
        secret: false,
        required,
        allowed_values,
    }
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Types that cannot be probed: Pika has no public API to check a key against, and SQL Server
/// needs a TDS client this build does not include. Validating them answers UNSUPPORTED_TYPE.
const UNPROBED: &[&str] = &["pika", "mssql"];
/// Types whose database schema can be discovered (tools `database` too, by its schema_type).
const DISCOVERABLE: &[&str] = &["postgresql", "redshift", "mysql", "clickhouse", "database"];

const fn listed(id: &str, list: &[&str]) -> bool {
    let mut i = 0;
    while i < list.len() {
        if same(id, list[i]) {
            return true;
        }
        i += 1;
    }
    false
}

const fn ty(
    id: &'static str,
    category: Category,
    display_name: &'static str,
    description: &'static str,
    fields: &'static [FieldSpec],
    primary_field: &'static str,
    requires_one_of: &'static [&'static str],
) -> TypeSpec {
    TypeSpec {
        id,
        category,
        display_name,
        description,
        fields,
        primary_field,
        requires_one_of,
        supports_validation: !listed(id, UNPROBED),
        supports_schema_discovery: listed(id, DISCOVERABLE),
    }
}

const API_KEY: &[FieldSpec] = &[secret(
    "api_key",
    "API key issued by the provider.",
    REQUIRED,
)];

/// A provider authenticated by a single API key.
const fn keyed(
    id: &'static str,
    category: Category,
    display_name: &'static str,
    description: &'static str,
) -> TypeSpec {
    ty(
        id,
        category,
        display_name,
        description,
        API_KEY,
        "api_key",
        &[],
    )
}

const CONNECTION_STRING: &[FieldSpec] = &[secret(
    "connection_string",
    "Connection URL or key=value string, including the credentials.",
    REQUIRED,
)];

/// A database reached through one connection string.
const fn database(
    id: &'static str,
    display_name: &'static str,
    description: &'static str,
) -> TypeSpec {
    ty(
        id,
        DataWarehouse,
        display_name,
        description,
        CONNECTION_STRING,
        "connection_string",
        &[],
    )
}

const BEDROCK: &[FieldSpec] = &[
    secret(
        "access_key_id",
        "AWS access key id, e.g. AKIA....",
        REQUIRED,
    ),
    secret(
        "secret_access_key",
        "AWS secret access key paired with the access key id.",
        REQUIRED,
    ),
    plain(
        "region",
        "AWS region hosting the models, e.g. us-east-1.",
        REQUIRED,
    ),
    secret(
        "session_token",
        "Session token, for temporary STS credentials only.",
        OPTIONAL,
    ),
];

const BIGQUERY: &[FieldSpec] = &[
    secret(
        "service_account_json",
        "The service account key file, as JSON.",
        REQUIRED,
    ),
    plain(
        "project_id",
        "Project to bill queries to, when not the service account's own.",
        OPTIONAL,
    ),
];

const SNOWFLAKE: &[FieldSpec] = &[
    plain(
        "account",
        "Account identifier, e.g. myorg-myaccount.",
        REQUIRED,
    ),
    plain("username", "Login name of the user.", REQUIRED),
    secret(
        "password",
        "Password, for password authentication.",
        OPTIONAL,
    ),
    secret(
        "private_key",
        "PEM private key, for key-pair authentication.",
        OPTIONAL,
    ),
    plain("warehouse", "Default virtual warehouse.", OPTIONAL),
    plain("database", "Default database.", OPTIONAL),
    plain("schema", "Default schema.", OPTIONAL),
    plain("role", "Role to assume after login.", OPTIONAL),
];

const STATIC_FILE: &[FieldSpec] = &[secret(
    "url",
    "URL of the file; secret because signed URLs carry access tokens.",
    REQUIRED,
)];

const TOOL_API_KEY: &[FieldSpec] = &[
    secret("api_key", "The API key.", REQUIRED),
    plain(
        "endpoint",
        "HTTPS URL of the service, which a validator may probe.",
        OPTIONAL,
    ),
    plain(
        "header_name",
        "HTTP header carrying the key, e.g. Authorization.",
        OPTIONAL,
    ),
];

const OAUTH: &[FieldSpec] = &[
    secret("access_token", "Current access token.", OPTIONAL),
    secret(
        "refresh_token",
        "Refresh token, to obtain new access tokens.",
        OPTIONAL,
    ),
    plain("client_id", "OAuth client id.", OPTIONAL),
    secret("client_secret", "OAuth client secret.", OPTIONAL),
    plain("token_url", "Token endpoint used to refresh.", OPTIONAL),
    plain("scopes", "Granted scopes, space-separated.", OPTIONAL),
];

const TOOL_DATABASE: &[FieldSpec] = &[
    choice(
        "schema_type",
        "The database engine.",
        REQUIRED,
        &[
            "postgresql",
            "mysql",
            "redshift",
            "mssql",
            "clickhouse",
            "bigquery",
            "snowflake",
        ],
    ),
    secret(
        "connection_string",
        "Connection URL or key=value string, including the credentials.",
        REQUIRED,
    ),
];

const SMTP: &[FieldSpec] = &[
    plain("host", "SMTP server host name.", REQUIRED),
    plain("port", "SMTP server port, e.g. 587.", OPTIONAL),
    plain("username", "Login name.", REQUIRED),
    secret("password", "Login password.", REQUIRED),
    choice(
        "security",
        "Transport security: starttls, tls or none.",
        OPTIONAL,
        &["starttls", "tls", "none"],
    ),
    plain("from_address", "Default sender address.", OPTIONAL),
];

use Category::{DataWarehouse, Image, Llm, Speech, Tools, Video};

// Kept sorted by category then id; a test checks it.
static TYPES: [TypeSpec; 46] = [
    keyed(
        "anthropic",
        Llm,
        "Anthropic",
        "Anthropic API (Claude models).",
    ),
    ty(
        "bedrock",
        Llm,
        "Amazon Bedrock",
        "Amazon Bedrock, authenticated with AWS IAM access keys.",
        BEDROCK,
        "access_key_id",
        &[],
    ),
    keyed("cerebras", Llm, "Cerebras", "Cerebras inference API."),
    keyed("chutes", Llm, "Chutes", "Chutes inference API."),
    keyed(
        "cohere",
        Llm,
        "Cohere",
        "Cohere API (Command, Embed, Rerank).",
    ),
    keyed(
        "dashscope",
        Llm,
        "Alibaba DashScope",
        "Alibaba Cloud DashScope API (Qwen models).",
    ),
    keyed("deepinfra", Llm, "DeepInfra", "DeepInfra inference API."),
    keyed("deepseek", Llm, "DeepSeek", "DeepSeek API."),
    keyed(
        "fireworks",
        Llm,
        "Fireworks AI",
        "Fireworks AI inference API.",
    ),
    keyed("friendli", Llm, "FriendliAI", "FriendliAI inference API."),
    keyed(
        "gemini",
        Llm,
        "Google Gemini",
        "Google Gemini API (AI Studio key).",
    ),
    keyed("groq", Llm, "Groq", "Groq inference API."),
    keyed(
        "huggingface",
        Llm,
        "Hugging Face",
        "Hugging Face access token for inference and the Hub.",
    ),
    keyed("hyperbolic", Llm, "Hyperbolic", "Hyperbolic inference API."),
    keyed("mistral", Llm, "Mistral AI", "Mistral AI API."),
    keyed(
        "moonshot",
        Llm,
        "Moonshot AI",
        "Moonshot AI API (Kimi models).",
    ),
    keyed("novita", Llm, "Novita AI", "Novita AI inference API."),
    keyed(
        "openai",
        Llm,
        "OpenAI",
        "OpenAI API (GPT models, embeddings).",
    ),
    keyed(
        "openrouter",
        Llm,
        "OpenRouter",
        "OpenRouter, one API routing to many model providers.",
    ),
    keyed(
        "perplexity",
        Llm,
        "Perplexity",
        "Perplexity API (Sonar models).",
    ),
    keyed(
        "sambanova",
        Llm,
        "SambaNova",
        "SambaNova Cloud inference API.",
    ),
    keyed(
        "together_ai",
        Llm,
        "Together AI",
        "Together AI inference API.",
    ),
    keyed("xai", Llm, "xAI", "xAI API (Grok models)."),
    keyed("zai", Llm, "Z.ai", "Z.ai API (GLM models)."),
    keyed(
        "deepgram",
        Speech,
        "Deepgram",
        "Deepgram speech-to-text API.",
    ),
    keyed(
        "elevenlabs",
        Speech,
        "ElevenLabs",
        "ElevenLabs text-to-speech and voice API.",
    ),
    keyed(
        "openai_audio",
        Speech,
        "OpenAI Audio",
        "OpenAI audio API (transcription, text-to-speech).",
    ),
    keyed("fal", Image, "fal.ai", "fal.ai generative media API."),
    keyed(
        "openai_image",
        Image,
        "OpenAI Images",
        "OpenAI image generation API.",
    ),
    keyed(
        "replicate",
        Image,
        "Replicate",
        "Replicate API for hosted models.",
    ),
    keyed(
        "stability",
        Image,
        "Stability AI",
        "Stability AI image generation API.",
    ),
    keyed("luma", Video, "Luma AI", "Luma AI Dream Machine video API."),
    keyed("pika", Video, "Pika", "Pika video generation API."),
    keyed("runway", Video, "Runway", "Runway video generation API."),
    ty(
        "bigquery",
        DataWarehouse,
        "BigQuery",
        "Google BigQuery, authenticated with a service account key.",
        BIGQUERY,
        "service_account_json",
        &[],
    ),
    database("clickhouse", "ClickHouse", "ClickHouse database."),
    database(
        "mssql",
        "Microsoft SQL Server",
        "Microsoft SQL Server or Azure SQL Database.",
    ),
    database("mysql", "MySQL", "MySQL or MariaDB database."),
    database(
        "postgresql",
        "PostgreSQL",
        "PostgreSQL database, as a URL or libpq key=value string.",
    ),
    database(
        "redshift",
        "Amazon Redshift",
        "Amazon Redshift cluster or serverless workgroup.",
    ),
    ty(
        "snowflake",
        DataWarehouse,
        "Snowflake",
        "Snowflake, authenticated with a password or a key pair.",
        SNOWFLAKE,
        "password",
        &["password", "private_key"],
    ),
    ty(
        "static_file",
        DataWarehouse,
        "Static file",
        "A data file (CSV, Parquet, JSON) fetched from a URL.",
        STATIC_FILE,
        "url",
        &[],
    ),
    ty(
        "api_key",
        Tools,
        "API key",
        "A generic API key for a tool or HTTP service.",
        TOOL_API_KEY,
        "api_key",
        &[],
    ),
    ty(
        "database",
        Tools,
        "Database",
        "A database a tool connects to, of a stated engine.",
        TOOL_DATABASE,
        "connection_string",
        &[],
    ),
    ty(
        "oauth",
        Tools,
        "OAuth",
        "OAuth 2.0 tokens and client credentials for a tool.",
        OAUTH,
        "access_token",
        &["access_token", "refresh_token"],
    ),
    ty(
        "smtp",
        Tools,
        "SMTP",
        "An SMTP server for sending email.",
        SMTP,
        "password",
        &[],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn ids_are_unique_and_sorted_by_category_then_id() {
        let keys: Vec<_> = all().iter().map(|t| (t.category, t.id)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        let ids: BTreeSet<_> = all().iter().map(|t| t.id).collect();
        assert_eq!(ids.len(), all().len());
    }

    #[test]
    fn every_listed_type_is_present_in_its_category() {
        let expected: &[(Category, &[&str])] = &[
            (
                Category::Llm,
                &[
                    "openai",
                    "anthropic",
                    "gemini",
                    "deepseek",
                    "fireworks",
                    "xai",
                    "openrouter",
                    "together_ai",
                    "mistral",
                    "cohere",
                    "groq",
                    "perplexity",
                    "bedrock",
                    "cerebras",
                    "sambanova",
                    "hyperbolic",
                    "deepinfra",
                    "novita",
                    "friendli",
                    "chutes",
                    "zai",
                    "moonshot",
                    "dashscope",
                    "huggingface",
                ],
            ),
            (
                Category::Speech,
                &["elevenlabs", "deepgram", "openai_audio"],
            ),
            (
                Category::Image,
                &["fal", "replicate", "stability", "openai_image"],
            ),
            (Category::Video, &["runway", "pika", "luma"]),
            (
                Category::DataWarehouse,
                &[
                    "postgresql",
                    "mysql",
                    "bigquery",
                    "snowflake",
                    "redshift",
                    "mssql",
                    "clickhouse",
                    "static_file",
                ],
            ),
            (Category::Tools, &["api_key", "oauth", "database", "smtp"]),
        ];
        let mut count = 0;
        for (category, ids) in expected {
            for id in *ids {
                assert_eq!(lookup(id).map(|t| t.category), Some(*category), "{id}");
                count += 1;
            }
        }
        assert_eq!(count, all().len());
    }

    #[test]
    fn field_references_name_fields_of_their_type() {
        for t in all() {
            assert!(t.field(t.primary_field).is_some(), "{}", t.id);
            for name in t.requires_one_of {
                assert!(t.field(name).is_some(), "{}.{name}", t.id);
            }
            let names: BTreeSet<_> = t.fields.iter().map(|f| f.name).collect();
            assert_eq!(names.len(), t.fields.len(), "{}", t.id);
            assert!(!t.description.is_empty() && !t.display_name.is_empty());
            assert!(t.fields.iter().all(|f| !f.description.is_empty()));
        }
    }

    #[test]
    fn capabilities_are_what_the_probes_do() {
        let flags = |id| {
            let t = lookup(id).unwrap();
            (t.supports_validation, t.supports_schema_discovery)
        };
        assert_eq!(flags("openai"), (true, false));
        assert_eq!(flags("bedrock"), (true, false));
        assert_eq!(flags("smtp"), (true, false));
        assert_eq!(flags("postgresql"), (true, true));
        assert_eq!(flags("clickhouse"), (true, true));
        assert_eq!(flags("database"), (true, true));
        assert_eq!(flags("bigquery"), (true, false));
        assert_eq!(flags("pika"), (false, false));
        assert_eq!(flags("mssql"), (false, false));
        assert_eq!(
            all().iter().filter(|t| t.supports_schema_discovery).count(),
            5
        );
        assert_eq!(all().iter().filter(|t| !t.supports_validation).count(), 2);
    }

    #[test]
    fn lookup_finds_known_ids_only() {
        let bedrock = lookup("bedrock").unwrap();
        assert_eq!(bedrock.primary_field, "access_key_id");
        assert!(!bedrock.field("region").unwrap().secret);
        assert!(lookup("OpenAI").is_none());
        assert!(lookup("").is_none());
        assert!(bedrock.field("api_key").is_none());
    }

    #[test]
    fn categories_round_trip() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
        }
        assert_eq!(
            Category::parse("data_warehouse"),
            Some(Category::DataWarehouse)
        );
        assert_eq!(Category::parse("LLM"), None);
    }
}
