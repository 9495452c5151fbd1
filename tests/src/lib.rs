//! Harness for end-to-end tests: finds and starts the workspace binaries.
