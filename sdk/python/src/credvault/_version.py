"""The SDK's version: the vault release whose protos (credentials.v1) it was built from."""

__version__ = "0.1.0"
