"""``vitalbridge edge run``: load the config, build the agent (:mod:`edge.gateway`) and run it until a signal."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
from pathlib import Path

from device_profiles import ProfileError
from edge.config import ConfigError, GatewayConfig, load_config
from edge.gateway import build_agent, first_problem
from edge.status_keeper import StatusKeeper
from vitalbridge._signals import stop_on_signals

__all__ = ["run_gateway"]

log = logging.getLogger(__name__)


def _announce(config: GatewayConfig) -> None:
    """What `edge run` will do, at the default log level."""
    log.info("gateway %s: %d device(s); cloud broker %s; spool %s; status file %s; time zone %s",
             config.gateway, len(config.devices), config.mqtt_url.split("@")[-1] if "@" in config.mqtt_url
             else config.mqtt_url, config.spool, config.status_path, config.timezone or
             (f"fixed UTC offset {config.utc_offset_s:+d} s" if config.utc_offset_s is not None else "UTC"))
    if config.timezone is None and config.utc_offset_s is not None:
        log.warning("utc_offset_s is a fixed offset without daylight saving; write `timezone: Europe/Berlin` "
                    "(your zone's name) instead")
    for device in config.devices:
        log.info("will read device %s: %s over %s at %s for patient %s", device.id, device.profile,
                 device.transport, device.address or "-", device.patient)
    if not config.devices:
        log.warning("no devices configured; add one with `vitalbridge edge pair`")


def run_gateway(config_path: Path) -> int:
    """``vitalbridge edge run``: run the gateway in ``config_path`` until SIGINT/SIGTERM.

    A config mistake prints one line and returns 2, before anything starts.
    """
    for name in ("edge", "vitalbridge"):  # what a person needs to see, even without -v
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"vitalbridge edge run: {exc}", file=sys.stderr)
        return 2
    try:
        agent = build_agent(config)
    except ConfigError as exc:
        print(f"vitalbridge edge run: {exc}", file=sys.stderr)
        return 2
    except ProfileError as exc:
        print(f"vitalbridge edge run: broken device profile: {first_problem(exc)}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:  # the spool's folder or file cannot be made or opened
        print(f"vitalbridge edge run: {config_path}: spool: cannot open {config.spool}: {exc}", file=sys.stderr)
        return 2
    _announce(config)

    async def main() -> None:
        stop = asyncio.Event()
        keeper = StatusKeeper(agent, config.status_path, stopping=stop)
        keeper_stop = asyncio.Event()
        keeper_task = asyncio.create_task(keeper.run(keeper_stop), name="status")
        try:
            with stop_on_signals(stop):
                stats = await agent.run(stop)
            log.debug("gateway stopped: %s", stats)
        finally:
            keeper_stop.set()
            await keeper_task

    asyncio.run(main())
    print(f"gateway {config.gateway} stopped; published {agent.publisher.published_samples} values "
          f"in {agent.publisher.published} batches; {len(agent.spool)} batches left in the spool")
    return 0
