"""Which process holds a call: an owner id written into the call's row while it is in progress,
so a later process can tell a row whose process has died (``kill -9``, a crash, a power cut).

An id is ``host:boot:pid:start``: the host name, the kernel's boot id, the process id and the
process's start time (clock ticks since boot, from ``/proc``), so neither a reboot nor a reused
pid makes a dead process look alive. A process can only judge owners on its own host; an owner
on another host is "unknown" (its own host's next start-up marks it).
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

_PROC = Path("/proc")


def _boot_id() -> str:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()[:8] or "-"
    except OSError:
        return "-"


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot; None if there is no such process.
    "-" where ``/proc`` is not there (not Linux): the pid alone then says it is alive."""
    if not _PROC.is_dir():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, someone else's
        return "-"
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ")"
    return stat.rsplit(")", 1)[1].split()[19]


@functools.cache
def this_process() -> str:
    """This process's owner id (for the rows of the calls it carries)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{_boot_id()}:{pid}:{_start_ticks(pid) or '-'}"


def is_dead(owner: str) -> bool:
    """True when ``owner`` was a process on this host that is gone; False when it is alive, on
    another host, or not an owner id (a row written before owners were recorded)."""
    parts = owner.rsplit(":", 3)
    if len(parts) != 4 or not parts[2].isdigit():
        return False
    host, boot, pid, start = parts
    me_host, me_boot, *_ = this_process().rsplit(":", 3)
    if host != me_host:
        return False
    if boot != me_boot:
        return True  # the machine has restarted since
    return owner != this_process() and _start_ticks(int(pid)) not in (start, "-")
