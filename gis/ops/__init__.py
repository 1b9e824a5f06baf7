"""Operations: backup and restore."""
