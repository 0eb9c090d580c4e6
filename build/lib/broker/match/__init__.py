"""Matching: candidates (blocking), features (rapidfuzz), rules (durable-rules), consortia, the run."""
