"""Start and stop the local IoT broker (`python -m localdev.iot.broker`) as a process of its own."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from localdev.servers import free_port, listening, terminate, wait_for
from pipeline_lib.settings import IOT_MAX_MESSAGE_BYTES

ROOT = Path(__file__).resolve().parents[2]


class LocalBroker:
    """The broker on a free loopback port: devices connect with certificates of `client_ca`, it
    serves `cert`/`key` (a certificate for 127.0.0.1 its devices trust), and reads the emulator."""

    def __init__(self, *, emulator: str, region: str, client_ca: Path, cert: Path, key: Path, root: Path,
                 env: dict[str, str] | None = None, wait: bool = True) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.stats_file = root / "broker-stats.json"
        self.log = root / "broker.log"
        self.stats_file.unlink(missing_ok=True)  # a run before this one's
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from localdev.iot.broker import main; main()", "--port", str(self.port),
                 "--emulator", emulator, "--region", region, "--client-ca", str(client_ca), "--cert", str(cert),
                 "--key", str(key), "--stats", str(self.stats_file),
                 "--max-message-bytes", str(IOT_MAX_MESSAGE_BYTES)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Back once the broker listens (it starts in a few seconds: do other work meanwhile with wait=False)."""
        try:
            wait_for(lambda: listening(self.port) or self.process.poll() is not None, 30, "the local IoT broker")
        except TimeoutError:
            self.close()
            raise
        if self.process.poll() is not None:
            raise RuntimeError(f"the local IoT broker exited {self.process.returncode}: {self.log.read_text()[-2000:]}")

    def stats(self) -> dict[str, Any]:
        return json.loads(self.stats_file.read_text()) if self.stats_file.exists() else {}

    def close(self) -> dict[str, Any]:
        """Stop the broker; its last figures."""
        terminate(self.process, timeout_s=15)
        return self.stats()
