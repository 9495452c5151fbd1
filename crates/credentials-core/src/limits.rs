//! The documented limits. Requests beyond them fail with INVALID_ARGUMENT naming the field.

/// Longest credential name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
/// Largest value: the sum of field names and field values, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most fields in a value.
pub const MAX_FIELDS: usize = 32;
/// Longest field name, in bytes.
pub const MAX_FIELD_NAME_BYTES: usize = 64;
/// Page size when a request gives none.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page size.
pub const MAX_PAGE_SIZE: usize = 500;
/// Largest gRPC request message, in bytes.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Longest workspace id, in bytes.
pub const MAX_WORKSPACE_ID_BYTES: usize = 64;
