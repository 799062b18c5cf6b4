"""Private redis-server processes on free loopback ports; tests never touch a shared Redis."""

from __future__ import annotations

import shutil
import subprocess
import time

import redis

from app.store.embedded import EmbeddedRedis, free_port


class RedisServer(EmbeddedRedis):
    """The app's embedded redis-server, with a flush for tests (only ever of our own)."""

    def __init__(self, *extra_args: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH (.ci/run installs it)")
        super().__init__(binary, *extra_args)

    def flush(self) -> None:
        client = redis.Redis(port=self.port)
        client.flushall()
        client.close()


class RedisClusterServers:
    """A local 3-master Redis Cluster (no replicas) on free loopback ports."""

    def __init__(self, masters: int = 3) -> None:
        # The cluster bus defaults to port + 10000, which overflows for high free ports.
        self.nodes = [
            RedisServer(
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                str(free_port()),
                "--cluster-config-file",
                f"nodes-{i}.conf",
                "--cluster-node-timeout",
                "2000",
            )
            for i in range(masters)
        ]
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
        self._wait_ok()
        self.url = f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def _wait_ok(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            states = []
            for node in self.nodes:
                info = redis.Redis(port=node.port, decode_responses=True).cluster("info")
                states.append(info.get("cluster_state") if isinstance(info, dict) else info)
            if all(state == "ok" for state in states):
                return
            time.sleep(0.1)
        raise RuntimeError("the local Redis Cluster did not become ready")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
