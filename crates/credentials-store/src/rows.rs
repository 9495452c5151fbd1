//! Mapping between rows and domain types, kept in one place so every query selects the same
//! columns in the same order.

use crate::{Result, StoreError};
use credentials_core::{
    Category,
    model::{Credential, Validation, ValidationOutcome, ValidationState},
    payload::Envelope,
};
use tokio_postgres::Row;

/// The metadata columns every credential query returns, in this order.
pub const CREDENTIAL_COLUMNS: &str = "id, workspace_id, name, category, type_id, description, \
    masked_content, is_default, validation_state, validation_outcome, validation_message, \
    validated_at, schema_discovered_at, created_at, updated_at, deleted_at, revision, \
    master_key_id, master_key_version";

/// The envelope columns, selected after [`CREDENTIAL_COLUMNS`] when the secret is needed.
pub const ENVELOPE_COLUMNS: &str =
    "ciphertext, nonce, wrapped_key, payload_format, value_generation";

pub fn credential(row: &Row) -> Result<Credential> {
    let category: String = row.try_get(3)?;
    let master_key_id: Option<String> = row.try_get(17)?;
    let master_key_version: Option<i32> = row.try_get(18)?;
    Ok(Credential {
        id: row.try_get(0)?,
        workspace_id: row.try_get(1)?,
        name: row.try_get(2)?,
        category: Category::parse(&category).ok_or(StoreError::Corrupt("category"))?,
        type_id: row.try_get(4)?,
        description: row.try_get(5)?,
        masked_content: row.try_get(6)?,
        is_default: row.try_get(7)?,
        validation: Validation {
            state: ValidationState::from_code(row.try_get(8)?)
                .ok_or(StoreError::Corrupt("validation_state"))?,
            outcome: ValidationOutcome::from_code(row.try_get(9)?)
                .ok_or(StoreError::Corrupt("validation_outcome"))?,
            message: row.try_get(10)?,
            checked_at: row.try_get(11)?,
        },
        has_schema: row
            .try_get::<_, Option<std::time::SystemTime>>(12)?
            .is_some(),
        schema_updated_at: row.try_get(12)?,
        created_at: row.try_get(13)?,
        updated_at: row.try_get(14)?,
        deleted_at: row.try_get(15)?,
        revision: row.try_get(16)?,
        master_key: match (master_key_id, master_key_version) {
            (Some(id), Some(v)) => Some((
                id,
                u32::try_from(v).map_err(|_| StoreError::Corrupt("master_key_version"))?,
            )),
            _ => None,
        },
    })
}

/// The envelope of a live credential selected with `CREDENTIAL_COLUMNS, ENVELOPE_COLUMNS`.
pub fn envelope(row: &Row, credential: &Credential) -> Result<Envelope> {
    let (master_key_id, master_key_version) = credential
        .master_key
        .clone()
        .ok_or(StoreError::Corrupt("live credential without envelope"))?;
    Ok(Envelope {
        ciphertext: row.try_get(19)?,
        nonce: row.try_get(20)?,
        wrapped_key: row.try_get(21)?,
        payload_format: row.try_get(22)?,
        value_generation: row.try_get(23)?,
        master_key_id,
        master_key_version,
    })
}
