"""Operations: the outbox's dead letters, the audit log and its verification, live events."""
