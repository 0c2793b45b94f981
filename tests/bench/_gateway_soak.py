"""A virtual home's gateway run until every device has covered ``--hours`` of scenario time (bench helper).

``python -m tests.bench._gateway_soak --mqtt-url URL --gateway ID --scenario NAME --speed X --hours H
--run-dir DIR`` builds the gateway ``vitalbridge sim run --mode home`` builds (real decoders, pipelines,
spool and publisher, the scenario's virtual devices) and prints, every ``--sample-s`` wall seconds, a
JSON line with the scenario time the slowest device has reached, this process's resident memory
(VmRSS, KiB), the spool's depth and the values published. It stops, drains and prints ``"done"``
once the slowest device has covered ``--hours``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from edge.config import DeviceConfig, GatewayConfig
from edge.transports import TransportRegistry
from simulators.scenarios import load_scenario
from vitalbridge.gateway import build_agent
from vitalbridge.home import home_devices
from vitalbridge.virtual import VirtualTransport, VirtualTransportFactory


def rss_kib(field: str = "VmRSS") -> int:
    """This process's resident memory (``VmRSS``) or its peak (``VmHWM``), KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def soak(args: argparse.Namespace) -> None:
    scenario = load_scenario(args.scenario)
    devices, _warnings = home_devices(scenario, address=args.scenario, seed=1, utc_offset_s=0)
    target_s = args.hours * 3600.0
    # Scenario time starts far enough back that the run never catches up with the clock.
    start_ns = time.time_ns() - int((target_s + 3600) * 1e9)
    config = GatewayConfig(gateway=args.gateway, mqtt_url=args.mqtt_url, spool=str(args.run_dir / "spool.db"),
                           batch_interval_s=1.0, utc_offset_s=0, devices=devices)
    transports = TransportRegistry()
    created: dict[str, VirtualTransport] = {}  # the latest transport of each device
    factory = VirtualTransportFactory(start_ns=start_ns, speed=args.speed)

    def recording(device: DeviceConfig, profile: object, clock_ns: object) -> VirtualTransport:
        transport = factory(device, profile, clock_ns)  # type: ignore[arg-type]
        created[device.id] = transport
        return transport

    transports.add("virtual", recording)
    agent = build_agent(config, transports=transports)
    stop = asyncio.Event()
    runner = asyncio.create_task(agent.run(stop))
    began = time.monotonic()

    def covered() -> float:
        reached = [t.device.run.elapsed_s for t in created.values() if t.device.run is not None]
        return min(reached) if reached and len(reached) == len(devices) else 0.0

    while True:
        await asyncio.sleep(args.sample_s)
        if runner.done():
            runner.result()
        scenario_s = covered()
        print(json.dumps({"wall_s": round(time.monotonic() - began, 1), "scenario_s": round(scenario_s),
                          "rss_kib": rss_kib(), "spool": len(agent.spool),
                          "published": agent.publisher.published_samples,
                          "held": sum(d.pipeline.held for d in agent.devices.values()  # type: ignore[attr-defined]
                                      if d.pipeline is not None)}), flush=True)
        if scenario_s >= target_s:
            break
    stop.set()
    await runner
    print(json.dumps({"done": True, "devices": [d.id for d in devices], "peak_rss_kib": rss_kib("VmHWM"),
                      "published": agent.publisher.published_samples, "left": len(agent.spool)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mqtt-url", required=True)
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--speed", type=float, required=True)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--run-dir", type=Path, required=True)
    asyncio.run(soak(parser.parse_args()))


if __name__ == "__main__":
    main()
