"""Generators translate a batch of sources and return targets with metadata (docs/study.md)."""

from regurgitate.generators.base import Generation, Generator, cost_record, generations_frame

__all__ = ["Generation", "Generator", "cost_record", "generations_frame"]
