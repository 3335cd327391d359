"""Shared helpers for the test suites (a loopback HTTP server, ...). Not a test package."""
