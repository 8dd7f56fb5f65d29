"""The gRPC edge: RunService over the engine, with health checking and reflection.

    server = build_server(engine, address="127.0.0.1:0", heartbeat=15.0)
    await server.start()          # server.port is the bound port
    ...
    await server.stop(grace=5.0)

`serve(...)` runs a whole process (store, engine, server, signals).
"""

from runservice.server.app import EdgeOptions, RunServer, build_server, serve

__all__ = ["EdgeOptions", "RunServer", "build_server", "serve"]
