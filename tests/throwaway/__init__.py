"""Throwaway service processes for tests (real services, never fakes of our own backends)."""
