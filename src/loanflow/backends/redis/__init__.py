"""Redis: the process's one client (`client.py`) and every service built on it."""
