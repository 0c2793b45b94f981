"""Built-in pipeline stages, one folder each (folder name = registry key = config key)."""

__all__: list[str] = []
