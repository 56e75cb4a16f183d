//! The evidence signing key (OpenSSH Ed25519).
