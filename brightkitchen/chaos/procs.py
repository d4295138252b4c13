"""Child processes of a chaos run: started, SIGKILLed and restarted with the same command.

A service that exits without the run having killed it (a crash: for example one message
that stops ingest) is counted and restarted, and the report names it, because a pipeline
that needs a person to restart it has lost data in all but name.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Service:
    """One child process and how to start it again."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    crashes: list[str] = field(default_factory=list)
    _killed: bool = False

    @classmethod
    def cli(cls, name: str, args: list[str], env: dict[str, str], logs: Path) -> Service:
        """A ``brightkitchen <args>`` child."""
        return cls(
            name, [sys.executable, "-m", "brightkitchen.cli", *args], env, logs / f"{name}.log"
        )

    @classmethod
    def module(
        cls, name: str, mod: str, args: list[str], env: dict[str, str], logs: Path
    ) -> Service:
        """A ``python -m <mod> <args>`` child."""
        return cls(name, [sys.executable, "-m", mod, *args], env, logs / f"{name}.log")

    def start(self) -> None:
        """Start the process (its output appends to its log)."""
        with self.log_path.open("ab") as log:
            log.write(
                f"\n=== start {self.starts + 1} at {time.strftime('%H:%M:%S')} ===\n".encode()
            )
            log.flush()
            self.proc = subprocess.Popen(  # noqa: S603 (our own interpreter and CLI)
                self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT
            )
        self.starts += 1
        self._killed = False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` and wait for the exit (SIGKILL after 20 s of a gentler signal)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self._killed = True
        self.proc.send_signal(sig)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def check(self, at_s: float) -> bool:
        """Restart the process if it died on its own; return True when it had."""
        if self.proc is None or self._killed or self.proc.poll() is None:
            return False
        self.crashes.append(f"{self.name} exited with code {self.proc.returncode} at {at_s:.0f} s")
        self.start()
        return True

    def log_text(self) -> str:
        """The whole log (for readiness checks)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
