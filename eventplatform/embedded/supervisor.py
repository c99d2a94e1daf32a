"""Runs the processes of a ``Procfile`` with prefixed output, for ``runplatform``.

The supervisor keeps the platform up rather than taking it down: a child that exits is
restarted after a delay that doubles up to a cap, and one that keeps exiting is reported
(console and status file) but never stops the others. Infrastructure (the embedded broker
and Redis) is watched too, and recovered by its own callback when it dies. Children get
SIGTERM on shutdown (SIGKILL after a grace period), in two waves: the Procfile processes,
then those marked ``stop_last`` (the topic journal, which must see their last writes).
"""

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eventplatform.embedded.process import spawn, stop_together

COLOURS = ["36", "33", "32", "35", "34", "31", "96", "93", "92"]
RED = "31"
#: More exits than this within a minute mark a process as failing.
MAX_RESTARTS = 5
FAILING_WINDOW_S = 60.0


@dataclass
class ProcessSpec:
    name: str
    command: str
    stop_last: bool = False


@dataclass
class Infrastructure:
    """A part the children depend on: ``recover()`` restarts it and restores its state."""

    name: str
    alive: Callable[[], bool]
    recover: Callable[[], None]
    pid: Callable[[], int | None]
    recoveries: int = 0
    problem: str = ""


@dataclass
class Child:
    spec: ProcessSpec
    colour: str
    process: subprocess.Popen | None = None
    exits: list[float] = field(default_factory=list)
    restarts: int = 0
    last_exit: int | None = None
    next_start: float | None = None
    held: bool = False  # stopped on purpose (e.g. while the broker recovers)

    @property
    def failing(self) -> bool:
        return len(self.exits) > MAX_RESTARTS


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
        max_restart_delay: float = 30.0,
        infrastructure: list[Infrastructure] = (),
        status_path: Path | None = None,
    ):
        self.children = [Child(s, COLOURS[i % len(COLOURS)]) for i, s in enumerate(specs)]
        self.infrastructure = list(infrastructure)
        self.env = env
        self.cwd = cwd
        self.out = out
        self.width = max((len(s.name) for s in specs), default=4)
        self._stopping = threading.Event()
        self._print_lock = threading.Lock()
        self.restart_delay = restart_delay
        self.max_restart_delay = max_restart_delay
        self.status_path = status_path

    def say(self, name: str, colour: str, text: str) -> None:
        with self._print_lock:
            self.out.write(f"\033[{colour}m{name:<{self.width}} |\033[0m {text}\n")
            self.out.flush()

    def child(self, name: str) -> Child:
        return next(child for child in self.children if child.spec.name == name)

    def _start(self, child: Child) -> None:
        child.next_start = None
        child.process = spawn(
            resolve(child.spec.command, self.env),
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
        )
        self.say(child.spec.name, child.colour, f"started (pid {child.process.pid})")
        threading.Thread(target=self._pipe, args=(child, child.process), daemon=True).start()

    def _pipe(self, child: Child, process: subprocess.Popen) -> None:
        for raw in process.stdout:
            self.say(child.spec.name, child.colour, raw.decode(errors="replace").rstrip())

    def request_stop(self, *_signal_args) -> None:
        self._stopping.set()

    # -- holding a child while something it depends on recovers ---------------------------

    def hold_all(self) -> None:
        """Stop every child and keep them stopped until :meth:`release_all` (used while the
        broker's state is restored, so no process writes into a half-restored topic)."""
        for child in self.children:
            child.held = True
            child.next_start = None
        self.stop_all(grace=10)

    def release_all(self) -> None:
        for child in self.children:
            child.held = False
            self._start(child)

    # -- the watch loop ------------------------------------------------------------------

    def run(self) -> int:
        """Start everything and keep it up until stopped; returns 0."""
        for child in self.children:
            self._start(child)
        self._write_status()
        while not self._stopping.wait(0.5):
            changed = self._watch_infrastructure()
            for child in self.children:
                changed |= self._watch(child)
            if changed:
                self._write_status()
        self.stop_all()
        self._write_status()
        return 0

    def _watch_infrastructure(self) -> bool:
        changed = False
        for part in self.infrastructure:
            if part.alive():
                continue
            changed = True
            self.say(part.name, RED, "died; restarting it and restoring its state")
            try:
                part.recover()
            except Exception as error:  # retried on the next round, and reported meanwhile
                part.problem = f"{type(error).__name__}: {error}"
                self.say(part.name, RED, f"recovery failed ({part.problem}); retrying")
                self._stopping.wait(2)
            else:
                part.recoveries += 1
                part.problem = ""
                self.say(part.name, "32", f"recovered (pid {part.pid()})")
        return changed

    def _watch(self, child: Child) -> bool:
        if child.held or self._stopping.is_set():
            return False
        now = time.monotonic()
        if child.next_start is not None:
            if now >= child.next_start:
                child.restarts += 1
                self._start(child)
                return True
            return False
        code = child.process.poll()
        if code is None:
            return False
        child.last_exit = code
        child.exits = [t for t in child.exits if now - t < FAILING_WINDOW_S] + [now]
        delay = min(self.max_restart_delay, self.restart_delay * 2 ** (len(child.exits) - 1))
        child.next_start = now + delay
        if child.failing:
            self.say(
                child.spec.name,
                RED,
                f"exited with {code}, {len(child.exits)} times in a minute: failing; "
                f"restarting in {delay:g}s (the rest of the platform keeps running)",
            )
        else:
            self.say(
                child.spec.name, RED, f"exited unexpectedly with {code}; restarting in {delay:g}s"
            )
        return True

    def status(self) -> dict:
        """What the status file says: each process's state, restarts and last exit."""
        now = time.monotonic()
        processes = {}
        for part in self.infrastructure:
            processes[part.name] = {
                "pid": part.pid(),
                "state": "running" if part.alive() and not part.problem else "recovering",
                "restarts": part.recoveries,
                "problem": part.problem,
            }
        for child in self.children:
            running = child.process is not None and child.process.poll() is None
            if self._stopping.is_set() and not running:
                state = "stopped"
            elif child.held:
                state = "held"
            elif child.failing and not (running and now - child.exits[-1] > FAILING_WINDOW_S):
                state = "failing"
            else:
                state = "running" if running else "restarting"
            processes[child.spec.name] = {
                "pid": child.process.pid if running else None,
                "state": state,
                "restarts": child.restarts,
                "last_exit": child.last_exit,
            }
        return {"pid": os.getpid(), "updated_at": time.time(), "processes": processes}

    def _write_status(self) -> None:
        if self.status_path is None:
            return
        temporary = self.status_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.status(), indent=2))
        temporary.replace(self.status_path)  # readers never see half a file

    def stop_all(self, grace: float = 15.0) -> None:
        first = [c for c in self.children if not c.spec.stop_last]
        last = [c for c in self.children if c.spec.stop_last]
        for wave in (first, last):
            self._stop_wave(wave, grace)

    def _stop_wave(self, children: list[Child], grace: float) -> None:
        started = [child for child in children if child.process is not None]
        ended = stop_together((child.process for child in started), timeout=grace)
        for child, stopped in zip(started, ended, strict=True):
            if stopped.killed:
                self.say(child.spec.name, RED, "did not stop in time; killed")
            self.say(child.spec.name, child.colour, f"stopped ({stopped.status})")
