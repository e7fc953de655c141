"""Fresh interpreters for model copies, started so that they never import the user's script.

multiprocessing's "spawn" runs the parent's main module again in every child, so a script
that benchmarks at its top level (every NeuronPerf 1.x script: 1.x forked) would start a
benchmark per copy. Here a copy is ``python -c BOOT``: neuronperf's own entry point
(``runners.fresh_copy_main``), which imports neuronperf_core and whatever the job refers
to, nothing else. The job reaches it over a socket, serialised with cloudpickle, so what
the script defined (a model or metric class, a preprocess_fn, a lambda) travels by value,
as with Ray, loky and Dask; what lives in an importable module travels by reference and
is imported from the parent's ``sys.path``, which the child takes over before unpickling.
This module is the transport (starting such a process, its messages, its ties to the
parent); what a copy does is the runner's.

- Ctrl-C stays with the parent. Copies start with SIGINT blocked (the mask survives fork
  and exec) and ignore it before unblocking it, so no Ctrl-C can reach a copy, however
  early; in the parent it is only held back while ``Popen`` runs.
- A copy dies with its parent: the parent's end of the socket closes when it dies, which
  the copy's listening thread notices at any moment (``runners._Parent``), and on Linux
  the kernel also kills it (``PR_SET_PDEATHSIG``).
- The parent sees a copy end through a pidfd (Linux), even if the copy forked children
  that keep the socket open; elsewhere through the socket's end.

Messages from a copy are cloudpickled too (``send``): a metric instance of a class the
script defined goes back by value, and cloudpickle's class tracking makes it an
instance of the user's own class again in the parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import pickle
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import neuronperf_core

# A child is started as `python [the parent's -X/-W/... flags] -c BOOT ROOT FD PARENT_PID
# COPY_ID`. ROOT, the folder that holds neuronperf_core, goes first on sys.path so that the
# child imports the parent's neuronperf_core before it has the parent's whole sys.path.
BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from neuronperf_core.benchmarking.runners import fresh_copy_main; fresh_copy_main()"
)
EXIT_ORPHANED = 3  # the parent died: nobody is left to read a result
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def dumps(obj: Any) -> bytes:
    """``obj`` serialised with cloudpickle (by value where pickle would need an import)."""
    import cloudpickle  # type: ignore[import-untyped]

    data: bytes = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return data


class _Discard(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(memoryview(data))


def check_serialisable(obj: Any) -> None:
    """Raise what cloudpickle raises if ``obj`` cannot be serialised, keeping no bytes."""
    import cloudpickle

    cloudpickle.CloudPickler(_Discard(), protocol=pickle.HIGHEST_PROTOCOL).dump(obj)


def send(conn: Connection, message: Any) -> None:
    """A message from a copy to the parent (which reads it with ``conn.recv()``)."""
    conn.send_bytes(dumps(message))


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """SIGINT blocked in this thread while children start: they inherit the mask, so a
    Ctrl-C cannot reach one before it ignores SIGINT. Here a Ctrl-C waits, it is not lost."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _interpreter_flags() -> list[str]:
    """This interpreter's -X, -W, -O ... options, which multiprocessing passes on too."""
    flags: list[str] = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    return flags


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(neuronperf_core.__file__)))


class FreshProcess:
    """A model copy in a fresh interpreter, as ``ProcessRunner`` sees a process: ``conn``,
    ``sentinel``, ``join``, ``exitcode``, ``is_alive``, ``terminate``, ``kill``, ``close``."""

    def __init__(self, copy_id: int) -> None:
        ours, theirs = socket.socketpair()
        command = [
            sys.executable,
            *_interpreter_flags(),
            "-c",
            BOOT,
            _package_root(),
            str(theirs.fileno()),
            str(os.getpid()),
            str(copy_id),
        ]
        try:
            with _sigint_held():
                self.popen = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),)
                )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.copy_id = copy_id
        self.conn = Connection(ours.detach())
        self.sentinel: int | None = None
        with contextlib.suppress(AttributeError, OSError):  # Linux 5.3+ only
            self.sentinel = os.pidfd_open(self.popen.pid)

    def send_job(self, payload: bytes) -> None:
        """The parent's sys.path and argv, then the serialised job. A copy that already
        died is not an error here: the runner reports its death."""
        with contextlib.suppress(OSError):
            self.conn.send({"sys_path": list(sys.path), "sys_argv": list(sys.argv)})
            self.conn.send_bytes(payload)

    @property
    def exitcode(self) -> int | None:
        """The exit status, or minus the signal that killed it (as multiprocessing says)."""
        return self.popen.returncode

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def terminate(self) -> None:
        self.popen.terminate()

    def kill(self) -> None:
        self.popen.kill()

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)

    def close(self) -> None:
        if self.sentinel is not None:
            os.close(self.sentinel)
            self.sentinel = None


# -- in the child -------------------------------------------------------------------


def die_with_parent(parent_pid: int) -> None:
    """In a copy (forked or fresh), best effort: on Linux the kernel kills this process when
    the thread that started it ends (the runner joins its copies before it returns, so that
    is the parent's death: SIGKILL, SIGTERM, a crash)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before we asked
        os._exit(EXIT_ORPHANED)
