"""Production store: PostgreSQL through one asyncpg pool per process (several hosts: the
primary found and followed), its SQL beside each concept's contract in store/."""
