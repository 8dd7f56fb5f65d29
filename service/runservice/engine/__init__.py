"""The engine: runs workflows durably on a Store. Knows nothing of gRPC."""

from runservice.engine.engine import Engine

__all__ = ["Engine"]
