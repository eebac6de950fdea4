"""The bubblewrap sandbox of a ``LocalRuntime`` job: what the job sees, and bwrap's command line.

Standard library only: the supervisor builds the command line (see ``spawner.py`` on why).

What a job sees (system paths keep their host paths inside, so that interpreters and their
libraries are where they were installed):

- ``/usr`` read-only; ``/bin``, ``/sbin``, ``/lib``, ``/lib32``, ``/lib64``, ``/libx32`` as
  the host has them (symlinks into /usr where /usr is merged, read-only binds otherwise);
- from ``/etc`` only `ETC`, read-only: name resolution, users and groups (for ``id``), the
  time zone, TLS certificates, the dynamic linker's cache, alternatives, fonts, Debian's
  Python configuration. Not shadow files, ssh keys, the configurations of tools that may hold
  tokens (pip, npm, git), nor anything of Glia's;
- extra read-only binds: the directories of interpreters outside /usr (``LocalRuntime``'s
  ``extra_ro_binds``; by default the prefixes of the runtime's own Python);
- its own ``/proc`` (a pid namespace of its own: only its processes), a minimal ``/dev``
  (null, zero, full, random, urandom, tty, pts), ``/dev/shm`` and ``/tmp`` as private tmpfs
  (in the job's memory, each at most its memory limit);
- read-write: its working directory, and its ``HOME``, a directory of its own in its job dir,
  empty at start, at `HOME` (``/job/home``; the env's ``HOME`` is set to it). The working
  directory is its scratch dir at `WORK` (``/job/work``), or the directory it asked for at the
  same path as on the host.

Nothing else: not the runtime's state dir (other jobs' output, specs and records, nor even
its path: the job's own dirs are shown under /job), the platform's data dir, nor the server's
HOME.

Namespaces: mount, pid, ipc, uts and cgroup namespaces of its own, a new session (no
terminal to push input into), killed with its supervisor (``--die-with-parent``). The network
is shared by default (``LocalRuntime(job_network=True)``): jobs download data. A job can then
reach whatever listens on the host's network, as any local process can: the platform's own
services must authenticate every request and never trust a connection for coming from
localhost. With ``job_network=False`` a job has a network namespace of its own (loopback
only).

Users. Run by root, bwrap creates no user namespace (the switch to the job's uid needs the
host's uids): it does the mounts with root's rights, drops every capability but those the
switch needs (CAP_SETUID, CAP_SETGID, CAP_SETPCAP, and CAP_DAC_OVERRIDE to enter the job's
0700 working dir) and executes ``setpriv`` (util-linux), which clears the supplementary
groups, sets the gid, then the uid, sets no_new_privs and empties the inheritable, ambient
and bounding capability sets before it executes the command: nothing of the job runs as root.
The switch cannot come before bwrap: bwrap running as the job's uid resolves every bind's
source with the job's rights (``--bind-fd`` too), so it could neither bind the job's scratch
dir inside the runtime's 0700 state dir nor an interpreter under a 0700 /root. Not run by
root, bwrap uses an unprivileged user namespace and the job runs as the runtime's user.

A command is looked up before bwrap starts, as the sandbox will look it up (the job's PATH,
the paths the sandbox shows, the execute bit for the job's uid), so that a command the job
cannot run is a start failure (127, or 126 when not executable) rather than a job that ran
and failed; a symlink chain that leaves what the sandbox shows still fails inside, as bwrap's
or setpriv's own error.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping, Sequence

# What programs need of /etc (see the module docstring); missing ones are skipped.
ETC = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/networks",
    "/etc/passwd",
    "/etc/group",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/crypto-policies",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/fonts",
    "/etc/mime.types",
    "/etc/os-release",
)
# Top-level names that merged-/usr hosts make symlinks into /usr: mirrored as the host has them.
SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What setpriv needs to switch to the job's uid; all of it is gone once it has.
SWITCH_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_DAC_OVERRIDE")
# Sets variables for the command, run after the switch to the job's uid (`held_env`).
ENV = "/usr/bin/env"
# Where a job's scratch dir and HOME are in its sandbox.
WORK = "/job/work"
HOME = "/job/home"


class Bind:
    """``source`` on the host, shown at ``dest`` in the sandbox (by default the same path)."""

    __slots__ = ("source", "dest", "writable", "optional")

    def __init__(
        self,
        source: str,
        dest: str | None = None,
        *,
        writable: bool = False,
        optional: bool = False,
    ) -> None:
        self.source = source
        self.dest = source if dest is None else dest
        self.writable = writable
        self.optional = optional  # skipped when the host has no such path

    def to_json(self) -> list[object]:
        return [self.source, self.dest, self.writable, self.optional]

    @classmethod
    def from_json(cls, value: object) -> Bind:
        if (
            not isinstance(value, list)
            or len(value) != 4
            or not isinstance(value[0], str)
            or not isinstance(value[1], str)
        ):
            raise ValueError(f"bad bind: {value!r}")
        return cls(value[0], value[1], writable=bool(value[2]), optional=bool(value[3]))

    def option(self) -> str:
        return ("--bind" if self.writable else "--ro-bind") + ("-try" if self.optional else "")


class Sandbox:
    """How to build a job's sandbox: the same for every job of a runtime (``spec.json`` carries
    it), plus each job's working dir and HOME."""

    __slots__ = ("bwrap", "setpriv", "network", "binds", "links")

    def __init__(
        self,
        bwrap: str,
        *,
        setpriv: str | None,
        network: bool,
        binds: list[Bind],
        links: list[tuple[str, str]],
    ) -> None:
        self.bwrap = bwrap
        self.setpriv = setpriv  # needed to switch users (the runtime runs as root)
        self.network = network
        self.binds = binds  # read-only system binds and extra binds, in this order
        self.links = links  # (target, name): symlinks to create, such as ("usr/bin", "/bin")

    @classmethod
    def for_host(
        cls, bwrap: str, *, setpriv: str | None, network: bool, extra_ro_binds: list[str]
    ) -> Sandbox:
        """The sandbox the module docstring describes, for this host's layout of /."""
        binds = [Bind("/usr")]
        links: list[tuple[str, str]] = []
        for name in SYSTEM_DIRS:
            if os.path.islink(name):
                links.append((os.readlink(name), name))
            elif os.path.isdir(name):
                binds.append(Bind(name))
        etc = list(ETC)
        try:  # Debian's python3 reads its sitecustomize from /etc/python3.X
            etc += sorted(f"/etc/{n}" for n in os.listdir("/etc") if n.startswith("python3"))
        except OSError:
            pass
        binds += [Bind(path, optional=True) for path in etc]
        binds += [Bind(path) for path in extra_ro_binds]
        return cls(bwrap, setpriv=setpriv, network=network, binds=binds, links=links)

    def to_json(self) -> dict[str, object]:
        return {
            "bwrap": self.bwrap,
            "setpriv": self.setpriv,
            "network": self.network,
            "binds": [bind.to_json() for bind in self.binds],
            "links": [list(link) for link in self.links],
        }

    @classmethod
    def from_json(cls, data: object) -> Sandbox:
        if not isinstance(data, dict) or not isinstance(data.get("bwrap"), str):
            raise ValueError(f"bad sandbox: {data!r}")
        setpriv = data.get("setpriv")
        links = data.get("links") or []
        binds = data.get("binds") or []
        if not isinstance(links, list) or not isinstance(binds, list):
            raise ValueError(f"bad sandbox: {data!r}")
        return cls(
            data["bwrap"],
            setpriv=setpriv if isinstance(setpriv, str) else None,
            network=bool(data.get("network", True)),
            binds=[Bind.from_json(bind) for bind in binds],
            links=[(str(target), str(name)) for target, name in links],
        )

    @staticmethod
    def working_dir(working_dir: str, *, scratch: bool) -> str:
        """Where a job's working dir is in its sandbox (``scratch``: the runtime made it)."""
        return WORK if scratch else working_dir

    def job_binds(
        self, working_dir: str, home: str, *, scratch: bool, volumes: Sequence[Bind] = ()
    ) -> list[Bind]:
        """Every bind of a job's sandbox; ``working_dir`` and ``home`` are host paths.
        ``volumes`` (the job's own: storage, disks, secret files) come last, so that one
        inside the working directory shows over it."""
        return [
            *self.binds,
            Bind(working_dir, self.working_dir(working_dir, scratch=scratch), writable=True),
            Bind(home, HOME, writable=True),
            *volumes,
        ]

    def command_line(
        self,
        command: list[str],
        *,
        working_dir: str,
        scratch: bool,
        home: str,
        uid: int | None,
        gid: int | None,
        status_fd: int | None,
        tmpfs_bytes: int | None,
        shm_bytes: int | None = None,
        volumes: Sequence[Bind] = (),
        held_env: Mapping[str, str] | None = None,
    ) -> list[str]:
        """bwrap's argv for ``command``; ``working_dir`` and ``home`` are host paths (see
        `job_binds`); ``uid``/``gid`` (only when run by root): switch to them; ``status_fd``:
        where bwrap writes its JSON status (``--json-status-fd``)."""
        args = [self.bwrap]
        if os.geteuid() == 0:
            # --unshare-all without the user namespace (see the module docstring).
            args += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
            if not self.network:
                args.append("--unshare-net")
        else:
            args.append("--unshare-all")
            if self.network:
                args.append("--share-net")
        args += ["--die-with-parent", "--new-session"]
        if status_fd is not None:
            args += ["--json-status-fd", str(status_fd)]
        size = ["--size", str(tmpfs_bytes)] if tmpfs_bytes else []
        shm_size = ["--size", str(shm_bytes or tmpfs_bytes)] if shm_bytes or tmpfs_bytes else []
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += ["--perms", "1777", *shm_size, "--tmpfs", "/dev/shm"]
        args += ["--perms", "1777", *size, "--tmpfs", "/tmp"]
        made = {"/", "/proc", "/dev", "/dev/shm", "/tmp"}
        for target, name in self.links:
            args += ["--symlink", target, name]
            made.add(name)
        for bind in self.job_binds(working_dir, home, scratch=scratch, volumes=volumes):
            # The directories above a bind are made here, world-readable: bwrap 0.8 makes them
            # 0700, which only root could enter.
            for parent in _parents(bind.dest):
                if parent not in made:
                    args += ["--perms", "0755", "--dir", parent]
                    made.add(parent)
            args += [bind.option(), bind.source, bind.dest]
            made.add(bind.dest)
        args += ["--chdir", self.working_dir(working_dir, scratch=scratch)]
        if os.geteuid() == 0:
            args += ["--cap-drop", "ALL"]
            if uid is not None:
                for cap in SWITCH_CAPS:
                    args += ["--cap-add", cap]
        args.append("--")
        if uid is not None:
            if self.setpriv is None:
                raise ValueError("switching users needs setpriv")
            args += [
                self.setpriv,
                f"--reuid={uid}",
                f"--regid={gid if gid is not None else uid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
            ]
        if held_env:
            # Variables kept from bwrap and setpriv (they run as root): set for the command
            # by env, which runs as the job's uid already.
            args += [ENV, *(f"{name}={value}" for name, value in held_env.items())]
        return args + command

    def find_command(
        self,
        name: str,
        path: str | None,
        *,
        working_dir: str,
        scratch: bool,
        home: str,
        uid: int | None,
        gid: int | None,
        volumes: Sequence[Bind] = (),
    ) -> None:
        """Look ``name`` up as the sandbox will (see the module docstring); raises OSError
        ENOENT (not found, or not in what the sandbox shows) or EACCES (not executable)."""
        binds = self.job_binds(working_dir, home, scratch=scratch, volumes=volumes)
        # Longest destination first: a bind inside another one shows what is there.
        binds.sort(key=lambda bind: len(bind.dest), reverse=True)
        real_sources = [os.path.realpath(bind.source) for bind in binds]
        links = {name_: os.path.join("/", target) for target, name_ in self.links}
        cwd = self.working_dir(working_dir, scratch=scratch)
        if "/" in name:
            candidates = [os.path.join(cwd, name)]
        else:
            directories = (path if path is not None else os.defpath).split(os.pathsep)
            candidates = [os.path.join(d or cwd, name) for d in directories]
        denied = False
        outside = False
        for candidate in candidates:
            shown = _through_links(os.path.normpath(candidate), links)
            host = _on_host(shown, binds)
            if host is None:
                outside = outside or os.path.exists(shown)
                continue
            try:
                info = os.stat(host)
            except OSError:
                continue
            if not _under(os.path.realpath(host), real_sources):
                outside = True  # a symlink out of what the sandbox shows
                continue
            if not stat.S_ISREG(info.st_mode) or not _executable(info, uid, gid, host):
                denied = True
                continue
            return
        if denied:
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        why = "not in what the sandbox shows" if outside else os.strerror(errno.ENOENT)
        raise OSError(errno.ENOENT, why)


def _parents(path: str) -> list[str]:
    """``/a/b/c`` -> ``["/a", "/a/b"]``."""
    parts = [part for part in path.split("/") if part]
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def _under(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _on_host(path: str, binds: list[Bind]) -> str | None:
    """Where the sandbox's ``path`` is on the host; None if the sandbox shows nothing there.
    ``binds``: longest destination first."""
    for bind in binds:
        if _under(path, [bind.dest]):
            return bind.source + path[len(bind.dest.rstrip("/")) :]
    return None


def _through_links(path: str, links: dict[str, str]) -> str:
    for name, target in links.items():
        if path == name or path.startswith(name + "/"):
            return os.path.normpath(target + path[len(name) :])
    return path


def _executable(info: os.stat_result, uid: int | None, gid: int | None, path: str) -> bool:
    if uid is None:  # the runtime's own user
        return os.access(path, os.X_OK)
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == gid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)
