//! The entries of the catalogue: field tables and one [`TypeSpec`] per type, sorted by category
//! then id.

use super::{
    Attach, Category, Engine, ErrorDialect, FieldSpec, Format, KeyRead, Probe, Role, TypeSpec,
    VectorStore,
};

const REQUIRED: bool = true;
const OPTIONAL: bool = false;
const HTTP_URL: Format = Format::Url(&["https", "http"]);

const fn secret(name: &'static str, description: &'static str, required: bool) -> FieldSpec {
    FieldSpec::new(name, description, required, Role::Secret, Format::Text)
}

const fn identity(name: &'static str, description: &'static str, required: bool) -> FieldSpec {
    FieldSpec::new(name, description, required, Role::Identity, Format::Text)
}

const fn destination(
    name: &'static str,
    description: &'static str,
    required: bool,
    format: Format,
) -> FieldSpec {
    FieldSpec::new(name, description, required, Role::Destination, format)
}

const fn option(name: &'static str, description: &'static str, required: bool) -> FieldSpec {
    FieldSpec::new(name, description, required, Role::Option, Format::Text)
}

const fn choice(
    name: &'static str,
    description: &'static str,
    required: bool,
    allowed_values: &'static [&'static str],
) -> FieldSpec {
    FieldSpec::new(
        name,
        description,
        required,
        Role::Option,
        Format::OneOf(allowed_values),
    )
}

pub(super) const API_KEY: &[FieldSpec] = &[api_key_field()];

/// The one field of a single-key provider's value.
const fn api_key_field() -> FieldSpec {
    secret("api_key", "API key issued by the provider.", REQUIRED).shows_ends()
}

/// [`API_KEY`]'s field under the product's name for it, e.g. `openAIApiKey`.
const fn api_key(alias: &'static str) -> FieldSpec {
    api_key_field().with_alias(alias)
}

impl TypeSpec {
    /// Named as the product (Flowise) names it: the type's `credentialName` and its one key
    /// field, built with [`api_key`] (a field table of its own, since the alias differs per type).
    const fn known_as(self, alias: &'static str, key: &'static [FieldSpec]) -> TypeSpec {
        self.with_alias(alias).fields(key, "api_key")
    }
}

/// A provider authenticated by a single API key, probed and attached as given.
const fn keyed(
    id: &'static str,
    category: Category,
    display_name: &'static str,
    description: &'static str,
    probe: Probe,
    attach: Attach,
) -> TypeSpec {
    TypeSpec::new(id, category, display_name, description)
        .probe(probe)
        .attach(attach)
}

/// An OpenAI-compatible provider at this base URL, with a bearer key.
const fn openai_compatible(
    id: &'static str,
    category: Category,
    display_name: &'static str,
    description: &'static str,
    base_url: &'static str,
) -> TypeSpec {
    keyed(
        id,
        category,
        display_name,
        description,
        Probe::OpenAiCompatible { base_url },
        Attach::Bearer,
    )
}

/// A [`Probe::KeyRead`] without fixed headers, read the common way.
const fn read(base_url: &'static str, path: &'static str) -> KeyRead {
    KeyRead {
        base_url,
        path,
        headers: &[],
        errors: ErrorDialect::Common,
        body: None,
        discovery: None,
    }
}

/// [`Probe::KeyReadAt`]: `read` under the URL of the value's `url` field.
const fn at_url(read: KeyRead) -> Probe {
    Probe::KeyReadAt {
        url_field: "url",
        read,
    }
}

const fn connection_string(engine: Engine) -> FieldSpec {
    secret(
        "connection_string",
        "Connection URL or key=value string, including the credentials.",
        REQUIRED,
    )
    .formatted(Format::ConnectionString(engine))
}

const POSTGRESQL: &[FieldSpec] = &[connection_string(Engine::PostgreSql)];
const MYSQL: &[FieldSpec] = &[connection_string(Engine::MySql)];
const REDSHIFT: &[FieldSpec] = &[connection_string(Engine::Redshift)];
const MSSQL: &[FieldSpec] = &[connection_string(Engine::MsSql)];
const CLICKHOUSE: &[FieldSpec] = &[connection_string(Engine::ClickHouse)];

/// A database of `engine` reached through one connection string in `fields`.
const fn database(
    id: &'static str,
    engine: Engine,
    fields: &'static [FieldSpec],
    display_name: &'static str,
    description: &'static str,
) -> TypeSpec {
    TypeSpec::new(id, DataWarehouse, display_name, description)
        .fields(fields, "connection_string")
        .probe(Probe::Database(engine))
}

const BEDROCK: &[FieldSpec] = &[
    secret(
        "access_key_id",
        "AWS access key id, e.g. AKIA....",
        REQUIRED,
    )
    .shows_ends()
    .with_alias("awsKey"),
    secret(
        "secret_access_key",
        "AWS secret access key paired with the access key id.",
        REQUIRED,
    )
    .with_alias("awsSecret"),
    destination(
        "region",
        "AWS region hosting the models, e.g. us-east-1.",
        REQUIRED,
        Format::Region,
    ),
    secret(
        "session_token",
        "Session token, for temporary STS credentials only.",
        OPTIONAL,
    )
    .with_alias("awsSession"),
];

const BIGQUERY: &[FieldSpec] = &[
    // The key file names its own token endpoint (token_uri): a destination inside the secret.
    secret(
        "service_account_json",
        "The service account key file, as JSON.",
        REQUIRED,
    )
    .formatted(Format::Json(&["client_email", "private_key"])),
    option(
        "project_id",
        "Project to bill queries to, when not the service account's own.",
        OPTIONAL,
    ),
];

const SNOWFLAKE: &[FieldSpec] = &[
    destination(
        "account",
        "Account identifier, e.g. myorg-myaccount.",
        REQUIRED,
        Format::Account,
    ),
    identity("username", "Login name of the user.", REQUIRED),
    secret(
        "password",
        "Password, for password authentication.",
        OPTIONAL,
    ),
    secret(
        "private_key",
        "PEM private key, for key-pair authentication.",
        OPTIONAL,
    )
    .formatted(Format::Pem),
    option("warehouse", "Default virtual warehouse.", OPTIONAL),
    option("database", "Default database.", OPTIONAL),
    option("schema", "Default schema.", OPTIONAL),
    option("role", "Role to assume after login.", OPTIONAL),
];

const STATIC_FILE: &[FieldSpec] = &[secret(
    "url",
    "URL of the file; secret because signed URLs carry access tokens.",
    REQUIRED,
)
.formatted(HTTP_URL)];

const TOOL_API_KEY: &[FieldSpec] = &[
    secret("api_key", "The API key.", REQUIRED).shows_ends(),
    destination(
        "endpoint",
        "HTTPS URL of the service, which a validator may probe.",
        OPTIONAL,
        HTTP_URL,
    ),
    FieldSpec::new(
        "header_name",
        "HTTP header carrying the key, e.g. Authorization.",
        OPTIONAL,
        Role::Option,
        Format::HeaderName,
    ),
];

const OAUTH: &[FieldSpec] = &[
    secret("access_token", "Current access token.", OPTIONAL),
    secret(
        "refresh_token",
        "Refresh token, to obtain new access tokens.",
        OPTIONAL,
    ),
    identity("client_id", "OAuth client id.", OPTIONAL),
    secret("client_secret", "OAuth client secret.", OPTIONAL),
    destination(
        "token_url",
        "Token endpoint used to refresh.",
        OPTIONAL,
        HTTP_URL,
    ),
    option("scopes", "Granted scopes, space-separated.", OPTIONAL),
];

const TOOL_DATABASE: &[FieldSpec] = &[
    choice(
        "schema_type",
        "The database engine.",
        REQUIRED,
        // Engine::ALL's names, in its order; a test keeps them equal.
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
    )
    .formatted(Format::ConnectionStringOf("schema_type")),
];

const SMTP: &[FieldSpec] = &[
    destination("host", "SMTP server host name.", REQUIRED, Format::Host),
    destination(
        "port",
        "SMTP server port, e.g. 587.",
        OPTIONAL,
        Format::Port,
    ),
    identity("username", "Login name.", REQUIRED),
    secret("password", "Login password.", REQUIRED),
    choice(
        "security",
        "Transport security: starttls, tls or none.",
        OPTIONAL,
        &["starttls", "tls", "none"],
    ),
    option("from_address", "Default sender address.", OPTIONAL).formatted(Format::Email),
];

/// The instance URL of a self-hosted or cloud vector store.
const fn instance_url(example: &'static str) -> FieldSpec {
    destination("url", example, REQUIRED, HTTP_URL)
}

const PINECONE: &[FieldSpec] = &[
    secret("api_key", "Pinecone API key.", REQUIRED)
        .shows_ends()
        .with_alias("pineconeApiKey"),
    destination(
        "environment",
        "Legacy pod-based environment, e.g. us-west1-gcp; serverless projects need none (the \
         control plane api.pinecone.io serves every project).",
        OPTIONAL,
        Format::Region,
    )
    .with_alias("pineconeEnv"),
];

const QDRANT: &[FieldSpec] = &[
    secret(
        "api_key",
        "Qdrant API key (or a JWT of granular access).",
        REQUIRED,
    )
    .shows_ends()
    .with_alias("qdrantApiKey"),
    instance_url("URL of the Qdrant instance's REST API, e.g. https://xyz.cloud.qdrant.io:6333."),
];

const WEAVIATE: &[FieldSpec] = &[
    secret("api_key", "Weaviate API key.", REQUIRED)
        .shows_ends()
        .with_alias("weaviateApiKey"),
    instance_url("URL of the Weaviate instance, e.g. https://xyz.weaviate.cloud."),
];

const MILVUS: &[FieldSpec] = &[
    instance_url("URL of the Milvus (or Zilliz Cloud) endpoint, e.g. http://milvus:19530."),
    identity("username", "Milvus user; empty for an API key.", OPTIONAL).with_alias("milvusUser"),
    secret(
        "password",
        "The user's password, or a Zilliz Cloud API key when no user is given.",
        REQUIRED,
    )
    .with_alias("milvusPassword"),
];

const CHROMA: &[FieldSpec] = &[
    secret("api_key", "Chroma token (Chroma Cloud API key).", REQUIRED)
        .shows_ends()
        .with_alias("chromaApiKey"),
    instance_url("URL of the Chroma server, e.g. https://api.trychroma.com."),
    option("tenant", "Tenant, default_tenant when empty.", OPTIONAL).with_alias("chromaTenant"),
    option(
        "database",
        "Database, default_database when empty.",
        OPTIONAL,
    )
    .with_alias("chromaDatabase"),
];

const AIRTABLE: &[FieldSpec] = &[secret(
    "access_token",
    "Airtable personal access token (pat...).",
    REQUIRED,
)
.shows_ends()
.with_alias("accessToken")];

const NOTION: &[FieldSpec] = &[secret(
    "token",
    "Notion integration token (ntn_... or secret_...).",
    REQUIRED,
)
.shows_ends()
.with_alias("notionIntegrationToken")];

const CONFLUENCE: &[FieldSpec] = &[
    destination(
        "site_url",
        "The Confluence Cloud site, e.g. https://your-domain.atlassian.net.",
        REQUIRED,
        Format::Url(&["https"]),
    ),
    FieldSpec::new(
        "email",
        "Email address of the Atlassian account the token belongs to.",
        REQUIRED,
        Role::Identity,
        Format::Email,
    )
    .with_alias("username"),
    secret(
        "api_token",
        "Atlassian API token of that account.",
        REQUIRED,
    )
    .with_alias("accessToken"),
];

use Category::VectorStore as Vectors;
use Category::{DataWarehouse, Image, Llm, Speech, Tools, Video};
use Probe::KeyRead as Reads;

// Kept sorted by category then id; a test checks it.
pub(super) static TYPES: &[TypeSpec] = &[
    keyed(
        "anthropic",
        Llm,
        "Anthropic",
        "Anthropic API (Claude models).",
        Reads(KeyRead {
            headers: &[("anthropic-version", "2023-06-01")],
            ..read("https://api.anthropic.com/v1", "/models?limit=1")
        }),
        Attach::Header("x-api-key"),
    )
    .known_as("anthropicApi", &[api_key("anthropicApiKey")]),
    TypeSpec::new(
        "bedrock",
        Llm,
        "Amazon Bedrock",
        "Amazon Bedrock, authenticated with AWS IAM access keys.",
    )
    .fields(BEDROCK, "access_key_id")
    .primary_secret("secret_access_key")
    .with_alias("awsApi")
    // Every valid AWS key may call GetCallerIdentity.
    .probe(Probe::AwsCallerIdentity {
        base_url: "https://sts.{region}.amazonaws.com",
    })
    .attach(Attach::SigV4 { service: "bedrock" }),
    openai_compatible(
        "cerebras",
        Llm,
        "Cerebras",
        "Cerebras inference API.",
        "https://api.cerebras.ai/v1",
    )
    .known_as("cerebrasAIApi", &[api_key("cerebrasApiKey")]),
    openai_compatible(
        "chutes",
        Llm,
        "Chutes",
        "Chutes inference API.",
        "https://llm.chutes.ai/v1",
    ),
    keyed(
        "cohere",
        Llm,
        "Cohere",
        "Cohere API (Command, Embed, Rerank).",
        Reads(read("https://api.cohere.com/v1", "/models?page_size=1")),
        Attach::Bearer,
    )
    .known_as("cohereApi", &[api_key("cohereApiKey")]),
    openai_compatible(
        "dashscope",
        Llm,
        "Alibaba DashScope",
        "Alibaba Cloud DashScope API (Qwen models).",
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
    ),
    openai_compatible(
        "deepinfra",
        Llm,
        "DeepInfra",
        "DeepInfra inference API.",
        "https://api.deepinfra.com/v1/openai",
    ),
    openai_compatible(
        "deepseek",
        Llm,
        "DeepSeek",
        "DeepSeek API.",
        "https://api.deepseek.com",
    )
    .known_as("deepseekApi", &[api_key("deepseekApiKey")]),
    openai_compatible(
        "fireworks",
        Llm,
        "Fireworks AI",
        "Fireworks AI inference API.",
        "https://api.fireworks.ai/inference/v1",
    )
    .known_as("fireworksApi", &[api_key("fireworksApiKey")]),
    openai_compatible(
        "friendli",
        Llm,
        "FriendliAI",
        "FriendliAI inference API.",
        "https://api.friendli.ai/serverless/v1",
    ),
    keyed(
        "gemini",
        Llm,
        "Google Gemini",
        "Google Gemini API (AI Studio key).",
        Reads(KeyRead {
            errors: ErrorDialect::Google,
            ..read(
                "https://generativelanguage.googleapis.com/v1beta",
                "/models?pageSize=1",
            )
        }),
        Attach::Header("x-goog-api-key"),
    )
    .known_as("googleGenAIApi", &[api_key("googleGenerativeAPIKey")]),
    openai_compatible(
        "groq",
        Llm,
        "Groq",
        "Groq inference API.",
        "https://api.groq.com/openai/v1",
    )
    .known_as("groqApi", &[api_key("groqApiKey")]),
    keyed(
        "huggingface",
        Llm,
        "Hugging Face",
        "Hugging Face access token for inference and the Hub.",
        Reads(read("https://huggingface.co/api", "/whoami-v2")),
        Attach::Bearer,
    )
    .known_as("huggingFaceApi", &[api_key("huggingFaceApiKey")]),
    openai_compatible(
        "hyperbolic",
        Llm,
        "Hyperbolic",
        "Hyperbolic inference API.",
        "https://api.hyperbolic.xyz/v1",
    ),
    openai_compatible(
        "mistral",
        Llm,
        "Mistral AI",
        "Mistral AI API.",
        "https://api.mistral.ai/v1",
    )
    .known_as("mistralAIApi", &[api_key("mistralAIAPIKey")]),
    openai_compatible(
        "moonshot",
        Llm,
        "Moonshot AI",
        "Moonshot AI API (Kimi models).",
        "https://api.moonshot.ai/v1",
    ),
    openai_compatible(
        "novita",
        Llm,
        "Novita AI",
        "Novita AI inference API.",
        "https://api.novita.ai/v3/openai",
    ),
    openai_compatible(
        "openai",
        Llm,
        "OpenAI",
        "OpenAI API (GPT models, embeddings).",
        "https://api.openai.com/v1",
    )
    .known_as("openAIApi", &[api_key("openAIApiKey")]),
    keyed(
        "openrouter",
        Llm,
        "OpenRouter",
        "OpenRouter, one API routing to many model providers.",
        // Its /models answers without a key, so it proves nothing; /key describes the key.
        Reads(read("https://openrouter.ai/api/v1", "/key")),
        Attach::Bearer,
    )
    .known_as("openRouterApi", &[api_key("openRouterApiKey")]),
    keyed(
        "perplexity",
        Llm,
        "Perplexity",
        "Perplexity API (Sonar models).",
        // No models endpoint is documented; listing the caller's async jobs is the cheapest
        // documented authenticated read.
        Reads(read(
            "https://api.perplexity.ai",
            "/async/chat/completions?limit=1",
        )),
        Attach::Bearer,
    ),
    openai_compatible(
        "sambanova",
        Llm,
        "SambaNova",
        "SambaNova Cloud inference API.",
        "https://api.sambanova.ai/v1",
    ),
    openai_compatible(
        "together_ai",
        Llm,
        "Together AI",
        "Together AI inference API.",
        "https://api.together.xyz/v1",
    )
    .known_as("togetherAIApi", &[api_key("togetherAIApiKey")]),
    openai_compatible(
        "xai",
        Llm,
        "xAI",
        "xAI API (Grok models).",
        "https://api.x.ai/v1",
    )
    .known_as("xaiApi", &[api_key("xaiApiKey")]),
    openai_compatible(
        "zai",
        Llm,
        "Z.ai",
        "Z.ai API (GLM models).",
        "https://api.z.ai/api/paas/v4",
    ),
    keyed(
        "deepgram",
        Speech,
        "Deepgram",
        "Deepgram speech-to-text API.",
        Reads(read("https://api.deepgram.com/v1", "/projects")),
        Attach::Scheme("Token"),
    ),
    keyed(
        "elevenlabs",
        Speech,
        "ElevenLabs",
        "ElevenLabs text-to-speech and voice API.",
        Reads(KeyRead {
            errors: ErrorDialect::ElevenLabs,
            ..read("https://api.elevenlabs.io/v1", "/user")
        }),
        Attach::Header("xi-api-key"),
    )
    .known_as("elevenLabsApi", &[api_key("elevenLabsApiKey")]),
    openai_compatible(
        "openai_audio",
        Speech,
        "OpenAI Audio",
        "OpenAI audio API (transcription, text-to-speech).",
        "https://api.openai.com/v1",
    ),
    keyed(
        "fal",
        Image,
        "fal.ai",
        "fal.ai generative media API.",
        // The Platform API documents its pricing endpoint as requiring a key (its model list
        // does not), so a price lookup for one public model is the cheapest real check.
        Reads(read(
            "https://api.fal.ai/v1",
            "/models/pricing?endpoint_id=fal-ai/flux/dev",
        )),
        Attach::Scheme("Key"),
    ),
    openai_compatible(
        "openai_image",
        Image,
        "OpenAI Images",
        "OpenAI image generation API.",
        "https://api.openai.com/v1",
    ),
    keyed(
        "replicate",
        Image,
        "Replicate",
        "Replicate API for hosted models.",
        Reads(read("https://api.replicate.com/v1", "/account")),
        Attach::Bearer,
    )
    .known_as("replicateApi", &[api_key("replicateApiKey")]),
    keyed(
        "stability",
        Image,
        "Stability AI",
        "Stability AI image generation API.",
        Reads(read("https://api.stability.ai/v1", "/user/account")),
        Attach::Bearer,
    ),
    keyed(
        "luma",
        Video,
        "Luma AI",
        "Luma AI Dream Machine video API.",
        Reads(read(
            "https://api.lumalabs.ai/dream-machine/v1",
            "/generations?limit=1",
        )),
        Attach::Bearer,
    ),
    keyed(
        "pika",
        Video,
        "Pika",
        "Pika video generation API.",
        Probe::Unsupported("Pika has no public API to check a key against"),
        // Without a public API there is nothing to attach the key to.
        Attach::NotHttp,
    ),
    keyed(
        "runway",
        Video,
        "Runway",
        "Runway video generation API.",
        Reads(KeyRead {
            headers: &[("x-runway-version", "2024-11-06")],
            ..read("https://api.dev.runwayml.com/v1", "/organization")
        }),
        Attach::Bearer,
    ),
    TypeSpec::new(
        "bigquery",
        DataWarehouse,
        "BigQuery",
        "Google BigQuery, authenticated with a service account key.",
    )
    .fields(BIGQUERY, "service_account_json")
    .probe(Probe::ServiceAccountToken),
    database(
        "clickhouse",
        Engine::ClickHouse,
        CLICKHOUSE,
        "ClickHouse",
        "ClickHouse database.",
    ),
    database(
        "mssql",
        Engine::MsSql,
        MSSQL,
        "Microsoft SQL Server",
        "Microsoft SQL Server or Azure SQL Database.",
    ),
    database(
        "mysql",
        Engine::MySql,
        MYSQL,
        "MySQL",
        "MySQL or MariaDB database.",
    ),
    database(
        "postgresql",
        Engine::PostgreSql,
        POSTGRESQL,
        "PostgreSQL",
        "PostgreSQL database, as a URL or libpq key=value string.",
    ),
    database(
        "redshift",
        Engine::Redshift,
        REDSHIFT,
        "Amazon Redshift",
        "Amazon Redshift cluster or serverless workgroup.",
    ),
    TypeSpec::new(
        "snowflake",
        DataWarehouse,
        "Snowflake",
        "Snowflake, authenticated with a password or a key pair.",
    )
    .fields(SNOWFLAKE, "password")
    .requires_one_of(&["password", "private_key"])
    .probe(Probe::SnowflakeLogin {
        base_url: "https://{account}.snowflakecomputing.com",
    }),
    TypeSpec::new(
        "static_file",
        DataWarehouse,
        "Static file",
        "A data file (CSV, Parquet, JSON) fetched from a URL.",
    )
    .fields(STATIC_FILE, "url")
    .probe(Probe::ReadableUrl),
    TypeSpec::new(
        "chroma",
        Vectors,
        "Chroma",
        "Chroma vector database (self-hosted or Chroma Cloud).",
    )
    .fields(CHROMA, "api_key")
    .with_alias("chromaApi")
    // The identity endpoint answers who the token is without reading any collection.
    .probe(at_url(KeyRead {
        discovery: Some(VectorStore::Chroma),
        ..read("", "/api/v2/auth/identity")
    }))
    .attach(Attach::Header("x-chroma-token")),
    TypeSpec::new(
        "milvus",
        Vectors,
        "Milvus",
        "Milvus vector database (or Zilliz Cloud), through its REST API.",
    )
    .fields(MILVUS, "password")
    .with_alias("milvusApi")
    // REST v2 reads with POSTs; listing collections is its cheapest authenticated read.
    .probe(at_url(KeyRead {
        body: Some("{}"),
        errors: ErrorDialect::Milvus,
        discovery: Some(VectorStore::Milvus),
        ..read("", "/v2/vectordb/collections/list")
    }))
    .attach(Attach::BearerUserKey("username")),
    TypeSpec::new("pinecone", Vectors, "Pinecone", "Pinecone vector database.")
        .fields(PINECONE, "api_key")
        .with_alias("pineconeApi")
        // The control plane's index list; the version pins the answer's shape.
        .probe(Reads(KeyRead {
            headers: &[("x-pinecone-api-version", "2025-04")],
            discovery: Some(VectorStore::Pinecone),
            ..read("https://api.pinecone.io", "/indexes")
        }))
        .attach(Attach::Header("api-key")),
    TypeSpec::new(
        "qdrant",
        Vectors,
        "Qdrant",
        "Qdrant vector database (self-hosted or Qdrant Cloud).",
    )
    .fields(QDRANT, "api_key")
    .with_alias("qdrantApi")
    .probe(at_url(KeyRead {
        discovery: Some(VectorStore::Qdrant),
        ..read("", "/collections")
    }))
    .attach(Attach::Header("api-key")),
    TypeSpec::new(
        "weaviate",
        Vectors,
        "Weaviate",
        "Weaviate vector database (self-hosted or Weaviate Cloud).",
    )
    .fields(WEAVIATE, "api_key")
    .with_alias("weaviateApi")
    // /v1/meta may answer anonymous callers; the schema needs an accepted key.
    .probe(at_url(KeyRead {
        discovery: Some(VectorStore::Weaviate),
        ..read("", "/v1/schema")
    }))
    .attach(Attach::Bearer),
    TypeSpec::new(
        "airtable",
        Tools,
        "Airtable",
        "Airtable personal access token.",
    )
    .fields(AIRTABLE, "access_token")
    .with_alias("airtableApi")
    .probe(Reads(read("https://api.airtable.com/v0", "/meta/whoami")))
    .attach(Attach::Bearer),
    TypeSpec::new(
        "api_key",
        Tools,
        "API key",
        "A generic API key for a tool or HTTP service.",
    )
    .fields(TOOL_API_KEY, "api_key")
    .probe(Probe::KeyAtEndpoint)
    .attach(Attach::HeaderNamedBy("header_name")),
    TypeSpec::new(
        "confluence",
        Tools,
        "Confluence",
        "Confluence Cloud, with an Atlassian account's email and API token.",
    )
    .fields(CONFLUENCE, "api_token")
    .with_alias("confluenceApi")
    .probe(Probe::KeyReadAt {
        url_field: "site_url",
        read: read("", "/wiki/rest/api/user/current"),
    })
    .attach(Attach::BasicUser("email")),
    TypeSpec::new(
        "database",
        Tools,
        "Database",
        "A database a tool connects to, of a stated engine.",
    )
    .fields(TOOL_DATABASE, "connection_string")
    .probe(Probe::DatabaseOfField("schema_type")),
    TypeSpec::new("notion", Tools, "Notion", "Notion integration token.")
        .fields(NOTION, "token")
        .with_alias("notionApi")
        .probe(Reads(KeyRead {
            headers: &[("notion-version", "2022-06-28")],
            ..read("https://api.notion.com/v1", "/users/me")
        }))
        .attach(Attach::Bearer),
    TypeSpec::new(
        "oauth",
        Tools,
        "OAuth",
        "OAuth 2.0 tokens and client credentials for a tool.",
    )
    .fields(OAUTH, "access_token")
    .requires_one_of(&["access_token", "refresh_token"])
    .probe(Probe::OAuthRefresh)
    .attach(Attach::Bearer),
    keyed(
        "serpapi",
        Tools,
        "SerpApi",
        "SerpApi search results API.",
        // The Account API is free and counts no search.
        Reads(read("https://serpapi.com", "/account.json")),
        Attach::Query("api_key"),
    )
    .known_as("serpApi", &[api_key("serpApiKey")]),
    keyed(
        "serper",
        Tools,
        "Serper",
        "Serper Google Search API.",
        // The credit balance: a search would spend a credit.
        Reads(KeyRead {
            errors: ErrorDialect::Serper,
            ..read("https://google.serper.dev", "/account")
        }),
        Attach::Header("x-api-key"),
    )
    .known_as("serperApi", &[api_key("serperApiKey")]),
    TypeSpec::new("smtp", Tools, "SMTP", "An SMTP server for sending email.")
        .fields(SMTP, "password")
        .probe(Probe::SmtpLogin),
];
