"""A throwaway HAProxy (Debian's `haproxy`) in the foreground, on a config the test writes.

The config must put its stats socket at `stats_socket` (`stats socket PATH level
admin`) and may log to stdout (`log stdout format raw local0`): that goes to
`log_path`, a line per request with whatever `log-format` the config gives.

    lb = Haproxy(directory)
    lb.start(config_text(stats_socket=lb.stats_socket))   # checked (`haproxy -c`) first
    lb.wait_status("loanflow_api", "api0", "DOWN", timeout_s=5)
    lb.log_lines()
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

HAPROXY = Path("/usr/sbin/haproxy")
#: Bounded waits: the config check, the stats socket answering, a stop.
CHECK_TIMEOUT_S = 10.0
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
SOCKET_TIMEOUT_S = 2.0


class Haproxy:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.config_path = directory / "haproxy.cfg"
        self.log_path = directory / "haproxy.log"
        #: Where the config must put its `stats socket` (short: a socket path has at most
        #: 107 bytes, and pytest's tmp_path can be longer).
        self._socket_dir = Path(tempfile.mkdtemp(prefix="lf-haproxy-"))
        self.stats_socket = self._socket_dir / "admin.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, config: str) -> Haproxy:
        self.config_path.write_text(config)
        if not HAPROXY.exists():
            raise RuntimeError(f"{HAPROXY} is not installed (`make test` installs it)")
        check = subprocess.run([str(HAPROXY), "-c", "-q", "-f", str(self.config_path)],
                               capture_output=True, text=True, timeout=CHECK_TIMEOUT_S)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy refused its config: {check.stdout}{check.stderr}")
        with open(self.log_path, "ab") as log:
            # -db: foreground, no daemon; stdout (the request log) to the file.
            self.proc = subprocess.Popen([str(HAPROXY), "-db", "-f", str(self.config_path)],
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited: {self.log_tail()}")
            try:
                self.command("show info")
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"haproxy not answering after {START_TIMEOUT_S}s: {self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM (a hard stop: open connections are closed), SIGKILL if it lingers."""
        try:
            if self.proc is None or self.proc.poll() is not None:
                return
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        finally:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    def command(self, line: str) -> str:
        """One command on the stats socket (`show stat`, `disable health …`); its answer."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(SOCKET_TIMEOUT_S)
            s.connect(str(self.stats_socket))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def status(self, backend: str, server: str) -> str:
        """The server's state as its health checks see it: "UP", "DOWN", "UP 1/2" (going
        down), "no check", "MAINT"."""
        rows = self.command("show stat").splitlines()
        header = rows[0].lstrip("# ").split(",")
        for row in rows[1:]:
            fields = dict(zip(header, row.split(","), strict=False))
            if fields.get("pxname") == backend and fields.get("svname") == server:
                return fields["status"]
        raise KeyError(f"no server {backend}/{server} in `show stat`")

    def wait_status(self, backend: str, server: str, status: str, *, timeout_s: float) -> float:
        """Poll until the server's state is exactly `status`; the seconds that took."""
        started = time.monotonic()
        while True:
            seen = self.status(backend, server)
            if seen == status:
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise AssertionError(f"{backend}/{server} still {seen!r}, not {status!r},"
                                     f" after {timeout_s}s")
            time.sleep(0.02)

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
