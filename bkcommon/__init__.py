"""Contracts shared by the edge box, ingest and the API.

This package imports nothing heavy (pydantic, PyYAML only) so an edge box and a
backend can both depend on it. Message schemas, topic builders and parsers,
settings pieces, the site file, logging and the error tree live here.
"""

SCHEMA_VERSION = 1
