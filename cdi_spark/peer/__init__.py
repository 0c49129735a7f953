"""Benchmark peers: other identity-resolution tools run on our standardized records, each in its own venv."""
