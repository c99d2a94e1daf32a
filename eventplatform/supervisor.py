"""Runs the processes of a ``Procfile`` with prefixed output, for ``runplatform``.

Children get SIGTERM on shutdown (then SIGKILL after a grace period). A child that dies on
its own is reported and restarted with backoff; one that keeps dying stops the platform.
"""

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

COLOURS = ["36", "33", "32", "35", "34", "31", "96", "93", "92"]
MAX_RESTARTS = 5


@dataclass
class ProcessSpec:
    name: str
    command: str


@dataclass
class Child:
    spec: ProcessSpec
    colour: str
    process: subprocess.Popen | None = None
    restarts: list[float] = field(default_factory=list)


def read_procfile(path: Path) -> list[ProcessSpec]:
    specs = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and ":" in line:
            name, command = line.split(":", 1)
            specs.append(ProcessSpec(name.strip(), command.strip()))
    return specs


def resolve(command: str, env: dict[str, str]) -> list[str]:
    """Expand ``$VARS`` and run ``python``/tools from this interpreter's environment."""
    words = [os.path.expandvars(word) for word in shlex.split(command)]
    for key, value in env.items():
        words = [w.replace(f"${key}", value) for w in words]
    bin_dir = Path(sys.executable).parent
    if words[0] == "python":
        words[0] = sys.executable
    elif (bin_dir / words[0]).exists():
        words[0] = str(bin_dir / words[0])
    return words


class Supervisor:
    def __init__(
        self,
        specs: list[ProcessSpec],
        *,
        env: dict[str, str],
        cwd: Path,
        out=sys.stdout,
        restart_delay: float = 1.0,
    ):
        self.children = [Child(s, COLOURS[i % len(COLOURS)]) for i, s in enumerate(specs)]
        self.env = env
        self.cwd = cwd
        self.out = out
        self.width = max((len(s.name) for s in specs), default=4)
        self._stopping = threading.Event()
        self._print_lock = threading.Lock()
        self.restart_delay = restart_delay
        self.failed: str | None = None

    def say(self, name: str, colour: str, text: str) -> None:
        with self._print_lock:
            self.out.write(f"\033[{colour}m{name:<{self.width}} |\033[0m {text}\n")
            self.out.flush()

    def _start(self, child: Child) -> None:
        child.process = subprocess.Popen(
            resolve(child.spec.command, self.env),
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # our signal handler decides when children stop
        )
        self.say(child.spec.name, child.colour, f"started (pid {child.process.pid})")
        threading.Thread(target=self._pipe, args=(child, child.process), daemon=True).start()

    def _pipe(self, child: Child, process: subprocess.Popen) -> None:
        for raw in process.stdout:
            self.say(child.spec.name, child.colour, raw.decode(errors="replace").rstrip())

    def request_stop(self, *_signal_args) -> None:
        self._stopping.set()

    def run(self) -> int:
        """Start everything, watch until stopped; return the exit status for the platform."""
        for child in self.children:
            self._start(child)
        while not self._stopping.wait(0.5):
            for child in self.children:
                code = child.process.poll()
                if code is not None and not self._stopping.is_set():
                    self._handle_death(child, code)
        self.stop_all()
        return 1 if self.failed else 0

    def _handle_death(self, child: Child, code: int) -> None:
        now = time.monotonic()
        child.restarts = [t for t in child.restarts if now - t < 60] + [now]
        if len(child.restarts) > MAX_RESTARTS:
            self.say(
                child.spec.name,
                "31",
                f"exited with {code} {MAX_RESTARTS} times in a minute; stopping the platform",
            )
            self.failed = child.spec.name
            self._stopping.set()
            return
        delay = self.restart_delay * 2 ** (len(child.restarts) - 1)
        self.say(
            child.spec.name, "31", f"exited unexpectedly with {code}; restarting in {delay:g}s"
        )
        self._stopping.wait(delay)
        self._start(child)

    def stop_all(self, grace: float = 15.0) -> None:
        for child in self.children:
            if child.process and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in self.children:
            if child.process is None:
                continue
            try:
                code = child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                code = child.process.wait()
                self.say(child.spec.name, "31", "did not stop in time; killed")
            self.say(child.spec.name, child.colour, f"stopped ({code})")
