"""What the one-shot ``cloud`` commands share: the cloud's settings and its store, or one plain line."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloud.service import CloudConfig
    from cloud.store import Store

__all__ = ["open_cloud_store"]


def open_cloud_store(name: str, **overrides: Any) -> tuple[CloudConfig, Store] | int:
    """The settings (``VB_*`` variables, then ``overrides``) and the opened store; on a mistake, the exit
    status after printing ``name: what is wrong`` (2: a setting; 1: the database cannot be opened)."""
    from cloud.service import CloudConfig, ConfigError, _safe_url
    from cloud.store import open_store

    try:
        config = CloudConfig.from_env(**overrides)
    except ConfigError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    try:
        return config, open_store(config.database_url)
    except Exception as exc:
        print(f"{name}: cannot open the database {_safe_url(config.database_url)}: "
              f"{str(exc).splitlines()[0][:300]}", file=sys.stderr)
        return 1
