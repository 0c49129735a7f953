"""Activation: the golden customers sent to downstream systems, and erasure of a person (GDPR)."""
