//! Bearer-token authentication (being written).
