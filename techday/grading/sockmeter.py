"""The memory a sandbox's sockets hold, read from outside it.

A socket's buffers are the kernel's memory, in no process's pages: :func:`techday.proctree.tree_memory` does not
see them, ``RLIMIT_AS`` does not count them, and only a cgroup's memory limit would. A cell's child held 640 MB
of the grading host's memory in 2,879 Unix socket pairs, each filled to its default send buffer, under a 300 MB
limit; a socket's send buffer may be raised to twice ``net.core.wmem_max`` (8 MB on the machine measured), and a
socket passed over another one and closed is in no process's descriptors at all.

Every sandbox has a network namespace of its own (bwrap's ``--unshare-all``), so every socket it makes, open or
in flight, is in that namespace's tables. :class:`SocketMeter` runs this module as a process of the grader's
(outside the sandbox's processes, its cgroup and its limits) that joins the sandbox's network namespace, and the
user namespace that owns it (where the grader's user holds every capability), and answers each request with what
the kernel's ``sock_diag`` says every socket there holds: its receive queue, its send queue and what is in flight
(``SK_MEMINFO``: ``RMEM_ALLOC``, ``WMEM_ALLOC``, ``WMEM_QUEUED``), for Unix, TCP, UDP and UDP-Lite sockets over
IPv4 and IPv6, and from ``/proc/net/netlink`` each netlink socket's. The process is single-threaded, as joining
a user namespace requires, and lives as long as the notebook.

Pipes and other descriptors: :func:`descriptors_held` reads, from outside, each pipe open in a sandbox process's
descriptors, counted once at its capacity (``F_GETPIPE_SZ``: 64 kB by default, up to ``fs.pipe-max-size``, 1 MB,
when raised), which bounds what it can hold whatever it holds now, and the kernel's objects behind every
descriptor.

Not read: sockets of other families (raw and packet sockets need ``CAP_NET_RAW``, which the sandbox has not;
SCTP, ``AF_ALG``, ``AF_VSOCK`` and the like: refused by the CPU tier's seccomp filter, see
``techday.grading.sandbox``, never measured on the GPU tier); pipes passed over a Unix socket and closed (in no
process's descriptors: at most ``RLIMIT_NOFILE`` of them for the host's user the sandbox runs as, 1,024 at the
sandbox's limit, and past the kernel's ``fs.pipe-user-pages-soft``, 64 MB a user, each new pipe holds 8 kB).
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import select
import socket
import stat
import struct
import subprocess
import sys

from ..proctree import PACKAGE_ROOT

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
UDIAG_SHOW_MEMINFO = 0x20
UNIX_DIAG_MEMINFO = 5
INET_DIAG_SKMEMINFO = 7
NS_GET_USERNS = 0xB701
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
# SK_MEMINFO_*: the kernel's order of the u32s in a meminfo attribute.
RMEM_ALLOC, WMEM_ALLOC, WMEM_QUEUED = 0, 2, 5
PROTOCOLS = ((socket.AF_INET, socket.IPPROTO_TCP), (socket.AF_INET6, socket.IPPROTO_TCP),
             (socket.AF_INET, socket.IPPROTO_UDP), (socket.AF_INET6, socket.IPPROTO_UDP),
             (socket.AF_INET, 136), (socket.AF_INET6, 136))  # 136: UDP-Lite


def _held(meminfo: bytes) -> int:
    words = struct.unpack_from(f"{len(meminfo) // 4}I", meminfo)
    return sum(words[i] for i in (RMEM_ALLOC, WMEM_ALLOC, WMEM_QUEUED) if i < len(words))


def _dump(request: bytes, header_len: int, attribute: int) -> tuple[int, int]:
    """Send one sock_diag dump request; the sockets it lists and the bytes their meminfo attributes hold."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as s:
        s.sendto(struct.pack("=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
                 + request, (0, 0))
        count = total = 0
        while True:
            data = s.recv(1 << 17)
            at = 0
            while at + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, at)
                if length < 16:
                    return count, total
                if kind == NLMSG_DONE:
                    return count, total
                if kind == NLMSG_ERROR:
                    errno = -struct.unpack_from("=i", data, at + 16)[0]
                    if errno in (2, 22, 93, 95, 97):  # ENOENT, EINVAL, EPROTONOSUPPORT, EOPNOTSUPP, EAFNOSUPPORT
                        return count, total  # a protocol this kernel does not dump: none of its sockets exist
                    raise OSError(errno, os.strerror(errno))
                if kind == SOCK_DIAG_BY_FAMILY:
                    count += 1
                    a, end = at + 16 + header_len, at + length
                    while a + 4 <= end:
                        alen, atype = struct.unpack_from("=HH", data, a)
                        if alen < 4:
                            break
                        if atype & 0x3FFF == attribute:
                            total += _held(data[a + 4:a + alen])
                        a += (alen + 3) & ~3
                at += (length + 3) & ~3
            if not data:
                return count, total


def _netlink() -> tuple[int, int]:
    count = total = 0
    try:
        with open("/proc/self/net/netlink") as f:
            next(f, None)
            for line in f:
                fields = line.split()  # sk Eth Pid Groups Rmem Wmem ...
                if len(fields) >= 6:
                    count += 1
                    total += int(fields[4]) + int(fields[5])
    except (OSError, ValueError):
        pass
    return count, total


def measure() -> dict:
    """What every socket of this process's network namespace holds: ``{"sockets": n, "bytes": b}``."""
    unix = struct.pack("=BBHIII", socket.AF_UNIX, 0, 0, 0xFFFFFFFF, 0, UDIAG_SHOW_MEMINFO) + b"\0" * 8
    count, total = _dump(unix, 16, UNIX_DIAG_MEMINFO)
    for family, protocol in PROTOCOLS:
        # inet_diag_req_v2: family, protocol, extensions (the SKMEMINFO bit), pad, states, then an empty socket id.
        req = struct.pack("=BBBBI", family, protocol, 1 << (INET_DIAG_SKMEMINFO - 1), 0, 0xFFFFFFFF) + b"\0" * 48
        n, b = _dump(req, 72, INET_DIAG_SKMEMINFO)
        count, total = count + n, total + b
    n, b = _netlink()
    count += n
    return {"sockets": count, "bytes": total + b + count * OBJECT_BYTES}


F_GETPIPE_SZ = 1032
PIPES_READ = 4096  # pipes opened each reading; past it, each counted at fs.pipe-max-size
# The kernel's own objects behind a descriptor, besides any buffer: measured on this repository's CI machine as the
# growth of /proc/meminfo's Slab for 8,000 of each (a Unix socket 2.6 kB, a TCP socket 1.9 kB, a pipe 2.7 kB with its
# two descriptors), rounded up. Every socket (from sock_diag, those in flight too) and every pipe counts OBJECT_BYTES;
# every other descriptor (a file, an eventfd, an epoll instance) FILE_BYTES. Bounded by RLIMIT_NOFILE a process, 2
# million empty descriptors at the default limits would hold gigabytes of the kernel's memory, counted by nobody.
OBJECT_BYTES = 3 * 1024
FILE_BYTES = 1024


def pipe_max() -> int:
    try:
        with open("/proc/sys/fs/pipe-max-size") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1 << 20


def descriptors_held(pids: list[int], sockets_read: bool = True) -> dict:
    """The descriptors open in ``pids``: ``{"pipes": n, "descriptors": n, "bytes": b}``, where ``bytes`` is what
    they can hold besides what the socket meter reads: each pipe once, at its capacity (read through a descriptor of
    the grader's own opened on it, ``/proc/PID/fd/N``, non-blocking; a file that is not a pipe by then is left
    alone) and ``OBJECT_BYTES``; every other descriptor ``FILE_BYTES``, a socket's too unless ``sockets_read`` (the
    meter counts it then)."""
    seen: dict[str, int] = {}
    largest = None
    descriptors = others = 0
    for _pid, _fd, path, target in _open_descriptors(pids):
        descriptors += 1
        if not target.startswith("pipe:"):
            others += not (sockets_read and target.startswith("socket:"))
            continue
        if target in seen:
            continue
        if len(seen) >= PIPES_READ:
            seen[target] = largest if largest is not None else (largest := pipe_max())
            continue
        try:
            f = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if stat.S_ISFIFO(os.fstat(f).st_mode):
                seen[target] = fcntl.fcntl(f, F_GETPIPE_SZ)
        except OSError:
            pass
        finally:
            os.close(f)
    held = sum(seen.values()) + len(seen) * OBJECT_BYTES + others * FILE_BYTES
    return {"pipes": len(seen), "descriptors": descriptors, "bytes": held}


# epoll watches: the kernel's memory, about 200 bytes each (an epitem and its wait-queue entry: /proc/meminfo's Slab grew
# 39 MB for 200,000 on this repository's CI machine), counted against a budget per host user (fs.epoll.max_user_watches,
# 4 % of the host's low memory) that the sandbox shares with every other process of that user: the other sandboxes
# (the host's nobody, where root grades), or the grader itself (where it is not root). One process adds 1.2 million a
# second, and a descriptor's watches outlive it (they go with the file, not the descriptor), so no limit on
# descriptors bounds them. Read from outside: each epoll descriptor's fdinfo lists its watches, one ``tfd:`` line each.
WATCH_BYTES = 256
EVENTPOLL = "anon_inode:[eventpoll]"


def epoll_watches(pids: list[int], stop_over: int | None = None) -> int:
    """The watches of every epoll instance open in ``pids`` (an instance open in two processes, a fork's, counts
    twice); reading stops once past ``stop_over``, so that what a notebook holds bounds what one reading costs."""
    total = 0
    for pid, fd, _path, target in _open_descriptors(pids):
        if target != EVENTPOLL:
            continue
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as f:
                for line in f:
                    if line.startswith(b"tfd:"):
                        total += 1
                        if stop_over is not None and total > stop_over:
                            return total
        except OSError:
            continue
    return total


def _open_descriptors(pids: list[int]):
    """``(pid, fd, path, target)`` for each descriptor open in ``pids``, read from outside (``/proc/PID/fd``); a
    process or descriptor gone meanwhile is skipped."""
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            path = f"/proc/{pid}/fd/{fd}"
            try:
                yield pid, fd, path, os.readlink(path)
            except OSError:
                continue


def join(pid: int) -> None:
    """Join the network namespace of ``pid`` and the user namespace that owns it (this process must be
    single-threaded)."""
    libc = ctypes.CDLL(None, use_errno=True)
    net = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    user = fcntl.ioctl(net, NS_GET_USERNS)
    if os.readlink(f"/proc/self/fd/{user}") != os.readlink("/proc/self/ns/user"):
        if libc.setns(user, CLONE_NEWUSER) != 0:
            raise OSError(ctypes.get_errno(), f"joining the sandbox's user namespace: {os.strerror(ctypes.get_errno())}")
    if libc.setns(net, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), f"joining the sandbox's network namespace: {os.strerror(ctypes.get_errno())}")
    os.close(net)
    os.close(user)


def main(argv: list[str] | None = None) -> int:
    """``python -m techday.grading.sockmeter PID``: join PID's network namespace, then answer each line read
    from stdin with one line of JSON (:func:`measure`, or ``{"error": ...}``) until stdin closes."""
    pid = int((argv if argv is not None else sys.argv[1:])[0])
    try:
        join(pid)
        ready = {"ready": True}
    except (OSError, ValueError) as exc:
        ready = {"error": str(exc)}
    print(json.dumps(ready), flush=True)
    if "error" in ready:
        return 1
    for _ in sys.stdin:
        try:
            answer = measure()
        except OSError as exc:
            answer = {"error": str(exc)}
        print(json.dumps(answer), flush=True)
    return 0


class SocketMeter:
    """A meter process joined to the network namespace of the sandbox process ``pid``; :meth:`read` is what its
    sockets hold now (bytes), or None with :attr:`problem` set where the meter cannot read them."""

    ANSWER_S = 5.0

    def __init__(self, pid: int):
        self.problem = ""
        self.sockets = 0
        self.read_once = False  # it has answered a reading (a first start that failed is this host's, not the notebook's)
        # Isolated (-I: no environment, no user site): the package is found through the path given last.
        self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-c",
                                      "import sys; sys.path.insert(0, sys.argv[2]); "
                                      "from techday.grading.sockmeter import main; sys.exit(main(sys.argv[1:2]))",
                                      str(pid), str(PACKAGE_ROOT)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, close_fds=True)
        first = self._answer()
        if first is None or "error" in first:
            self.problem = (first or {}).get("error") or self.problem or "the socket meter did not start"
            self.close()

    def _answer(self) -> dict | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], self.ANSWER_S)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.problem = self.problem or "the socket meter did not answer"
            return None
        try:
            return json.loads(line)
        except ValueError:
            self.problem = "the socket meter's answer was not readable"
            return None

    def read(self) -> int | None:
        if self.problem:
            return None
        try:
            self.proc.stdin.write(b"\n")
            self.proc.stdin.flush()
        except OSError:
            self.problem = "the socket meter has stopped"
            return None
        answer = self._answer()
        if answer is None or "error" in answer:
            self.problem = (answer or {}).get("error") or self.problem
            self.close()
            return None
        self.sockets, self.read_once = answer["sockets"], True
        return answer["bytes"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main())
