//! The type catalogue: the one registry of what each credential type is. Every type declares, as
//! data, its category and value fields (each with its role and format), how the vault probes it
//! ([`Probe`], with the provider's default base URL), whether its schema can be discovered, and
//! how its secret is attached to an outbound request ([`Attach`]).
//!
//! Adding a type is one entry in `types.rs` and one row in a migration of `credential_types`; the
//! catalogue's tests (here, in `tests/catalogue.rs`, in credentials-probe and in the store's
//! schema test) name whatever else an entry lacks.

use crate::value::SecretValue;

mod check;
mod types;

use types::TYPES;

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
    /// Vector databases: indexes or collections of embeddings.
    VectorStore,
    /// Generic credentials for tools: API keys, OAuth, databases, SMTP.
    Tools,
}

impl Category {
    /// Every category, in declaration order.
    pub const ALL: [Category; 7] = [
        Category::Llm,
        Category::Speech,
        Category::Image,
        Category::Video,
        Category::DataWarehouse,
        Category::VectorStore,
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
            Category::VectorStore => "vector_store",
            Category::Tools => "tools",
        }
    }

    /// The category with this wire name; `None` if unknown.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What a field is to its credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Secret material: the credential itself (a key, password, token, private key, signed URL).
    Secret,
    /// Whose credential it is, not secret: a user name, a client id.
    Identity,
    /// Where the credential is sent: a host, port, endpoint, URL, token URL, region or account.
    /// Only an audited update changes it, since it decides who receives the secret.
    Destination,
    /// A setting of how the credential is used, not where: a default database, scopes, a header
    /// name, a transport mode.
    Option,
}

/// The shape of a field's value. Every write (create, update, a tested value) checks each field
/// against its format with [`Format::check`] (see `value::check`); users of a field (a probe,
/// the gateway) may still parse it fully.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Free or opaque text: API keys and tokens, names, scopes.
    Text,
    /// Exactly one of these values.
    OneOf(&'static [&'static str]),
    /// An absolute URL with one of these (lower-case) schemes.
    Url(&'static [&'static str]),
    /// A host name or IP address.
    Host,
    /// A TCP port, 1-65535.
    Port,
    /// A cloud region such as `us-east-1`, which becomes part of a host name.
    Region,
    /// An account identifier such as `myorg-myaccount`, which becomes part of a host name.
    Account,
    /// A JSON object with at least these keys.
    Json(&'static [&'static str]),
    /// A PEM-encoded key.
    Pem,
    /// A connection string (URL or key=value form) of this engine, credentials included.
    ConnectionString(Engine),
    /// A connection string of the engine that the named field of the same value chooses.
    ConnectionStringOf(&'static str),
    /// An HTTP header name.
    HeaderName,
    /// An email address.
    Email,
}

impl Format {
    /// The only values accepted, for [`Format::OneOf`]; empty for every other format.
    pub const fn allowed_values(&self) -> &'static [&'static str] {
        match self {
            Format::OneOf(values) => values,
            _ => &[],
        }
    }

    /// Whether `value` has this format (a connection string of a field-chosen engine is
    /// checked for its shape only, since the engine is not known here).
    pub fn accepts(&self, value: &str) -> bool {
        self.check(value).is_ok()
    }
}

/// A database engine, as the `database` tool type's `schema_type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Engine {
    /// PostgreSQL.
    PostgreSql,
    /// MySQL or MariaDB.
    MySql,
    /// Amazon Redshift (the PostgreSQL protocol).
    Redshift,
    /// Microsoft SQL Server.
    MsSql,
    /// ClickHouse (its HTTP interface).
    ClickHouse,
    /// Google BigQuery.
    BigQuery,
    /// Snowflake.
    Snowflake,
}

/// Whether the vault probes connection strings of an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineProbe {
    /// A login plus `SELECT 1` validates it, and its schema can be discovered.
    LoginAndDiscovery,
    /// Neither, for this reason (shown to users).
    Unsupported(&'static str),
}

impl Engine {
    /// Every engine, in the order `schema_type` lists them.
    pub const ALL: [Engine; 7] = [
        Engine::PostgreSql,
        Engine::MySql,
        Engine::Redshift,
        Engine::MsSql,
        Engine::ClickHouse,
        Engine::BigQuery,
        Engine::Snowflake,
    ];

    /// The stable name, e.g. `postgresql`: a `schema_type` value and the id of its own type.
    pub const fn as_str(self) -> &'static str {
        match self {
            Engine::PostgreSql => "postgresql",
            Engine::MySql => "mysql",
            Engine::Redshift => "redshift",
            Engine::MsSql => "mssql",
            Engine::ClickHouse => "clickhouse",
            Engine::BigQuery => "bigquery",
            Engine::Snowflake => "snowflake",
        }
    }

    /// The engine with this name; `None` if unknown.
    pub fn parse(s: &str) -> Option<Engine> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// Whether the vault probes connection strings of this engine.
    pub const fn probe(self) -> EngineProbe {
        match self {
            Engine::PostgreSql | Engine::MySql | Engine::Redshift | Engine::ClickHouse => {
                EngineProbe::LoginAndDiscovery
            }
            Engine::MsSql => EngineProbe::Unsupported(
                "SQL Server needs a TDS client this build does not include; the credential is \
                 stored but cannot be checked",
            ),
            Engine::BigQuery => EngineProbe::Unsupported(
                "a bigquery database given as a connection string cannot be probed; store it as \
                 a bigquery credential, whose fields the probe understands",
            ),
            Engine::Snowflake => EngineProbe::Unsupported(
                "a snowflake database given as a connection string cannot be probed; store it \
                 as a snowflake credential, whose fields the probe understands",
            ),
        }
    }

    /// Whether a login validates it and its schema can be discovered.
    pub const fn is_probed(self) -> bool {
        matches!(self.probe(), EngineProbe::LoginAndDiscovery)
    }
}

/// How a provider reports a refused key beyond the HTTP status, for [`KeyRead`] probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorDialect {
    /// Statuses, plus the "invalid api key" and quota bodies most APIs share.
    Common,
    /// Google APIs: a bad key is 400 (or 403) with reason `API_KEY_INVALID`.
    Google,
    /// ElevenLabs: a key lacking a permission is 401 `missing_permissions`.
    ElevenLabs,
    /// Milvus's REST API: a refusal may be HTTP 200 with a non-zero `code` (1800 for a
    /// caller that has not authenticated), a missing privilege `permission deny`.
    Milvus,
    /// Serper: a bad key is 403 `{"message":"Unauthorized."}`, an empty balance 400
    /// `Not enough credits`.
    Serper,
}

/// A vector database whose indexes or collections schema discovery lists (see
/// [`KeyRead::discovery`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VectorStore {
    /// Pinecone's control plane: `GET /indexes`.
    Pinecone,
    /// Qdrant: `GET /collections`, then each collection.
    Qdrant,
    /// Weaviate: its schema's classes.
    Weaviate,
    /// Milvus: its REST API's collections.
    Milvus,
    /// Chroma: a tenant's database's collections.
    Chroma,
}

/// A provider's cheapest authenticated read: `GET {base_url}{path}` with the key attached as the
/// type's [`Attach`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRead {
    /// The provider's API base URL, without a trailing slash (overridable per deployment).
    pub base_url: &'static str,
    /// Path and query of the read, under the base URL.
    pub path: &'static str,
    /// Fixed headers the API requires besides the key, e.g. a version.
    pub headers: &'static [(&'static str, &'static str)],
    /// How the API words a refusal.
    pub errors: ErrorDialect,
    /// A JSON body to POST instead of a GET, for APIs that read with POSTs (Milvus).
    pub body: Option<&'static str>,
    /// The vector store whose indexes or collections discovery lists with the same key and
    /// base URL; `None` where there is no schema to discover.
    pub discovery: Option<VectorStore>,
}

/// How the vault checks a credential against its real target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// An OpenAI-compatible API: `GET {base_url}/models` with the key.
    OpenAiCompatible {
        /// The API base URL, without a trailing slash.
        base_url: &'static str,
    },
    /// Another provider API's cheapest authenticated read.
    KeyRead(KeyRead),
    /// [`Probe::KeyRead`] at the credential's own instance: the read's path under the URL in
    /// the value's `url_field` (a destination field), dialled through the egress guard like
    /// every other probe; the read's `base_url` is unused.
    KeyReadAt {
        /// The field holding the instance's base URL.
        url_field: &'static str,
        /// The read, its path under that URL.
        read: KeyRead,
    },
    /// AWS STS `GetCallerIdentity`, SigV4-signed for the value's region.
    AwsCallerIdentity {
        /// The STS URL, with `{region}` filled from the value's [`Format::Region`] field.
        base_url: &'static str,
    },
    /// A login plus `SELECT 1` on a database of this engine.
    Database(Engine),
    /// As [`Probe::Database`], of the engine the named field's value chooses.
    DatabaseOfField(&'static str),
    /// An SMTP login that never sends a message.
    SmtpLogin,
    /// Google's OAuth JWT-bearer grant for the service account, at its own `token_uri`.
    ServiceAccountToken,
    /// Snowflake's REST login request, session closed afterwards.
    SnowflakeLogin {
        /// The account URL, with `{account}` filled from the value's [`Format::Account`] field.
        base_url: &'static str,
    },
    /// The URL of the value is readable.
    ReadableUrl,
    /// `GET` the value's own endpoint with the key.
    KeyAtEndpoint,
    /// A `refresh_token` grant at the value's own token URL.
    OAuthRefresh,
    /// Not probed, for this reason (shown to users).
    Unsupported(&'static str),
}

/// The reason of an entry that forgot its probe; a test names such entries.
const NO_PROBE_DECLARED: &str = "no probe is declared for this type";

impl Probe {
    /// The default base URL (or URL template) of the target, without a trailing slash.
    pub const fn default_base_url(&self) -> Option<&'static str> {
        match self {
            Probe::OpenAiCompatible { base_url }
            | Probe::AwsCallerIdentity { base_url }
            | Probe::SnowflakeLogin { base_url } => Some(base_url),
            Probe::KeyRead(read) => Some(read.base_url),
            _ => None,
        }
    }

    /// Whether validating answers anything but "unsupported".
    pub const fn validates(&self) -> bool {
        match self {
            Probe::Unsupported(_) => false,
            Probe::Database(engine) => engine.is_probed(),
            _ => true,
        }
    }

    /// Whether the schema of some values can be discovered (for [`Probe::DatabaseOfField`],
    /// those of the engines that are probed; for a vector store, its collections).
    pub const fn discovers(&self) -> bool {
        match self {
            Probe::Database(engine) => engine.is_probed(),
            Probe::DatabaseOfField(_) => true,
            Probe::KeyRead(read) | Probe::KeyReadAt { read, .. } => read.discovery.is_some(),
            _ => false,
        }
    }

    /// The read of a [`Probe::KeyRead`] or [`Probe::KeyReadAt`], with the latter's URL field.
    pub const fn key_read(&self) -> Option<(&KeyRead, Option<&'static str>)> {
        match self {
            Probe::KeyRead(read) => Some((read, None)),
            Probe::KeyReadAt { url_field, read } => Some((read, Some(*url_field))),
            _ => None,
        }
    }

    /// Whether this entry forgot to declare its probe.
    pub fn is_undeclared(&self) -> bool {
        *self == Probe::Unsupported(NO_PROBE_DECLARED)
    }
}

/// How the secret (the type's primary field, or its key pair for SigV4) is attached to an
/// outbound HTTP request to the credential's own target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// `Authorization: Bearer KEY`.
    Bearer,
    /// `Authorization: SCHEME KEY`, e.g. Deepgram's `Token` and fal's `Key`.
    Scheme(&'static str),
    /// The key alone in this header, e.g. `x-api-key`.
    Header(&'static str),
    /// The key in this query parameter, e.g. `key`.
    Query(&'static str),
    /// HTTP Basic with the key as the user name and an empty password.
    Basic,
    /// HTTP Basic with the named field's value as the user name and the key as the password
    /// (Atlassian's `email:api_token`).
    BasicUser(&'static str),
    /// `Authorization: Bearer USER:KEY` with the named field's value as USER, or
    /// `Bearer KEY` when that field is empty (Milvus's token: `user:password` or an API key).
    BearerUserKey(&'static str),
    /// In the header the named field of the value gives, else `Authorization: Bearer KEY`.
    HeaderNamedBy(&'static str),
    /// An AWS Signature Version 4 for this service.
    SigV4 {
        /// The signing name of the service, e.g. `bedrock`.
        service: &'static str,
    },
    /// Not attached to HTTP requests as it is: it opens a connection, a login or a token
    /// exchange, or it is itself the URL.
    NotHttp,
}

/// What the masked preview shows of a secret field when it is the one previewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preview {
    /// Its first and last few characters (`sk-pr...abcd`), nothing of a short one: the form
    /// providers themselves show of their API keys, so users can tell their keys apart.
    Ends,
    /// Only that it is set: a password or token has no public prefix, and its ends narrow a
    /// guess.
    Hidden,
    /// Where it points (scheme, host, port and, for a database, the database), never user
    /// info, path, query or fragment: for URLs and connection strings.
    Location,
}

/// One field of a credential type's value.
#[derive(Debug)]
pub struct FieldSpec {
    /// The field name clients send, e.g. `api_key`.
    pub name: &'static str,
    /// What the field holds, for humans.
    pub description: &'static str,
    /// Whether the field is secret (its role is [`Role::Secret`]); non-secret fields appear in
    /// the masked preview.
    pub secret: bool,
    /// Whether every value must carry the field.
    pub required: bool,
    /// The only values accepted (those of a [`Format::OneOf`]); empty means any.
    pub allowed_values: &'static [&'static str],
    /// What the field is to the credential.
    pub role: Role,
    /// The shape of its value.
    pub format: Format,
    /// What the masked preview shows of it, for a secret field.
    pub preview: Preview,
    /// The product's name of the field (see [`FieldSpec::alias`]).
    alias: Option<&'static str>,
}

impl FieldSpec {
    const fn new(
        name: &'static str,
        description: &'static str,
        required: bool,
        role: Role,
        format: Format,
    ) -> FieldSpec {
        FieldSpec {
            name,
            description,
            secret: matches!(role, Role::Secret),
            required,
            allowed_values: format.allowed_values(),
            role,
            format,
            preview: match format {
                Format::Url(_) | Format::ConnectionString(_) | Format::ConnectionStringOf(_) => {
                    Preview::Location
                }
                _ => Preview::Hidden,
            },
            alias: None,
        }
    }

    /// The product's name of the field, as its credential forms send it (Flowise's input name,
    /// e.g. `openAIApiKey`); `None` where the product has no such field.
    pub fn alias(&self) -> Option<&'static str> {
        self.alias
    }

    /// The same field under this product name (a getter owns the name `alias`).
    const fn with_alias(mut self, alias: &'static str) -> FieldSpec {
        self.alias = Some(alias);
        self
    }

    /// The same field, previewed by its ends (a provider's API key or key id).
    const fn shows_ends(mut self) -> FieldSpec {
        self.preview = Preview::Ends;
        self
    }

    /// The same field with another format (its alias kept).
    const fn formatted(self, format: Format) -> FieldSpec {
        let mut field = FieldSpec::new(
            self.name,
            self.description,
            self.required,
            self.role,
            format,
        );
        field.alias = self.alias;
        field
    }
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
    /// The field an access answers as `secret`: the one secret that authenticates (for
    /// Bedrock the secret access key, not the access key id, which only names the key).
    pub primary_secret: &'static str,
    /// At least one of these fields must be present; empty means no such rule.
    pub requires_one_of: &'static [&'static str],
    /// How the vault checks it against its target.
    pub probe: Probe,
    /// How its secret is attached to an outbound request.
    pub attach: Attach,
    /// Whether the vault can probe the credential against its target (from [`Probe::validates`]).
    pub supports_validation: bool,
    /// Whether the vault can discover the target's schema (from [`Probe::discovers`]).
    pub supports_schema_discovery: bool,
    /// The product's name of the type (see [`TypeSpec::alias`]).
    alias: Option<&'static str>,
}

impl TypeSpec {
    /// The field with this name; `None` if the type has no such field.
    pub fn field(&self, name: &str) -> Option<&'static FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The product's name of the type, its `credentialName` (Flowise's credential name, e.g.
    /// `openAIApi`); `None` for a type the product does not have.
    pub fn alias(&self) -> Option<&'static str> {
        self.alias
    }

    /// The field whose product name is exactly `name` (case-sensitive); `None` if none is.
    pub fn field_by_alias(&self, name: &str) -> Option<&'static FieldSpec> {
        self.fields.iter().find(|f| f.alias == Some(name))
    }

    /// The fields with this role, in display order.
    pub fn fields_with_role(&self, role: Role) -> impl Iterator<Item = &'static FieldSpec> {
        self.fields.iter().filter(move |f| f.role == role)
    }

    /// The default base URL of its target, when it has a fixed one.
    pub const fn default_base_url(&self) -> Option<&'static str> {
        self.probe.default_base_url()
    }

    /// The engine of a database value: the type's own, or the one its engine field names.
    pub fn engine_of(&self, value: &SecretValue) -> Option<Engine> {
        match self.probe {
            Probe::Database(engine) => Some(engine),
            Probe::DatabaseOfField(field) => {
                value.get(field).and_then(|v| Engine::parse(v.expose()))
            }
            _ => None,
        }
    }

    /// Whether this value's schema can be discovered: for tools `database`, by its engine;
    /// for a vector store, whenever its type's probe lists its collections.
    pub fn supports_schema_discovery_of(&self, value: &SecretValue) -> bool {
        match self.probe {
            Probe::Database(_) | Probe::DatabaseOfField(_) => {
                self.engine_of(value).is_some_and(Engine::is_probed)
            }
            probe => probe.discovers(),
        }
    }

    /// A type with these essentials; the builder methods below add the rest.
    const fn new(
        id: &'static str,
        category: Category,
        display_name: &'static str,
        description: &'static str,
    ) -> TypeSpec {
        let probe = Probe::Unsupported(NO_PROBE_DECLARED);
        TypeSpec {
            id,
            category,
            display_name,
            description,
            fields: types::API_KEY,
            primary_field: "api_key",
            primary_secret: "api_key",
            requires_one_of: &[],
            probe,
            attach: Attach::NotHttp,
            supports_validation: probe.validates(),
            supports_schema_discovery: probe.discovers(),
            alias: None,
        }
    }

    /// The product's name of the type (a getter owns the name `alias`).
    const fn with_alias(mut self, alias: &'static str) -> Self {
        self.alias = Some(alias);
        self
    }

    const fn fields(mut self, fields: &'static [FieldSpec], primary_field: &'static str) -> Self {
        self.fields = fields;
        self.primary_field = primary_field;
        self.primary_secret = primary_field;
        self
    }

    /// A primary secret other than the primary field (after [`TypeSpec::fields`]).
    const fn primary_secret(mut self, name: &'static str) -> Self {
        self.primary_secret = name;
        self
    }

    const fn requires_one_of(mut self, names: &'static [&'static str]) -> Self {
        self.requires_one_of = names;
        self
    }

    /// Sets the probe and what derives from it.
    const fn probe(mut self, probe: Probe) -> Self {
        self.probe = probe;
        self.supports_validation = probe.validates();
        self.supports_schema_discovery = probe.discovers();
        self
    }

    const fn attach(mut self, attach: Attach) -> Self {
        self.attach = attach;
        self
    }
}

/// Every type, sorted by category (in enum order) then id.
pub fn all() -> &'static [TypeSpec] {
    TYPES
}

/// The type with this id; `None` if unknown.
pub fn lookup(id: &str) -> Option<&'static TypeSpec> {
    TYPES.iter().find(|t| t.id == id)
}

/// The type whose product name (`credentialName`, e.g. `openAIApi`) is exactly `name`
/// (case-sensitive); `None` if no type carries it.
pub fn by_alias(name: &str) -> Option<&'static TypeSpec> {
    TYPES.iter().find(|t| t.alias == Some(name))
}

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
            (
                Category::VectorStore,
                &["pinecone", "qdrant", "weaviate", "milvus", "chroma"],
            ),
            (
                Category::Tools,
                &[
                    "api_key",
                    "oauth",
                    "database",
                    "smtp",
                    "airtable",
                    "notion",
                    "confluence",
                    "serper",
                    "serpapi",
                ],
            ),
        ];
        let mut count = 0;
        for (category, ids) in expected {
            for id in *ids {
                assert_eq!(lookup(id).map(|t| t.category), Some(*category), "{id}");
                count += 1;
            }
        }
        let listed: BTreeSet<&str> = expected
            .iter()
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        let unlisted: Vec<&str> = all()
            .iter()
            .map(|t| t.id)
            .filter(|id| !listed.contains(id))
            .collect();
        assert!(
            unlisted.is_empty(),
            "add {unlisted:?} to this list of the product documents' types"
        );
        assert_eq!(count, all().len());
    }

    #[test]
    fn field_references_name_fields_of_their_type() {
        for t in all() {
            assert!(t.field(t.primary_field).is_some(), "{}", t.id);
            assert!(
                t.field(t.primary_secret).is_some_and(|f| f.secret),
                "{}",
                t.id
            );
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
        assert_eq!(flags("pinecone"), (true, true));
        assert_eq!(flags("qdrant"), (true, true));
        assert_eq!(flags("chroma"), (true, true));
        assert_eq!(flags("weaviate"), (true, true));
        assert_eq!(flags("milvus"), (true, true));
        assert_eq!(flags("notion"), (true, false));
        assert_eq!(
            all().iter().filter(|t| t.supports_schema_discovery).count(),
            10
        );
        assert_eq!(all().iter().filter(|t| !t.supports_validation).count(), 2);
    }

    #[test]
    fn lookup_finds_known_ids_only() {
        let bedrock = lookup("bedrock").unwrap();
        assert_eq!(bedrock.primary_field, "access_key_id");
        assert_eq!(bedrock.primary_secret, "secret_access_key");
        assert!(!bedrock.field("region").unwrap().secret);
        assert!(lookup("OpenAI").is_none());
        assert!(lookup("").is_none());
        assert!(bedrock.field("api_key").is_none());
    }

    #[test]
    fn product_names_are_unique_and_round_trip() {
        let mut types = BTreeSet::new();
        for t in all() {
            let mut fields = BTreeSet::new();
            for f in t.fields.iter() {
                if let Some(alias) = f.alias() {
                    assert!(fields.insert(alias), "{}: field alias {alias} twice", t.id);
                    assert_eq!(t.field_by_alias(alias).map(|f| f.name), Some(f.name));
                }
            }
            let Some(alias) = t.alias() else {
                assert!(
                    fields.is_empty(),
                    "{}: field aliases without a type alias",
                    t.id
                );
                continue;
            };
            assert!(types.insert(alias), "type alias {alias} twice");
            assert_eq!(by_alias(alias).map(|t| t.id), Some(t.id));
            // A product form fills the key: the primary secret has its product name.
            assert!(
                t.field(t.primary_secret)
                    .is_some_and(|f| f.alias().is_some()),
                "{}: the primary secret has no alias",
                t.id
            );
        }
        assert!(by_alias("openaiapi").is_none(), "exact, case-sensitive");
        assert!(by_alias("").is_none());
        assert!(by_alias("openai").is_none(), "an id is not a product name");
    }

    #[test]
    fn the_documents_names_map_onto_their_types_and_fields() {
        let named = |alias: &str, field: &str| {
            let t = by_alias(alias).unwrap_or_else(|| panic!("{alias}"));
            let f = t
                .field_by_alias(field)
                .unwrap_or_else(|| panic!("{alias}.{field}"));
            (t.id, f.name)
        };
        assert_eq!(named("openAIApi", "openAIApiKey"), ("openai", "api_key"));
        assert_eq!(
            named("huggingFaceApi", "huggingFaceApiKey"),
            ("huggingface", "api_key")
        );
        assert_eq!(
            named("googleGenAIApi", "googleGenerativeAPIKey").0,
            "gemini"
        );
        for (alias, id) in [
            ("anthropicApi", "anthropic"),
            ("cohereApi", "cohere"),
            ("replicateApi", "replicate"),
            ("mistralAIApi", "mistral"),
            ("groqApi", "groq"),
            ("deepseekApi", "deepseek"),
            ("openRouterApi", "openrouter"),
            ("xaiApi", "xai"),
            ("togetherAIApi", "together_ai"),
        ] {
            assert_eq!(by_alias(alias).map(|t| t.id), Some(id), "{alias}");
        }
        // A field alias belongs to its own type only.
        assert!(
            lookup("anthropic")
                .unwrap()
                .field_by_alias("openAIApiKey")
                .is_none()
        );
        assert!(lookup("openai_audio").unwrap().alias().is_none());
    }

    #[test]
    fn a_multi_field_product_form_maps_onto_the_right_fields() {
        let bedrock = by_alias("awsApi").unwrap();
        assert_eq!(bedrock.id, "bedrock");
        let name = |alias| bedrock.field_by_alias(alias).map(|f| f.name);
        assert_eq!(name("awsKey"), Some("access_key_id"));
        assert_eq!(name("awsSecret"), Some("secret_access_key"));
        assert_eq!(name("awsSession"), Some("session_token"));
        assert_eq!(name("awskey"), None);
        assert_eq!(bedrock.field("region").unwrap().alias(), None);
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
