//! The routes: one per `google.api.http` binding (and each of its `additional_bindings`) of the
//! services asked for, read from the descriptor pool the servers register for reflection, so
//! that the HTTP surface, the gRPC surface and the OpenAPI document come from one source.

use crate::{PathTemplate, RuleError};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor, Value};

/// Where a request's body goes (the rule's `body`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyRule {
    /// No body; fields not bound by the path come from the query string.
    None,
    /// `*`: the body is the request message, less the fields bound by the path.
    Whole,
    /// The body is this top-level field of the request message.
    Field(String),
}

/// One HTTP binding of one RPC.
#[derive(Debug, Clone)]
pub struct Route {
    /// The HTTP method.
    pub method: http::Method,
    /// The path template.
    pub template: PathTemplate,
    /// Where the body goes.
    pub body: BodyRule,
    /// The RPC.
    pub rpc: MethodDescriptor,
    /// The gRPC path, `/package.Service/Method`.
    pub grpc_path: String,
}

impl Route {
    /// The request message's descriptor.
    pub fn input(&self) -> MessageDescriptor {
        self.rpc.input()
    }

    /// The response message's descriptor.
    pub fn output(&self) -> MessageDescriptor {
        self.rpc.output()
    }

    /// `GET /v1/...`: the route's label in metrics, traces and the OpenAPI document.
    pub fn label(&self) -> String {
        format!("{} {}", self.method, self.template.as_str())
    }
}

const VERBS: [(&str, http::Method); 5] = [
    ("get", http::Method::GET),
    ("post", http::Method::POST),
    ("put", http::Method::PUT),
    ("patch", http::Method::PATCH),
    ("delete", http::Method::DELETE),
];

/// The routes of `services` (fully qualified names) in `pool`, in proto order. Every method of
/// those services must have a binding: an RPC without one would be unreachable over HTTP.
pub fn routes(pool: &DescriptorPool, services: &[&str]) -> Result<Vec<Route>, RuleError> {
    let extension = pool
        .get_extension_by_name("google.api.http")
        .ok_or(RuleError::NoHttpExtension)?;
    let mut routes = Vec::new();
    for name in services {
        let service = pool
            .get_service_by_name(name)
            .ok_or_else(|| RuleError::UnknownService((*name).to_owned()))?;
        for rpc in service.methods() {
            let options = rpc.options();
            if !options.has_extension(&extension) {
                return Err(RuleError::Unbound(rpc.full_name().to_owned()));
            }
            if rpc.is_client_streaming() || rpc.is_server_streaming() {
                return Err(RuleError::Streaming(rpc.full_name().to_owned()));
            }
            let Value::Message(rule) = options.get_extension(&extension).into_owned() else {
                return Err(RuleError::Unbound(rpc.full_name().to_owned()));
            };
            let mut bindings = vec![rule.clone()];
            if let Some(Value::List(more)) = rule
                .get_field_by_name("additional_bindings")
                .map(|v| v.into_owned())
            {
                bindings.extend(more.into_iter().filter_map(|v| match v {
                    Value::Message(m) => Some(m),
                    _ => None,
                }));
            }
            for binding in bindings {
                routes.push(route(&rpc, &binding)?);
            }
        }
    }
    Ok(routes)
}

fn text(message: &DynamicMessage, field: &str) -> Option<String> {
    match message.get_field_by_name(field)?.into_owned() {
        Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fn route(rpc: &MethodDescriptor, rule: &DynamicMessage) -> Result<Route, RuleError> {
    let full_name = rpc.full_name().to_owned();
    let (method, template) = VERBS
        .iter()
        .find_map(|(field, method)| text(rule, field).map(|t| (method.clone(), t)))
        .ok_or_else(|| RuleError::Unbound(full_name.clone()))?;
    let template = PathTemplate::parse(&template)?;
    let input = rpc.input();
    for variable in template.variables() {
        field_path(&input, variable).ok_or_else(|| RuleError::UnknownField {
            rpc: full_name.clone(),
            field: variable.to_owned(),
        })?;
    }
    let body = match text(rule, "body").as_deref() {
        None => BodyRule::None,
        Some("*") => BodyRule::Whole,
        Some(field) => {
            input
                .get_field_by_name(field)
                .ok_or_else(|| RuleError::UnknownField {
                    rpc: full_name.clone(),
                    field: field.to_owned(),
                })?;
            BodyRule::Field(field.to_owned())
        }
    };
    if text(rule, "response_body").is_some() {
        return Err(RuleError::ResponseBody(full_name));
    }
    Ok(Route {
        method,
        template,
        body,
        grpc_path: format!("/{}/{}", rpc.parent_service().full_name(), rpc.name()),
        rpc: rpc.clone(),
    })
}

/// The descriptors along a dotted field path (`value.secret`), when every step exists and every
/// step but the last is a singular message.
pub(crate) fn field_path(
    message: &MessageDescriptor,
    path: &str,
) -> Option<Vec<prost_reflect::FieldDescriptor>> {
    let mut current = message.clone();
    let mut fields = Vec::new();
    let mut steps = path.split('.').peekable();
    while let Some(step) = steps.next() {
        let field = current
            .get_field_by_name(step)
            .or_else(|| current.get_field_by_json_name(step))?;
        if steps.peek().is_some() {
            if field.is_list() || field.is_map() {
                return None;
            }
            current = field.kind().as_message()?.clone();
        }
        fields.push(field);
    }
    Some(fields)
}
