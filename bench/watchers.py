"""`python -m bench.watchers [--watchers 1000] [--chunks 200] [--channels 10] [--database-url URL]`.

Watch fan-out: a real `runservice serve` (SQLite as in the service benchmark, or with
`--database-url` a scratch schema of that PostgreSQL database) and `--watchers` Watch
streams on one run, spread over `--channels` connections from this process. Once every
stream has its first message (the run, `include_run`), the run starts: one step writing
`--chunks` output chunks, one commit and one event each. Prints the events delivered to all
watchers together per second, from the Start to the last stream's end-of-stream. The client
decodes every message too, so on a 2-core machine it shares the CPU with the server: the
figure is a lower bound of the server's fan-out.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid

import grpc
from google.protobuf import struct_pb2

from bench.service_runs import serving
from runservice.v1 import run_service_pb2, run_service_pb2_grpc


async def watch(stub: run_service_pb2_grpc.RunServiceAsyncStub, run_id: str, ready: asyncio.Event) -> int:
    """Follow the run to its end; returns the number of events received."""
    events = 0
    call = stub.Watch(run_service_pb2.WatchRequest(run_id=run_id, include_run=True))
    async for reply in call:
        if reply.HasField("run"):
            ready.set()
        events += len(reply.events)
        if reply.end_of_stream:
            break
    return events


async def once(address: str, watchers: int, chunks: int, channels: int) -> tuple[float, int]:
    """(events per second delivered in total, events per watcher) of one run."""
    opened = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(channels)
    ]
    try:
        stubs = [run_service_pb2_grpc.RunServiceStub(channel) for channel in opened]
        run_id = uuid.uuid4().hex
        await stubs[0].CreateRun(run_service_pb2.CreateRunRequest(workflow_id="bench-chatty", run_id=run_id))
        readies = [asyncio.Event() for _ in range(watchers)]
        tasks = [asyncio.create_task(watch(stubs[i % channels], run_id, readies[i])) for i in range(watchers)]
        await asyncio.gather(*(ready.wait() for ready in readies))
        data = struct_pb2.Value()
        data.struct_value.update({"count": chunks})
        started = time.perf_counter()
        await stubs[0].Start(
            run_service_pb2.StartRequest(workflow_id="bench-chatty", run_id=run_id, input_data=data)
        )
        counts = await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        if len(set(counts)) != 1:
            raise RuntimeError(f"watchers saw different numbers of events: {sorted(set(counts))}")
        return sum(counts) / elapsed, counts[0]
    finally:
        for channel in opened:
            await channel.close()


async def measure(
    watchers: int, chunks: int, channels: int, repeat: int, database_url: str | None = None
) -> list[float]:
    async with serving(database_url) as (server, driver):
        del driver
        rates = []
        for _ in range(repeat):
            rate, per_watcher = await once(server.address, watchers, chunks, channels)
            print(f"  {rate:,.0f} events/s ({per_watcher} events x {watchers} watchers)", file=sys.stderr)
            rates.append(rate)
        return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.watchers", description=__doc__.split("\n\n")[1])
    parser.add_argument("--watchers", type=int, default=1000, help="Watch streams on the run (default 1000)")
    parser.add_argument("--chunks", type=int, default=200, help="output chunks the run writes (default 200)")
    parser.add_argument("--channels", type=int, default=10, help="connections the streams share (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs measured (default 3)")
    parser.add_argument(
        "--database-url", metavar="URL", help="a postgresql:// URL (default: a scratch SQLite file)"
    )
    args = parser.parse_args(argv)
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgres://")):
        parser.error("--database-url must be a postgresql:// URL")
    rates = asyncio.run(measure(args.watchers, args.chunks, args.channels, args.repeat, args.database_url))
    print(
        f"{args.watchers} watchers on one run: median {statistics.median(rates):,.0f} events/s delivered"
        f" in total (of {len(rates)} runs: {', '.join(f'{r:,.0f}' for r in rates)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
