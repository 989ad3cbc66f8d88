"""Embedded mode: SQLite files in the data directory, each written through one writer
thread per process (group commit) and read by a few reader threads."""
