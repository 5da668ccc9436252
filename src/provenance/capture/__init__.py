"""Capture pipeline: fetch, extract, orchestrate."""
