//! Values (being written).
