//! Shared core/v1 types, errors and client for skiff.
