"""Linux namespaces, mounts, capabilities and seccomp through ctypes (Python 3.11 has no os.unshare).

The zygote (grading/sandbox/zygote.py) uses these inside the bubblewrap sandbox to give
every kernel fresh namespaces and empty, size-capped filesystems, and to take
from student code what grading does not need: capabilities, new namespaces,
mounts, ptrace, kernel keyrings, BPF, module loading. This file is mounted
read-only into the sandbox next to zygote.py; it never runs student code.
"""

import ctypes
import os
import platform
import struct

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
# Every namespace flag (time, ns, cgroup, uts, ipc, user, pid, net): clone() with any of them is refused.
CLONE_NEW_ANY = 0x00000080 | 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2

PR_SET_SECCOMP, PR_CAPBSET_DROP, PR_SET_SECUREBITS = 22, 24, 28
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4
SECCOMP_MODE_FILTER = 2
# noroot, no_setuid_fixup, no_cap_ambient_raise, each locked; keep_caps locked off.
SECUREBITS_LOCKED_DOWN = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(s):
    return None if s is None else os.fsencode(s)


def unshare(flags):
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source, target, fstype=None, flags=0, data=None):
    _check(_libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)), f"mount {target}")


def umount(target):
    _check(_libc.umount2(_b(target), ctypes.c_int(MNT_DETACH)), f"umount {target}")


def bind(source, target, flags):
    """Bind ``source`` on ``target`` with the mount flags ``flags`` (MS_RDONLY, MS_NOSUID, ...)."""
    mount(source, target, None, MS_BIND)
    mount(None, target, None, MS_REMOUNT | MS_BIND | flags)


def remount(target, flags):
    mount(None, target, None, MS_REMOUNT | MS_BIND | flags)


def prctl(option, arg=0):
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), 0, 0, 0), f"prctl {option}")


def in_initial_user_namespace():
    """True on the host itself: mounts made here would change the machine, not a sandbox."""
    with open("/proc/self/uid_map") as f:
        return f.read().split() == ["0", "0", "4294967295"]


def mounts():
    """{mount point: (filesystem type, device, options)} of this mount namespace; the top mount wins."""
    found = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            found[fields[4]] = (fields[sep + 1], fields[2], set(fields[5].split(",")))
    return found


# ----- user namespace and capabilities ------------------------------------------
def become_nobody():
    """Enter a new user namespace as uid/gid 65534: its capabilities reach none of our other namespaces."""
    uid, gid = os.getuid(), os.getgid()
    unshare(CLONE_NEWUSER)
    for name, text in (("setgroups", "deny"), ("uid_map", f"65534 {uid} 1"), ("gid_map", f"65534 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities():
    """No capability now or after any execve: securebits locked, bounding and ambient sets empty, capset 0."""
    prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED_DOWN)
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        prctl(PR_CAPBSET_DROP, cap)
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    with open("/proc/self/status") as f:
        caps = {k: v.strip() for k, _, v in (line.partition(":") for line in f) if k.startswith("Cap")}
    if any(int(v, 16) for v in caps.values()):
        raise OSError(f"capabilities left after dropping them: {caps}")


# ----- seccomp ------------------------------------------------------------------
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# System calls no notebook needs; refused with EPERM. clone3 gets ENOSYS, so glibc falls back to
# clone, whose flags a classic BPF filter can inspect (clone3 passes them in memory).
_DENIED = [
    "unshare", "setns", "mount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "ptrace", "process_vm_readv", "process_vm_writev", "bpf",
    "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff", "acct", "syslog",
    "quotactl", "open_by_handle_at", "iopl", "ioperm", "io_uring_setup", "io_uring_enter", "io_uring_register",
]  # fmt: skip
SYSCALLS = {
    "x86_64": dict(
        unshare=272, setns=308, mount=165, umount2=166, pivot_root=155, ptrace=101, process_vm_readv=310,
        process_vm_writev=311, bpf=321, perf_event_open=298, keyctl=250, add_key=248, request_key=249,
        userfaultfd=323, kexec_load=246, kexec_file_load=320, init_module=175, finit_module=313,
        delete_module=176, reboot=169, swapon=167, swapoff=168, acct=163, syslog=103, quotactl=179,
        open_by_handle_at=304, iopl=172, ioperm=173, clone=56, clone3=435,
    ),
    "aarch64": dict(
        unshare=97, setns=268, mount=40, umount2=39, pivot_root=41, ptrace=117, process_vm_readv=270,
        process_vm_writev=271, bpf=280, perf_event_open=241, keyctl=219, add_key=217, request_key=218,
        userfaultfd=282, kexec_load=104, kexec_file_load=294, init_module=105, finit_module=273,
        delete_module=106, reboot=142, swapon=224, swapoff=225, acct=89, syslog=116, quotactl=60,
        open_by_handle_at=265, clone=220, clone3=435,
    ),
}  # fmt: skip
for _table in SYSCALLS.values():  # the new mount API has the same numbers everywhere
    _table.update(open_tree=428, move_mount=429, fsopen=430, fsconfig=431, fsmount=432, fspick=433, mount_setattr=442)
    _table.update(io_uring_setup=425, io_uring_enter=426, io_uring_register=427)  # io_uring bypasses the filter

_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _KILL_PROCESS, _ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
_EPERM, _ENOSYS = 1, 38
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (little-endian: low word of args[0])


def machine():
    """The seccomp architecture name of this machine, or None when the filter does not know it."""
    name = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    return name if name in SYSCALLS else None


def seccomp_program(arch):
    """The classic BPF filter for ``arch`` as bytes (struct sock_filter[])."""
    table = SYSCALLS[arch]
    ins = [
        (_LD_ABS, 0, 0, _ARCH),
        (_JEQ, 1, 0, AUDIT_ARCH[arch]),
        (_RET, 0, 0, _KILL_PROCESS),  # another ABI (i386 int 0x80 on x86_64) would bypass the numbers below
        (_LD_ABS, 0, 0, _NR),
    ]
    if arch == "x86_64":  # the x32 ABI reuses numbers with bit 30 set
        ins += [(_JGE, 0, 1, 0x40000000), (_RET, 0, 0, _ERRNO | _EPERM)]
    for name in _DENIED:
        if name in table:
            ins += [(_JEQ, 0, 1, table[name]), (_RET, 0, 0, _ERRNO | _EPERM)]
    ins += [(_JEQ, 0, 1, table["clone3"]), (_RET, 0, 0, _ERRNO | _ENOSYS)]
    ins += [
        (_JEQ, 0, 3, table["clone"]),
        (_LD_ABS, 0, 0, _ARG0),
        (_JSET, 0, 1, CLONE_NEW_ANY),
        (_RET, 0, 0, _ERRNO | _EPERM),
        (_RET, 0, 0, _ALLOW),
    ]
    return b"".join(struct.pack("=HBBI", *i) for i in ins), len(ins)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_seccomp(arch):
    """no_new_privs, then the filter: it holds for this process and everything it starts."""
    code, n = seccomp_program(arch)
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(n, ctypes.cast(buf, ctypes.c_void_p))
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    _check(
        _libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog), 0, 0),
        "seccomp",
    )
