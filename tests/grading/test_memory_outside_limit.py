"""Memory that no address-space limit counts (techday.grading.sandbox.seccomp_filter): on the CPU tier the
sandbox's memory limit is ``RLIMIT_AS``, and pages a cell writes into a ``memfd_create`` file or a System V
shared-memory segment it has let go of are in no process's address space. A cell kept 512 MB of the host's
memory that way under a 300 MB limit, `graded`, no note (about 256 MB a file at ``RLIMIT_FSIZE``, as many
files as descriptors: the host's memory was the only bound). The sandbox now refuses both system calls."""

import json
import os

import pytest

from techday.grading.sandbox import Limits, disables_userns
from techday.proctree import tree_memory
from tests.grading.conftest import run_sandboxed

pytestmark = [pytest.mark.grading]

CHILD = """\
import ctypes, json, os
held = {"memfd": 0, "sysv": 0}
block = b"x" * (16 * 2**20)
fds = []
try:
    for k in range(32):  # 512 MB at most, so that a broken defence loads the host only so much
        fd = os.memfd_create(f"m{k}")
        os.write(fd, block)
        fds.append(fd)
        held["memfd"] += 16
except OSError as exc:
    held["memfd_error"] = str(exc)
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
try:
    for k in range(32):
        sid = libc.shmget(0, 16 * 2**20, 0o1600)
        if sid < 0:
            raise OSError(ctypes.get_errno(), "shmget")
        at = libc.shmat(sid, None, 0)
        ctypes.memset(at, 120, 16 * 2**20)
        libc.shmdt(at)
        held["sysv"] += 16
except OSError as exc:
    held["sysv_error"] = str(exc)
print(json.dumps(held), flush=True)
"""


# The cell starts a process of its own (no audit hook there: the referee's refusal of ctypes is the
# kernel's, not the sandbox's) and prints what it held.
def _hold(child: str) -> str:
    return f"""\
import subprocess, sys
open("hold.py", "w").write({child!r})
print(subprocess.run([sys.executable, "hold.py"], capture_output=True, text=True, timeout=60).stdout)
"""


def _held(child: str, tmp_path) -> dict:
    """What the child printed, run from a cell in the sandbox under a 300 MB memory limit."""
    result, report = run_sandboxed([_hold(child)], tmp_path,
                                   Limits(cell_timeout_s=60, notebook_timeout_s=120, memory_mb=300))
    assert result is not None, report
    printed = "".join(o.get("text", "") for o in result["cells"][0]["outputs"])
    assert printed.strip(), (result["cells"][0]["outputs"], report)
    held = json.loads(printed.strip().splitlines()[-1])
    print(held)
    return held


def test_memory_outside_the_address_space_limit_is_refused(tmp_path):
    """Wrong answer caught: 512 MB of memfd files and 512 MB of detached System V segments kept by a
    cell under a 300 MB memory limit."""
    held = _held(CHILD, tmp_path)
    assert held["memfd"] == 0 and held["sysv"] == 0, held


# A user namespace of the cell's own: there its process holds every capability over the mounts it makes, and
# a tmpfs mounted there is in no address space and under no disk limit (the sandbox sizes only its own /tmp,
# /dev/shm and working folder). The child maps its uid (else it may write nothing there) and writes 16 MB
# files into a tmpfs over /opt until 640 MB.
NESTED = """\
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
held = {"tmpfs": 0}
uid, gid = os.getuid(), os.getgid()
if libc.unshare(0x10000000 | 0x00020000) != 0:  # CLONE_NEWUSER | CLONE_NEWNS
    held["unshare_error"] = os.strerror(ctypes.get_errno())
else:
    open("/proc/self/setgroups", "w").write("deny")
    open("/proc/self/uid_map", "w").write(f"0 {uid} 1")
    open("/proc/self/gid_map", "w").write(f"0 {gid} 1")
    if libc.mount(b"none", b"/opt", b"tmpfs", 0, b"") != 0:
        held["mount_error"] = os.strerror(ctypes.get_errno())
    else:
        block = b"x" * (16 * 2**20)
        try:
            for k in range(40):
                with open(f"/opt/f{k}", "wb") as f:
                    f.write(block)
                held["tmpfs"] += 16
        except OSError as exc:
            held["tmpfs_error"] = str(exc)
print(json.dumps(held), flush=True)
"""


def test_a_tmpfs_in_a_user_namespace_of_the_cells_own_is_refused(bwrap, tmp_path):
    """Wrong answer caught: 640 MB kept by a cell's child in a tmpfs it mounted in a user namespace of its own,
    under a 300 MB memory limit (before bwrap's --disable-userns)."""
    if not disables_userns(bwrap):
        pytest.skip(f"{bwrap} cannot refuse user namespaces here (no --disable-userns, or the kernel refused it)")
    held = _held(NESTED, tmp_path)
    assert held["tmpfs"] == 0 and "unshare_error" in held, held


# Processes each under RLIMIT_AS, together over it: the limit is per process, so a cell that starts 8 fresh
# interpreters of 150 MB each held 1.3 GB under a 300 MB limit. The grader reads their memory from outside
# the sandbox (proctree.tree_memory) and stops the notebook.
MANY = """\
import subprocess, sys
code = "b = bytearray(150 * 2**20)\\nfor i in range(0, len(b), 4096): b[i] = 1\\nprint('ok', flush=True)\\nimport time; time.sleep(20)"
kids = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for k in range(8)]
print([k.stdout.readline().strip() for k in kids].count("ok"), "children hold 150 MB each", flush=True)
for k in kids:
    k.wait()
"""


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu-tier", "gpu-tier-without-a-scope"])
def test_processes_together_over_the_memory_limit_are_stopped(gpu, tmp_path, monkeypatch):
    """Wrong answer caught: 8 child processes of 150 MB each (1.3 GB resident) run to the end of their cell
    under a 300 MB limit, `graded`; on the GPU tier where no systemd scope can be made (RLIMIT_AS is off for
    CUDA), with no limit at all. The GPU tier's sandbox runs here without a GPU to bind."""
    import techday.grading.executor as executor

    monkeypatch.setattr(executor, "cgroup_prefix", lambda *a, **k: [])
    result, report = run_sandboxed([MANY], tmp_path, Limits(cell_timeout_s=60, notebook_timeout_s=120, memory_mb=300),
                                   gpu=gpu)
    print(report)
    assert result is None, "the notebook ran to its end"
    assert [e["event"] for e in report["events"]] == ["memory-total"], report
    # at most the 8 children (1.2 GB), their interpreters, the kernel and the executor, each counted once
    assert 300 < report["events"][0]["mb"] < 1500, report
    assert "over the memory limit of 300 MB" in report["problem"]


def test_tree_memory_counts_what_a_process_holds():
    """Wrong answer caught: a measure that misses a process's private pages (or counts nothing: 0 MB)."""
    import os

    for exact in (False, True):
        before = tree_memory(os.getpid(), exact)
        block = bytearray(100 * 2**20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        grown = tree_memory(os.getpid(), exact) - before
        del block
        assert 90 * 2**20 < grown < 130 * 2**20, (exact, grown // 2**20)


def test_pages_a_fork_shares_count_once_before_a_notebook_is_stopped():
    """Wrong answer caught: a fork's shared pages counted in each process (a kernel that forks DataLoader
    workers stopped for memory it holds once): 100 MB written, then forked, reads about 200 MB from
    ``status`` and must read about 100 MB exactly."""
    import subprocess
    import sys
    import time

    code = ("import os, sys, time\nb = bytearray(100 * 2**20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
            "if os.fork() == 0:\n    time.sleep(30); os._exit(0)\nprint('forked', flush=True)\ntime.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "forked"
        time.sleep(0.2)
        rough, exact = tree_memory(proc.pid), tree_memory(proc.pid, exact=True)
        print(f"status: {rough // 2**20} MB, proportional: {exact // 2**20} MB")
        assert rough > 190 * 2**20, rough // 2**20
        assert 90 * 2**20 < exact < 140 * 2**20, exact // 2**20
    finally:
        from techday.proctree import kill_tree

        kill_tree(proc.pid)
        proc.wait()
        proc.stdout.close()


# Processes that left the cell's tree: each of 4 grandchildren starts its own session, its parent exits, and it
# holds 150 MB (600 MB in all, 20 s at most). Orphans are reparented to the sandbox's own first process (its
# PID namespace), which is below the grader's: the reading still finds them.
ORPHANS = """\
import subprocess, sys, time
code = ("import os, time\\nos.setsid()\\nb = bytearray(150 * 2**20)\\n"
        "for i in range(0, len(b), 4096): b[i] = 1\\ntime.sleep(20)")
for k in range(4):  # sh puts each in the background and exits: their parent is gone
    subprocess.run(["/bin/sh", "-c", f'{sys.executable} -c "$0" &', code], timeout=10)
time.sleep(15)
print("orphans ran their course", flush=True)
"""


def test_processes_that_left_the_cells_tree_are_still_counted(tmp_path):
    """Wrong answer caught: 4 processes of 150 MB each, double-forked into sessions of their own so that no process
    of the notebook is their parent, run to the end of their cell under a 300 MB limit (a reading that follows the
    kernel's children, not the sandbox's whole PID namespace)."""
    result, report = run_sandboxed([ORPHANS], tmp_path, Limits(cell_timeout_s=60, notebook_timeout_s=120, memory_mb=300))
    print(report)
    assert result is None, result["cells"][0]["outputs"]
    assert [e["event"] for e in report["events"]] == ["memory-total"], report


# Kernel objects counted per user, against the host's user the sandbox runs as, the grader's own: inotify instances
# and fanotify groups (128 a user each), POSIX message queues (RLIMIT_MSGQUEUE, 800 kB a user), keys. The child
# tries to take them (bounded: 200, 200, 100 and 50 tries) and holds them 3 s.
PER_USER = r"""
import ctypes, json, os, time
libc = ctypes.CDLL(None, use_errno=True)
held = {"inotify": 0, "fanotify": 0, "mqueue": 0, "keys": 0}
for k in range(200):
    if libc.inotify_init1(0) < 0:
        break
    held["inotify"] += 1
for k in range(200):
    if libc.fanotify_init(0x200, 0) < 0:  # FAN_REPORT_FID: allowed to unprivileged users since Linux 5.13
        break
    held["fanotify"] += 1
class Attr(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_long), ("maxmsg", ctypes.c_long), ("msgsize", ctypes.c_long),
                ("cur", ctypes.c_long), ("pad", ctypes.c_long * 4)]
rt = ctypes.CDLL("librt.so.1", use_errno=True)
for k in range(100):
    if rt.mq_open(f"/q{k}".encode(), os.O_CREAT | os.O_RDWR, 0o600, ctypes.byref(Attr(0, 10, 8192, 0))) < 0:
        break
    held["mqueue"] += 1
for k in range(50):
    number = {"x86_64": 248, "aarch64": 217}.get(os.uname().machine)  # add_key, whatever library is there
    if number is None or libc.syscall(number, b"user", f"k{k}".encode(), b"v" * 100, 100, -2) < 0:
        break
    held["keys"] += 1
print(json.dumps(held), flush=True)
time.sleep(3)
"""


def test_kernel_objects_counted_against_the_graders_user_are_refused(tmp_path):
    """Wrong answer caught: a cell's child holding all 128 inotify instances and all 128 fanotify groups of the grading
    host's user the sandbox runs as (root's, where root grades: no root process on the host could make one while
    the notebook ran), its whole POSIX message queue quota (9 queues) and 50 keys."""
    from techday.grading.sandbox import seccomp_filter

    if seccomp_filter() is None:
        pytest.skip("no seccomp numbers for this machine's architecture")
    held = _held(PER_USER, tmp_path)
    assert held == {"inotify": 0, "fanotify": 0, "mqueue": 0, "keys": 0}, held


def test_tree_memory_counts_page_tables():
    """Wrong answer caught: a process that holds 8 MB of page tables and no page of its own (one byte read every 2 MB
    of a 4 GB anonymous mapping maps only the shared zero page) read as holding nothing: at the default limits,
    2048 such processes would hold 16 GB of the host's memory unseen."""
    import subprocess
    import sys

    from techday.proctree import kill_tree

    code = ("import mmap, time\nm = mmap.mmap(-1, 4 << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)\n"
            "for i in range(0, len(m), 2 << 20): m[i]\nprint('read', flush=True)\ntime.sleep(30)\n")
    quiet = subprocess.Popen([sys.executable, "-c", "import time\nprint('read', flush=True)\ntime.sleep(30)"],
                             stdout=subprocess.PIPE, text=True)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "read" and quiet.stdout.readline().strip() == "read"
        for exact in (False, True):
            grown = tree_memory(proc.pid, exact) - tree_memory(quiet.pid, exact)
            print(exact, grown // 2**20, "MB more than an idle interpreter")
            assert 7 * 2**20 < grown < 20 * 2**20, (exact, grown // 2**20)
    finally:
        for p in (proc, quiet):
            kill_tree(p.pid)
            p.wait()
            p.stdout.close()


def test_tree_memory_counts_a_process_whose_first_thread_has_exited():
    """Wrong answer caught: 200 MB held by a thread of a process whose main thread called ``pthread_exit`` read as 0
    (the leader is a zombie, and its ``status`` and ``smaps_rollup`` show no memory): with RLIMIT_AS per process, as
    many such processes as the process limit allows; without it (the GPU tier without a scope), no bound."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from techday.proctree import kill_tree

    code = ("import ctypes, threading, time\ndef hold():\n    b = bytearray(200 * 2**20)\n"
            "    for i in range(0, len(b), 4096): b[i] = 1\n    print('held', flush=True)\n    time.sleep(30)\n"
            "threading.Thread(target=hold).start()\ntime.sleep(0.5)\nctypes.CDLL(None).pthread_exit(None)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        time.sleep(1)
        assert "zombie" in Path(f"/proc/{proc.pid}/status").read_text()  # the case this is about
        for exact in (False, True):
            held = tree_memory(proc.pid, exact)
            print(exact, held // 2**20, "MB")
            assert 190 * 2**20 < held < 300 * 2**20, (exact, held // 2**20)
    finally:
        kill_tree(proc.pid)
        proc.wait()
        proc.stdout.close()


# The same in the sandbox: 4 child processes of 150 MB each, allocated by a second thread after each one's main
# thread exited (600 MB in all, 20 s at most).
ZOMBIE_LEADERS = """\
import subprocess, sys, time
code = '''import ctypes, threading, time
def hold():
    time.sleep(1)  # after the main thread has exited
    b = bytearray(150 * 2**20)
    for i in range(0, len(b), 4096): b[i] = 1
    print("ok", flush=True)
    time.sleep(20)
threading.Thread(target=hold).start()
ctypes.CDLL(None).pthread_exit(None)
'''
kids = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for k in range(4)]
print([k.stdout.readline().strip() for k in kids].count("ok"), "children hold 150 MB each", flush=True)
time.sleep(15)
"""


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu-tier", "gpu-tier-without-a-scope"])
def test_processes_whose_first_thread_has_exited_are_stopped(gpu, tmp_path, monkeypatch):
    """Wrong answer caught: 4 processes of 150 MB each whose main threads had exited run to the end of their cell under
    a 300 MB limit, `graded` (the reading saw 0 MB of them; on the GPU tier without a scope no RLIMIT_AS bounds even
    one such process)."""
    import techday.grading.executor as executor

    monkeypatch.setattr(executor, "cgroup_prefix", lambda *a, **k: [])
    result, report = run_sandboxed([ZOMBIE_LEADERS], tmp_path,
                                   Limits(cell_timeout_s=60, notebook_timeout_s=120, memory_mb=300), gpu=gpu)
    print(report)
    assert result is None, result["cells"][0]["outputs"]
    assert [e["event"] for e in report["events"]] == ["memory-total"], report


# Sockets' buffers: the kernel's memory, in no process's pages. The child fills Unix socket pairs until it holds
# 640 MB (at most 2,879 pairs at the default send buffer; 80 with the buffer raised to its largest), optionally
# passing each pair over a carrier socket and closing it (then in no process's descriptors), and waits.
SOCKETS = """\
import json, socket, sys, time
raised, in_flight = sys.argv[1] == "raised", sys.argv[2] == "in-flight"
carrier = socket.socketpair()
pairs, held = [], 0
block = b"s" * 65536
try:
    while held < 640 * 2**20:
        a, b = socket.socketpair()
        if raised:
            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 2**20)
        a.setblocking(False)
        try:
            while True:
                held += a.send(block)
        except BlockingIOError:
            pass
        if in_flight:
            socket.send_fds(carrier[0], [b"p"], [a.fileno(), b.fileno()])
            a.close()
            b.close()
        else:
            pairs.append((a, b))
except OSError as exc:
    print(json.dumps({"error": str(exc)}), flush=True)
print(json.dumps({"queued_mb": held // 2**20}), flush=True)
time.sleep(20)
"""


def _sockets_cell(raised: str, flight: str) -> str:
    return f"""\
import subprocess, sys
open("sockets.py", "w").write({SOCKETS!r})
print(subprocess.run([sys.executable, "sockets.py", {raised!r}, {flight!r}], capture_output=True, text=True,
                     timeout=60).stdout)
"""


@pytest.mark.parametrize("raised,flight", [("default", "open"), ("raised", "open"), ("raised", "in-flight")])
@pytest.mark.parametrize("gpu", [False, True], ids=["cpu-tier", "gpu-tier-without-a-scope"])
def test_memory_held_in_sockets_is_counted(raised, flight, gpu, tmp_path, monkeypatch):
    """Wrong answer caught: a cell's child holding 640 MB of the host's memory in Unix socket pairs' buffers under a
    300 MB limit, `graded`, no note (2,879 pairs at the default send buffer; 80 with it raised to 8 MB; pairs passed
    over another socket and closed, in no process's descriptors): the reading from outside saw none of it. At the
    default buffer the descriptors (RLIMIT_NOFILE, 1,024) now run out at about 110 MB, under the limit."""
    import techday.grading.executor as executor

    monkeypatch.setattr(executor, "cgroup_prefix", lambda *a, **k: [])
    result, report = run_sandboxed([_sockets_cell(raised, flight)], tmp_path,
                                   Limits(cell_timeout_s=60, notebook_timeout_s=120, memory_mb=300), gpu=gpu)
    print(report)
    assert report.get("socket_meter") == "reading", report
    if result is not None:  # the descriptors ran out first (RLIMIT_NOFILE): what it held must be under the limit
        printed = "".join(o.get("text", "") for o in result["cells"][0]["outputs"])
        held = json.loads(printed.strip().splitlines()[-1])
        assert raised == "default" and held["queued_mb"] < 300, (held, report)
        return
    [event] = report["events"]
    assert event["event"] == "memory-total" and event["sockets_mb"] >= 100, report
    assert "in sockets' and pipes' buffers" in report["problem"], report


MEASURED = """\
import json, socket, sys
sys.path.insert(0, sys.argv[1])
from techday.grading.sockmeter import measure
def fill(sock, byte):
    sock.setblocking(False)
    sent = 0
    try:
        while True:
            sent += sock.send(byte * 65536)
    except BlockingIOError:
        return sent
before = measure()
a, b = socket.socketpair()
a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 * 2**20)
queued = fill(a, b"m")
carrier = socket.socketpair()
c, d = socket.socketpair()
queued += fill(c, b"f")
socket.send_fds(carrier[0], [b"p"], [c.fileno(), d.fileno()])
c.close(); d.close()
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(("127.0.0.1", 0))
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for k in range(50):
    client.sendto(b"u" * 1000, server.getsockname())
queued += 50 * 1000
listener = socket.create_server(("127.0.0.1", 0))
t = socket.create_connection(listener.getsockname())
s, _ = listener.accept()
queued += fill(t, b"t")
after = measure()
print(json.dumps({"before": before, "after": after, "queued": queued}))
"""


def test_the_socket_meter_reads_every_kind_of_socket_it_names(bwrap):
    """Wrong answers caught: a meter that reads none of the bytes queued in a Unix pair with a raised buffer, in a pair
    in flight (in no descriptor table), in UDP datagrams or in a TCP connection (or reads the queue's data without the
    kernel's overhead as 0, or counts another network namespace's sockets)."""
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([bwrap, "--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
                          sys.executable, "-I", "-c", MEASURED, root], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout)
    print(got)
    grew = got["after"]["bytes"] - got["before"]["bytes"]
    # Each socket's count is its buffers' true size: the data plus the kernel's overhead for each buffer.
    assert got["queued"] <= grew <= 3 * got["queued"], got
    assert got["after"]["sockets"] - got["before"]["sockets"] >= 9, got  # a, b, carrier x2, c, d, udp x2, tcp x3


FAMILIES = """\
import json, socket
got = {}
for name, family, kind in [("unix", socket.AF_UNIX, socket.SOCK_STREAM), ("inet", socket.AF_INET, socket.SOCK_DGRAM),
                           ("inet6", socket.AF_INET6, socket.SOCK_DGRAM), ("netlink", socket.AF_NETLINK, socket.SOCK_RAW),
                           ("alg", 38, socket.SOCK_SEQPACKET), ("vsock", 40, socket.SOCK_STREAM),
                           ("tipc", 30, socket.SOCK_RDM), ("packet", 17, socket.SOCK_RAW)]:
    try:
        socket.socket(family, kind).close()
        got[name] = "made"
    except OSError as exc:
        got[name] = exc.errno
try:
    socket.socketpair(socket.AF_UNIX).__class__
    got["pair"] = "made"
except OSError as exc:
    got["pair"] = exc.errno
print(json.dumps(got), flush=True)
"""


def test_sockets_of_families_the_grader_cannot_read_are_refused(tmp_path):
    """Wrong answer caught: a cell's child making sockets of a family whose buffers the socket meter does not read
    (AF_ALG, AF_VSOCK, AF_TIPC: each kernel code no lab needs), or the filter refusing the Unix, IP and netlink sockets
    that the kernel, torchrun and glibc's getaddrinfo use."""
    from techday.grading.sandbox import seccomp_filter

    if seccomp_filter() is None:
        pytest.skip("no seccomp numbers for this machine's architecture")
    held = _held(FAMILIES, tmp_path)
    assert {k: held[k] for k in ("unix", "inet", "inet6", "netlink", "pair")} == dict.fromkeys(
        ("unix", "inet", "inet6", "netlink", "pair"), "made"), held
    assert {k: held[k] for k in ("alg", "vsock", "tipc", "packet")} == dict.fromkeys(
        ("alg", "vsock", "tipc", "packet"), 97), held



# io_uring runs operations in the kernel on the process's behalf, past the seccomp filter, which sees only the three
# io_uring calls: IORING_OP_SOCKET (Linux 5.19) makes a socket of any family without the socket() call the filter
# reads. The child sets up a ring (4 entries), asks it for an AF_VSOCK socket, and says what socket() answers.
URING = r"""
import ctypes, json, mmap, os, socket, struct
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
got = {}
try:
    socket.socket(40, socket.SOCK_STREAM).close()
    got["socket"] = "made"
except OSError as exc:
    got["socket"] = exc.errno
params = ctypes.create_string_buffer(120)  # struct io_uring_params
ring = libc.syscall(425, 4, params)  # io_uring_setup: the same number on x86-64 and AArch64
if ring < 0:
    got["io_uring"] = ctypes.get_errno()
else:
    sq_entries, cq_entries = struct.unpack_from("II", params.raw, 0)
    sq = struct.unpack_from("IIIIIIIIQ", params.raw, 40)  # head tail ring_mask ring_entries flags dropped array
    cq = struct.unpack_from("IIIIIIIIQ", params.raw, 80)  # head tail ring_mask ring_entries overflow cqes
    sq_ring = mmap.mmap(ring, sq[6] + sq_entries * 4, offset=0)
    cq_ring = mmap.mmap(ring, cq[5] + cq_entries * 16, offset=0x8000000)
    sqes = mmap.mmap(ring, sq_entries * 64, offset=0x10000000)
    # IORING_OP_SOCKET (45): fd = family, off = type, len = protocol
    sqes[0:64] = struct.pack("=BBHiQQIIQHHiQQ", 45, 0, 0, 40, socket.SOCK_STREAM, 0, 0, 0, 1, 0, 0, 0, 0, 0)
    tail = struct.unpack_from("I", sq_ring, sq[1])[0]
    struct.pack_into("I", sq_ring, sq[6] + 4 * (tail & sq[2]), 0)
    struct.pack_into("I", sq_ring, sq[1], tail + 1)
    if libc.syscall(426, ring, 1, 1, 1, None, 0) < 0:  # io_uring_enter, waiting for one completion
        got["io_uring"] = ctypes.get_errno()
    else:
        head = struct.unpack_from("I", cq_ring, cq[0])[0]
        res = struct.unpack_from("QiI", cq_ring, cq[5] + 16 * (head & cq[2]))[1]
        got["io_uring"] = "made" if res >= 0 else -res
print(json.dumps(got), flush=True)
"""


def test_io_uring_is_refused(tmp_path):
    """Wrong answer caught: a cell's child making, through io_uring's IORING_OP_SOCKET, an AF_VSOCK socket that the
    seccomp filter refuses to socket() (its buffers read by no meter), and with it every other operation io_uring
    runs past the filter: a known surface of kernel exploits that no lab uses."""
    from techday.grading.sandbox import seccomp_filter

    if seccomp_filter() is None:
        pytest.skip("no seccomp numbers for this machine's architecture")
    held = _held(URING, tmp_path)
    assert held == {"socket": 97, "io_uring": 1}, held  # EAFNOSUPPORT, then EPERM for io_uring_setup


PIPES = """\
import fcntl, os, sys, time
made = []
for k in range(int(sys.argv[1])):
    r, w = os.pipe()
    if k < int(sys.argv[2]):
        fcntl.fcntl(w, 1031, 2**20)  # F_SETPIPE_SZ
    os.write(w, b"p" * 4096)
    made.append((r, w))
os.dup2(made[0][1], 900)  # the same pipe under another descriptor: counted once
print(sum(fcntl.fcntl(w, 1032) for r, w in made), flush=True)  # F_GETPIPE_SZ
time.sleep(30)
"""


def test_pipes_are_counted_once_each_at_their_capacity():
    """Wrong answers caught: a reading that sees no pipe, counts a pipe once for each descriptor open on it (both ends,
    a copy), counts what it holds now (4 kB) rather than what it can hold (up to 1 MB when raised), or reads a pipe
    empty by opening it (the data must stay for the process that owns it)."""
    import subprocess
    import sys

    from techday.grading.sockmeter import OBJECT_BYTES, descriptors_held

    child = subprocess.Popen([sys.executable, "-c", PIPES, "40", "3"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        capacity = int(child.stdout.readline())
        got = descriptors_held([child.pid])
        count, held = got["pipes"], got["bytes"] - got["pipes"] * OBJECT_BYTES
        print(got, capacity)
        # 40 of the child's, and the one its stdout writes into (ours)
        import fcntl

        ours = fcntl.fcntl(child.stdout.fileno(), 1032)
        # besides: the child's stdin and stderr (/dev/null) and what the interpreter holds open, a kB each
        assert count == 41 and 0 <= held - (capacity + ours) <= 8 * 1024, (got, capacity, ours)
        assert capacity >= 3 * 2**20 + 37 * 4096, capacity  # three raised to 1 MB, the rest at least a page
        r = os.open(f"/proc/{child.pid}/fd/3", os.O_RDONLY | os.O_NONBLOCK)
        try:
            assert os.read(r, 8192) == b"p" * 4096  # still there after the reading
        finally:
            os.close(r)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


MANY_PIPES = """\
import json, os, time
held = 0
kids = []
for k in range(8):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        mine = 0
        try:
            for n in range(10000):  # 80,000 pipes at most, 640 MB at two pages each
                a, b = os.pipe()
                os.set_blocking(b, False)
                try:
                    while mine < 80 * 2**20:
                        mine += os.write(b, b"q" * 4096)
                except BlockingIOError:
                    pass
        except OSError:
            pass
        os.write(w, f"{mine}\\n".encode())
        time.sleep(20)
        os._exit(0)
    os.close(w)
    kids.append(os.fdopen(r))
held = sum(int(k.readline() or 0) for k in kids)
print(json.dumps({"held_mb": held // 2**20}), flush=True)
time.sleep(20)
"""


def test_memory_held_in_pipes_stays_under_the_limit(tmp_path):
    """Wrong answer caught: a cell's 8 child processes holding 640 MB of the host's memory in 80,000 filled pipes under
    a 300 MB limit, `graded` (each pipe's pages are the kernel's, in no process's; past the host user's
    fs.pipe-user-pages-soft each new pipe still holds two pages). Now each process may open 1,024 descriptors, and the
    pipes open in them are counted at their capacity: the notebook is stopped, or holds less than its limit."""
    result, report = run_sandboxed([_hold(MANY_PIPES)], tmp_path,
                                   Limits(cell_timeout_s=60, notebook_timeout_s=120, memory_mb=300))
    print(report)
    if result is None:
        assert [e["event"] for e in report["events"]] == ["memory-total"], report
        return
    printed = "".join(o.get("text", "") for o in result["cells"][0]["outputs"])
    held = json.loads(printed.strip().splitlines()[-1])
    print(held)
    assert held["held_mb"] < 300, (held, report)


EMPTY = """\
import os, socket, sys, time
pairs = [socket.socketpair() for k in range(500)]
events = [os.eventfd(0) for k in range(200)]
print("ready", flush=True)
time.sleep(30)
"""


def test_the_kernels_objects_behind_empty_descriptors_are_counted():
    """Wrong answer caught: 1,000 empty sockets and 200 eventfds read as holding nothing, where the kernel holds about
    2.6 kB for each socket (measured: /proc/meminfo's Slab): at RLIMIT_NOFILE a process and max_processes processes,
    gigabytes no reading counted."""
    import subprocess
    import sys

    from techday.grading.sockmeter import FILE_BYTES, OBJECT_BYTES, descriptors_held

    child = subprocess.Popen([sys.executable, "-c", EMPTY], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        alone = descriptors_held([child.pid], sockets_read=False)
        beside = descriptors_held([child.pid], sockets_read=True)  # the meter counts the sockets then
        print(alone, beside)
        assert alone["descriptors"] >= 1200 and alone["bytes"] >= 1200 * FILE_BYTES, alone
        assert 200 * FILE_BYTES <= beside["bytes"] < 1000 * FILE_BYTES, beside
        assert OBJECT_BYTES >= 2.6 * 1024  # what a Unix socket measured
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def _kill_meters(times: int, stop) -> list[int]:
    """Kill the grader's socket meter ``times`` times, each once it has answered, from a thread of the test."""
    import signal
    import time

    import psutil

    killed: list[int] = []
    me = psutil.Process()
    while len(killed) < times and not stop.is_set():
        for proc in me.children(recursive=True):
            try:
                if "techday.grading.sockmeter" in " ".join(proc.cmdline()) and proc.pid not in killed \
                        and time.time() - proc.create_time() > 2:
                    os.kill(proc.pid, signal.SIGKILL)
                    killed.append(proc.pid)
            except (psutil.Error, OSError):
                continue
        time.sleep(0.2)
    return killed


@pytest.mark.parametrize("kills,flagged", [(1, False), (3, True)])
def test_a_socket_meter_that_stops_is_started_again_then_the_notebook_is_flagged(kills, flagged, tmp_path,
                                                                                 monkeypatch):
    """Wrong answers caught: a meter killed (or starved past its answer's time) while the notebook runs, after which
    the notebook's sockets go uncounted with no word (fill them then: 640 MB, `graded`); and, the other way, an
    honest notebook flagged because its meter stopped once."""
    import threading

    import techday.grading.executor as executor

    monkeypatch.setattr(executor, "METER_STARTS", 2)
    stop = threading.Event()
    killed: list[int] = []
    killer = threading.Thread(target=lambda: killed.extend(_kill_meters(kills, stop)), daemon=True)
    killer.start()
    try:
        result, report = run_sandboxed(["import time\ntime.sleep(14)\nprint('done')"], tmp_path,
                                       Limits(cell_timeout_s=60, notebook_timeout_s=120, memory_mb=2000))
    finally:
        stop.set()
        killer.join(5)
    print(killed, report)
    assert len(killed) == kills, killed
    assert result is not None, report
    events = [e["event"] for e in result.get("events", [])]
    if flagged:
        assert events == ["socket-meter"], result.get("events")
        from techday.grading.sandbox import event_notes

        assert "lost the reading of its sockets' memory" in event_notes(result)[0], result.get("events")
    else:
        assert events == [] and report["socket_meter"] == "reading", report


# epoll watches: each is the kernel's memory (about 200 bytes: /proc/meminfo's Slab grew 39 MB for 200,000), counted
# against a per-user budget (fs.epoll.max_user_watches, 4 % of the host's low memory: 5.49 million here) that the
# sandbox's host user shares with every other sandbox (the host's nobody, where root grades) or with the grader itself
# (where it is not root). One process adds 1.2 million a second. The child adds 200,000 (40 MB of the kernel's) to 400
# epoll instances watching 500 descriptors of one pipe, and holds them 20 s.
WATCHES = """\
import json, os, select, time
r, w = os.pipe()
targets = [r] + [os.dup(r) for _ in range(499)]
instances = []
while len(instances) * len(targets) < 200000:
    instances.append(select.epoll())
    for fd in targets:
        instances[-1].register(fd, select.EPOLLIN)
print(json.dumps({"watches": len(instances) * len(targets)}), flush=True)
time.sleep(20)
"""


def test_epoll_watches_over_the_limit_stop_the_notebook(tmp_path):
    """Wrong answer caught: a cell's child holding 200,000 epoll watches (40 MB of the kernel's memory, none of it in
    any process's pages), `graded`, no note: at that rate one notebook takes the whole per-user budget of the host's
    user it runs as in 5 s, and every other process of that user (the other sandboxes' kernels, or the grader) then
    gets ENOSPC from epoll_ctl."""
    cell = f"""\
import subprocess, sys
open("watches.py", "w").write({WATCHES!r})
print(subprocess.run([sys.executable, "watches.py"], capture_output=True, text=True, timeout=60).stdout)
"""
    result, report = run_sandboxed([cell], tmp_path, Limits(cell_timeout_s=60, notebook_timeout_s=120))
    print(report)
    assert result is None, result["cells"][0]["outputs"]
    (event,) = report["events"]
    assert event["event"] == "too-many-watches" and event["watches"] > event["limit"] == Limits().max_epoll_watches
    assert "epoll watches" in report["problem"]
