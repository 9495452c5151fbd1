//! Type catalogue (being written).
