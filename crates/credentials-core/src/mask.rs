//! Masked previews (being written).
