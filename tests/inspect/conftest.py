from tests.integration.conftest import cluster

__all__ = ["cluster"]
