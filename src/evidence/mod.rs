//! Signed evidence: an in-toto Statement v1 over the journal, signed with SSHSIG.
