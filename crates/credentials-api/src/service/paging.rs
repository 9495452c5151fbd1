//! Opaque page tokens: a position in a listing plus a fingerprint of the listing's filters, so a
//! token cannot be replayed against another listing. Not secret and not signed: a forged token
//! can only point at another position of a listing the caller may read anyway.

use crate::service::{Result, ServiceError};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use credentials_core::model::{ListCursor, ListFilter};
use uuid::Uuid;

const VERSION: u8 = 1;
const KIND_CREDENTIALS: u8 = 1;
const KIND_AUDIT: u8 = 2;

type Fingerprint = [u8; 8];

fn fingerprint(parts: &[&str]) -> Fingerprint {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        ctx.update(&(part.len() as u32).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    let mut out = [0u8; 8];
    out.copy_from_slice(&ctx.finish().as_ref()[..8]);
    out
}

fn listing_fingerprint(workspace_id: &str, filter: &ListFilter) -> Fingerprint {
    fingerprint(&[
        workspace_id,
        filter.category.map(|c| c.as_str()).unwrap_or_default(),
        filter.type_id.as_deref().unwrap_or_default(),
        if filter.show_deleted {
            "deleted"
        } else {
            "live"
        },
    ])
}

fn decode(token: &str, kind: u8, fp: Fingerprint, body_len: usize) -> Result<Vec<u8>> {
    let malformed = || ServiceError::invalid("page_token", "malformed page token");
    if token.len() > 128 {
        return Err(malformed());
    }
    let bytes = B64.decode(token).map_err(|_| malformed())?;
    if bytes.len() != 2 + 8 + body_len || bytes[0] != VERSION || bytes[1] != kind {
        return Err(malformed());
    }
    if bytes[2..10] != fp {
        return Err(ServiceError::invalid(
            "page_token",
            "belongs to another listing: keep workspace_id and the filters of the first page",
        ));
    }
    Ok(bytes[10..].to_vec())
}

fn encode(kind: u8, fp: Fingerprint, body: &[u8]) -> String {
    let mut bytes = vec![VERSION, kind];
    bytes.extend_from_slice(&fp);
    bytes.extend_from_slice(body);
    B64.encode(bytes)
}

/// The token for the page after `cursor` of a credential listing.
pub fn credentials_token(workspace_id: &str, filter: &ListFilter, cursor: ListCursor) -> String {
    let mut body = cursor.created_at_micros.to_be_bytes().to_vec();
    body.extend_from_slice(cursor.id.as_bytes());
    encode(
        KIND_CREDENTIALS,
        listing_fingerprint(workspace_id, filter),
        &body,
    )
}

/// The cursor in a credential listing's token; `None` for an empty token (first page).
pub fn credentials_cursor(
    workspace_id: &str,
    filter: &ListFilter,
    token: &str,
) -> Result<Option<ListCursor>> {
    if token.is_empty() {
        return Ok(None);
    }
    let body = decode(
        token,
        KIND_CREDENTIALS,
        listing_fingerprint(workspace_id, filter),
        8 + 16,
    )?;
    let micros = i64::from_be_bytes(body[..8].try_into().expect("8 bytes"));
    let id = Uuid::from_slice(&body[8..]).expect("16 bytes");
    Ok(Some(ListCursor {
        created_at_micros: micros,
        id,
    }))
}

fn audit_fingerprint(workspace_id: &str, credential_id: Option<Uuid>) -> Fingerprint {
    let credential = credential_id.map(|id| id.to_string()).unwrap_or_default();
    fingerprint(&["audit", workspace_id, &credential])
}

/// The token for audit events older than `before_id`.
pub fn audit_token(workspace_id: &str, credential_id: Option<Uuid>, before_id: i64) -> String {
    encode(
        KIND_AUDIT,
        audit_fingerprint(workspace_id, credential_id),
        &before_id.to_be_bytes(),
    )
}

/// The position in an audit listing's token; `None` for the first page.
pub fn audit_before(
    workspace_id: &str,
    credential_id: Option<Uuid>,
    token: &str,
) -> Result<Option<i64>> {
    if token.is_empty() {
        return Ok(None);
    }
    let body = decode(
        token,
        KIND_AUDIT,
        audit_fingerprint(workspace_id, credential_id),
        8,
    )?;
    Ok(Some(i64::from_be_bytes(
        body[..8].try_into().expect("8 bytes"),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use credentials_core::Category;

    #[test]
    fn tokens_round_trip_and_are_bound_to_their_listing() {
        let filter = ListFilter {
            category: Some(Category::Llm),
            ..Default::default()
        };
        let cursor = ListCursor {
            created_at_micros: 1_700_000_000_000_000,
            id: Uuid::from_u128(42),
        };
        let token = credentials_token("ws-1", &filter, cursor);
        assert_eq!(
            credentials_cursor("ws-1", &filter, &token).unwrap(),
            Some(cursor)
        );
        assert_eq!(credentials_cursor("ws-1", &filter, "").unwrap(), None);

        let other = ListFilter::default();
        let err = credentials_cursor("ws-1", &other, &token).unwrap_err();
        assert!(matches!(err, ServiceError::InvalidArgument(v) if v.field == "page_token"));
        assert!(credentials_cursor("ws-2", &filter, &token).is_err());

        for bad in ["%%%", "AAAA", &token[..token.len() - 2], &"A".repeat(200)] {
            let err = credentials_cursor("ws-1", &filter, bad).unwrap_err();
            assert!(
                matches!(&err, ServiceError::InvalidArgument(v) if v.description == "malformed page token"),
                "{bad}: {err:?}"
            );
        }
        // An audit token is not a credential token.
        let audit = audit_token("ws-1", None, 10);
        assert!(credentials_cursor("ws-1", &filter, &audit).is_err());
        assert_eq!(audit_before("ws-1", None, &audit).unwrap(), Some(10));
        assert!(audit_before("ws-1", Some(Uuid::from_u128(1)), &audit).is_err());
    }
}
