//! The catalogue is complete: every entry declares what its probe, its attachment and its fields
//! need, and the README's probe table lists every type. Each failure names the type and what it
//! lacks, so adding a type is one entry (plus its migration row, checked by the store's tests).

use credentials_core::catalogue::{self, Attach, Engine, Format, Probe, Role, TypeSpec};
use std::collections::BTreeSet;

/// What is wrong with one entry, one line per problem.
fn problems(t: &TypeSpec) -> Vec<String> {
    let mut out = Vec::new();
    let mut fail = |what: String| out.push(format!("{}: {what}", t.id));

    if t.probe.is_undeclared() {
        fail("declares no probe: give its entry a .probe(..) (Probe::Unsupported with a reason if it has none)".into());
    }
    if let Probe::Unsupported(reason) = t.probe
        && reason.trim().is_empty()
    {
        fail("Probe::Unsupported needs a reason users can read".into());
    }
    if t.supports_validation != t.probe.validates()
        || t.supports_schema_discovery != t.probe.discovers()
    {
        fail("supports_validation/supports_schema_discovery disagree with its probe".into());
    }

    // Fields: roles, formats and the flags derived from them.
    for f in t.fields {
        if f.secret != (f.role == Role::Secret) {
            fail(format!(
                "field {}: secret flag disagrees with its role",
                f.name
            ));
        }
        if f.allowed_values != f.format.allowed_values() {
            fail(format!(
                "field {}: allowed_values disagree with its format",
                f.name
            ));
        }
        let locating = matches!(
            f.format,
            Format::Url(_) | Format::Host | Format::Port | Format::Region | Format::Account
        );
        if f.role == Role::Destination && !locating {
            fail(format!(
                "field {}: a destination needs a URL, host, port, region or account format",
                f.name
            ));
        }
        if locating
            && !matches!(f.role, Role::Destination)
            && !(f.role == Role::Secret && matches!(f.format, Format::Url(_)))
        {
            fail(format!(
                "field {}: a {:?} field is a destination (or, for a signed URL, the secret)",
                f.name, f.format
            ));
        }
        match f.format {
            Format::OneOf([]) => {
                fail(format!("field {}: OneOf lists no values", f.name));
            }
            Format::Url(schemes)
                if schemes.is_empty() || schemes.iter().any(|s| *s != s.to_ascii_lowercase()) =>
            {
                fail(format!("field {}: Url needs lower-case schemes", f.name));
            }
            Format::Json([]) => {
                fail(format!("field {}: Json lists no required keys", f.name));
            }
            Format::ConnectionStringOf(engine_field) if t.field(engine_field).is_none() => {
                fail(format!(
                    "field {}: its engine field {engine_field} does not exist",
                    f.name
                ));
            }
            _ => {}
        }
    }
    if t.fields_with_role(Role::Secret).next().is_none() {
        fail("has no secret field".into());
    }
    match t.field(t.primary_field) {
        Some(primary) if primary.role != Role::Secret => {
            fail(format!("primary field {} is not secret", t.primary_field));
        }
        None => fail(format!("primary field {} does not exist", t.primary_field)),
        _ => {}
    }

    // Default base URLs: absolute https, no trailing slash, templates only where filled.
    if let Some(url) = t.default_base_url() {
        if !url.starts_with("https://") || url.ends_with('/') || url.contains(char::is_whitespace) {
            fail(format!(
                "default base URL {url:?} must be https:// without a trailing slash"
            ));
        }
        let template = |placeholder: &str, format: Format| {
            url.contains(placeholder)
                && !t
                    .fields
                    .iter()
                    .any(|f| f.format == format && f.required && f.role == Role::Destination)
        };
        if template("{region}", Format::Region) || template("{account}", Format::Account) {
            fail(format!(
                "default base URL {url:?} has a placeholder no required destination field fills"
            ));
        }
        let expected = match t.probe {
            Probe::AwsCallerIdentity { .. } => "{region}",
            Probe::SnowflakeLogin { .. } => "{account}",
            _ => "",
        };
        let placeholders = url.matches('{').count();
        if placeholders != usize::from(!expected.is_empty()) || !url.contains(expected) {
            fail(format!(
                "default base URL {url:?}: {:?} probes fill exactly {expected:?}",
                t.probe
            ));
        }
    }

    // The probe's needs.
    let http_attach = matches!(
        t.attach,
        Attach::Bearer
            | Attach::Scheme(_)
            | Attach::Header(_)
            | Attach::Query(_)
            | Attach::Basic
            | Attach::BasicUser(_)
            | Attach::BearerUserKey(_)
    );
    if let Attach::BasicUser(user) | Attach::BearerUserKey(user) = t.attach
        && t.field(user).is_none_or(|f| f.role != Role::Identity)
    {
        fail(format!(
            "{:?} needs an identity field {user} to name the user",
            t.attach
        ));
    }
    match t.probe {
        Probe::OpenAiCompatible { .. } if t.attach != Attach::Bearer => {
            fail("an OpenAI-compatible API takes Attach::Bearer".into());
        }
        Probe::KeyReadAt { url_field, read } => {
            match t.field(url_field) {
                Some(f)
                    if f.required
                        && f.role == Role::Destination
                        && matches!(f.format, Format::Url(_)) => {}
                _ => fail(format!(
                    "KeyReadAt reads the instance URL from {url_field}, which must be a \
                     required destination URL field"
                )),
            }
            if !read.base_url.is_empty() {
                fail("a KeyReadAt read's base_url is unused: leave it empty".into());
            }
            if !http_attach || !read.path.starts_with('/') {
                fail("a KeyReadAt probe needs an HTTP attachment and a /path".into());
            }
        }
        Probe::KeyRead(read) => {
            if !http_attach {
                fail(format!(
                    "a KeyRead probe needs an HTTP attachment of the key, not {:?}",
                    t.attach
                ));
            }
            if !read.path.starts_with('/') {
                fail(format!("KeyRead path {:?} must start with /", read.path));
            }
            if read
                .headers
                .iter()
                .any(|(name, _)| *name != name.to_ascii_lowercase())
            {
                fail("KeyRead header names must be lower case".into());
            }
        }
        Probe::AwsCallerIdentity { .. } if !matches!(t.attach, Attach::SigV4 { .. }) => {
            fail("an AWS key is attached with Attach::SigV4".into());
        }
        Probe::Database(engine) => {
            let has = t
                .fields
                .iter()
                .any(|f| f.format == Format::ConnectionString(engine) && f.required);
            if !has {
                fail(format!(
                    "a {} database needs a required Format::ConnectionString({engine:?}) field",
                    engine.as_str()
                ));
            }
        }
        Probe::DatabaseOfField(engine_field) => {
            let names: Vec<&str> = Engine::ALL.iter().map(|e| e.as_str()).collect();
            match t.field(engine_field) {
                Some(f) if f.required && f.format.allowed_values() == names.as_slice() => {}
                _ => fail(format!(
                    "its engine field {engine_field} must be required, OneOf exactly {names:?}"
                )),
            }
            if !t
                .fields
                .iter()
                .any(|f| f.format == Format::ConnectionStringOf(engine_field) && f.required)
            {
                fail(format!(
                    "needs a required Format::ConnectionStringOf({engine_field:?}) field"
                ));
            }
        }
        _ => {}
    }
    if matches!(t.attach, Attach::SigV4 { .. })
        && !matches!(t.probe, Probe::AwsCallerIdentity { .. })
    {
        fail("Attach::SigV4 keys are probed with Probe::AwsCallerIdentity".into());
    }
    if let Attach::HeaderNamedBy(name) = t.attach
        && t.field(name).map(|f| f.format) != Some(Format::HeaderName)
    {
        fail(format!(
            "Attach::HeaderNamedBy({name:?}) needs a Format::HeaderName field {name}"
        ));
    }
    out
}

#[test]
fn every_entry_declares_what_it_needs() {
    let all: Vec<String> = catalogue::all().iter().flat_map(problems).collect();
    assert!(
        all.is_empty(),
        "the catalogue is incomplete:\n{}",
        all.join("\n")
    );
}

#[test]
fn probes_and_attachments_are_as_documented() {
    let t = |id| catalogue::lookup(id).unwrap_or_else(|| panic!("{id}"));
    assert_eq!(
        t("openai").default_base_url(),
        Some("https://api.openai.com/v1")
    );
    assert_eq!(t("anthropic").attach, Attach::Header("x-api-key"));
    assert_eq!(t("deepgram").attach, Attach::Scheme("Token"));
    assert_eq!(t("bedrock").attach, Attach::SigV4 { service: "bedrock" });
    assert_eq!(t("mssql").probe, Probe::Database(Engine::MsSql));
    assert!(!t("mssql").supports_validation);
    assert_eq!(t("bigquery").default_base_url(), None);
    assert_eq!(
        t("bedrock").field("region").unwrap().role,
        Role::Destination
    );
    assert_eq!(t("smtp").field("port").unwrap().format, Format::Port);
}

#[test]
fn formats_accept_what_the_probes_accept() {
    assert!(Format::Region.accepts("eu-west-1"));
    assert!(!Format::Region.accepts("evil.com/x"));
    assert!(!Format::Region.accepts(""));
    assert!(Format::Account.accepts("myorg-myaccount.eu-west-1"));
    assert!(!Format::Account.accepts("evil.com/x?"));
    assert!(!Format::Account.accepts("-x"));
    assert!(Format::Port.accepts("587"));
    assert!(!Format::Port.accepts("0") && !Format::Port.accepts("65536"));
    assert!(Format::Url(&["https"]).accepts("HTTPS://example.com"));
    assert!(!Format::Url(&["https"]).accepts("http://example.com"));
    assert!(Format::HeaderName.accepts("X-Api-Key"));
    assert!(!Format::HeaderName.accepts("X Api: Key"));
    assert!(Format::OneOf(&["tls"]).accepts("tls") && !Format::OneOf(&["tls"]).accepts("TLS"));
}

#[test]
fn tools_database_discovers_by_engine() {
    use credentials_core::value::{ValueInput, check};
    let spec = catalogue::lookup("database").unwrap();
    let of = |engine: &str| {
        let input = ValueInput::Fields(
            [
                ("schema_type".to_owned(), engine.into()),
                ("connection_string".to_owned(), "host=h dbname=db".into()),
            ]
            .into_iter()
            .collect(),
        );
        spec.supports_schema_discovery_of(&check(spec, input).unwrap())
    };
    for engine in Engine::ALL {
        assert_eq!(of(engine.as_str()), engine.is_probed(), "{engine:?}");
    }
    assert!(of("postgresql") && of("clickhouse") && !of("mssql") && !of("bigquery"));
}

/// The README's "| type | probe |" table: (names in the first column, the probe column).
fn readme_rows() -> Vec<(Vec<String>, String)> {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
    let table = readme
        .split("\n| type | probe |\n| --- | --- |\n")
        .nth(1)
        .expect("README.md has no `| type | probe |` table");
    table
        .lines()
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
            let names = cells[0]
                .split([',', '/'])
                .map(|n| n.trim().trim_start_matches("tools ").trim_matches('`'))
                .map(str::to_owned)
                .collect();
            (names, cells.get(1).copied().unwrap_or("").to_owned())
        })
        .collect()
}

#[test]
fn the_readme_probe_table_lists_every_type_as_probed() {
    let rows = readme_rows();
    let listed: BTreeSet<&str> = rows
        .iter()
        .flat_map(|(names, _)| names.iter().map(String::as_str))
        .collect();
    let ids: BTreeSet<&str> = catalogue::all().iter().map(|t| t.id).collect();
    let missing: Vec<_> = ids.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&ids).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "README.md's probe table: add a row for {missing:?}; no such types: {unknown:?}"
    );
    for (names, probe) in &rows {
        for name in names {
            let t = catalogue::lookup(name).unwrap();
            let says_unsupported = probe.starts_with("unsupported");
            assert_eq!(
                says_unsupported,
                !t.supports_validation,
                "README.md's probe table: {name} is {}supported",
                if t.supports_validation { "" } else { "un" }
            );
        }
    }
    let openai_row: BTreeSet<&str> = rows
        .iter()
        .find(|(_, probe)| probe.contains("OpenAI-compatible"))
        .map(|(names, _)| names.iter().map(String::as_str).collect())
        .expect("README.md's probe table has no OpenAI-compatible row");
    let openai: BTreeSet<&str> = catalogue::all()
        .iter()
        .filter(|t| matches!(t.probe, Probe::OpenAiCompatible { .. }))
        .map(|t| t.id)
        .collect();
    assert_eq!(
        openai_row, openai,
        "README.md's OpenAI-compatible row must list exactly the OpenAI-compatible types"
    );
}
