//! Path templates of `google.api.http` rules (`/v1/workspaces/{workspace_id}/credentials/{id}:setDefault`)
//! and matching request paths against them.
//!
//! Only the forms the protos use are accepted, so that a template nobody can match is a startup
//! error rather than a dead route: literal segments, single-segment variables (`{field}` or
//! `{field=*}`) naming a top-level or dotted field, and one custom verb after the last segment.
//! `**` and multi-segment variables are refused when the rules are read.

use crate::RuleError;

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Must equal the request's segment.
    Literal(String),
    /// Binds the request's (percent-decoded) segment to this field path.
    Variable(String),
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    text: String,
    segments: Vec<Segment>,
    verb: Option<String>,
}

impl PathTemplate {
    /// Parses `text`; `Err` names what is not supported.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        let bad = |why: &str| RuleError::Template {
            template: text.to_owned(),
            reason: why.to_owned(),
        };
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| bad("must start with '/'"))?;
        // The verb follows the last segment, outside any variable.
        let (path, verb) = match rest.rfind(':') {
            Some(at) if !rest[at..].contains('}') => (&rest[..at], Some(rest[at + 1..].to_owned())),
            _ => (rest, None),
        };
        if verb
            .as_deref()
            .is_some_and(|v| v.is_empty() || v.contains('/'))
        {
            return Err(bad(
                "the custom verb must be one word after the last segment",
            ));
        }
        let mut segments = Vec::new();
        for part in path.split('/') {
            if part.is_empty() {
                return Err(bad("empty segment"));
            }
            if let Some(inner) = part.strip_prefix('{') {
                let inner = inner
                    .strip_suffix('}')
                    .ok_or_else(|| bad("unclosed variable"))?;
                let field = match inner.split_once('=') {
                    None => inner,
                    Some((field, "*")) => field,
                    Some(_) => return Err(bad("only single-segment variables are supported")),
                };
                if field.is_empty()
                    || !field
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
                {
                    return Err(bad("a variable must name a field"));
                }
                segments.push(Segment::Variable(field.to_owned()));
            } else if part.contains(['{', '}', '*']) {
                return Err(bad("wildcards outside a variable are not supported"));
            } else {
                segments.push(Segment::Literal(part.to_owned()));
            }
        }
        Ok(Self {
            text: text.to_owned(),
            segments,
            verb,
        })
    }

    /// The template as written in the proto: the route's label in metrics and traces.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The field paths the template binds, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Variable(field) => Some(field.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// The bindings of `path` (the request URI's path, still percent-encoded) when it matches:
    /// `(field path, decoded value)` per variable. A variable never matches an empty segment.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let rest = path.strip_prefix('/')?;
        let rest = match &self.verb {
            Some(verb) => rest.strip_suffix(verb.as_str())?.strip_suffix(':')?,
            None => rest,
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut bindings = Vec::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment {
                Segment::Literal(literal) => {
                    if literal != part {
                        return None;
                    }
                }
                Segment::Variable(field) => {
                    if part.is_empty() {
                        return None;
                    }
                    let value = percent_encoding::percent_decode_str(part)
                        .decode_utf8()
                        .ok()?;
                    bindings.push((field.clone(), value.into_owned()));
                }
            }
        }
        Some(bindings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_match() {
        let t = PathTemplate::parse("/v1/workspaces/{workspace_id}/credentials/{id}:setDefault")
            .unwrap();
        assert_eq!(t.variables().collect::<Vec<_>>(), ["workspace_id", "id"]);
        assert_eq!(
            t.matches("/v1/workspaces/ws%2D1/credentials/abc:setDefault"),
            Some(vec![
                ("workspace_id".into(), "ws-1".into()),
                ("id".into(), "abc".into())
            ])
        );
        assert_eq!(t.matches("/v1/workspaces/ws/credentials/abc"), None);
        assert_eq!(
            t.matches("/v1/workspaces/ws/credentials/abc:validate"),
            None
        );
        assert_eq!(
            t.matches("/v1/workspaces//credentials/abc:setDefault"),
            None
        );

        let collection = PathTemplate::parse("/v1/workspaces/{workspace_id}/credentials").unwrap();
        assert!(
            collection
                .matches("/v1/workspaces/ws/credentials")
                .is_some()
        );
        assert!(
            collection
                .matches("/v1/workspaces/ws/credentials:access")
                .is_none()
        );
        assert!(
            collection
                .matches("/v1/workspaces/ws/credentials/x")
                .is_none()
        );
        let verb_on_collection =
            PathTemplate::parse("/v1/workspaces/{workspace_id}/credentials:access").unwrap();
        assert!(
            verb_on_collection
                .matches("/v1/workspaces/ws/credentials:access")
                .is_some()
        );
        assert!(
            verb_on_collection
                .matches("/v1/workspaces/ws/credentials")
                .is_none()
        );
        // Invalid UTF-8 after decoding matches nothing rather than something garbled.
        assert!(
            collection
                .matches("/v1/workspaces/%FF/credentials")
                .is_none()
        );
    }

    #[test]
    fn unsupported_templates_are_refused() {
        for text in [
            "v1/x",
            "/v1/{name=**}",
            "/v1/{name=a/*}",
            "/v1//x",
            "/v1/{x",
            "/v1/*",
            "/v1/x:",
            "/v1/{}",
        ] {
            assert!(PathTemplate::parse(text).is_err(), "{text}");
        }
    }
}
