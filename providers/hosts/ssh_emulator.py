"""A loopback SSH host with systemd, for tests and `setpoint demo`: an asyncssh server
whose commands go to an emulated systemd (`systemd_emulator.py`) and whose SFTP serves
a directory standing in for the host's filesystem.

As a real host does, it:

- accepts public-key logins for one configured user only (no passwords, no other users),
  with its own host key, which clients must find in their known_hosts;
- runs one simple command per exec request, split as a POSIX shell splits words; a command
  it does not know exits 127 with the shell's "not found", and shell syntax it does not
  emulate (`;`, `|`, `&&`, redirections, substitutions) exits 2;
- lets the login user write only in `/etc/setpoint/runners` over SFTP (the directory the
  operator gave it), keeping the mode a file was created with.

Every command line it receives is kept in `commands`, and every SFTP file created in
`created_files` (path and mode), so tests can prove what did and did not travel where.
`stall_commands` makes exec requests hang, to prove the client's timeouts;
`lose_reply_to(prefix)` runs the next such command and then never answers, as when a
connection breaks after the host acted: the case where a client must not repeat blindly.
"""

from __future__ import annotations

import asyncio
import posixpath
import shlex
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import asyncssh

from providers.github.emulator.runner_link import RunnerLink
from providers.hosts import systemd_units as units
from providers.hosts.systemd_emulator import EmulatedSystemd, Result

_WRITE_FLAGS = asyncssh.FXF_WRITE | asyncssh.FXF_CREAT | asyncssh.FXF_TRUNC | asyncssh.FXF_APPEND
_SHELL_SYNTAX = set(";&|<>()`$\n")


class _Login(asyncssh.SSHServer):
    def __init__(self, host: LoopbackSshHost) -> None:
        self._host = host
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn

    def begin_auth(self, username: str) -> bool:
        assert self._conn is not None
        # Another user gets no keys at all, so every key it offers is refused.
        keys = self._host.authorized_keys if username == self._host.user else ""
        self._conn.set_authorized_keys(asyncssh.import_authorized_keys(keys))
        return True

    def password_auth_supported(self) -> bool:
        return False


class _HostSftp(asyncssh.SFTPServer):
    """SFTP on the host's files, writable only where the login user may write."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], host: LoopbackSshHost) -> None:
        super().__init__(chan, chroot=str(host.root).encode())
        self._host = host

    def _writable(self, path: bytes) -> str:
        virtual = posixpath.normpath(posixpath.join("/", path.decode()))
        if posixpath.dirname(virtual) != units.RUNNER_DIR:
            raise asyncssh.SFTPPermissionDenied("Permission denied")
        return virtual

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        if pflags & _WRITE_FLAGS:
            virtual = self._writable(path)
            if pflags & asyncssh.FXF_CREAT:
                self._host.created_files.append((virtual, attrs.permissions))
        return super().open(path, pflags, attrs)

    def remove(self, path: bytes) -> None:
        self._writable(path)
        super().remove(path)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._writable(oldpath)
        self._writable(newpath)
        super().posix_rename(oldpath, newpath)

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._writable(oldpath)
        self._writable(newpath)
        super().rename(oldpath, newpath)

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self._writable(path)
        super().setstat(path, attrs)

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self._writable(path)
        super().mkdir(path, attrs)


class LoopbackSshHost:
    """An SSH host with systemd on 127.0.0.1. Use `async with`, or `start` and `close`."""

    def __init__(
        self,
        root: Path,
        *,
        client_keys: Sequence[asyncssh.SSHKey],
        user: str = "setpoint",
        link: RunnerLink | None = None,
        install_template: bool = True,
        host_key: asyncssh.SSHKey | None = None,
    ) -> None:
        self.root = root
        self.user = user
        self.authorized_keys = "".join(
            key.export_public_key().decode("ascii") for key in client_keys
        )
        self.host_key = host_key or asyncssh.generate_private_key("ssh-ed25519")
        self.systemd = EmulatedSystemd(root, link)
        if install_template:
            self.systemd.install_template()
        self.commands: list[str] = []
        self.created_files: list[tuple[str, int | None]] = []
        self.stall_commands = False
        self._lose_reply_to: str | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self.address = "127.0.0.1"

    @property
    def port(self) -> int:
        assert self._acceptor is not None, "the host is not started"
        return self._acceptor.get_port()

    def known_hosts_line(self) -> str:
        """The line a client's known_hosts needs to trust this host."""
        key = self.host_key.export_public_key().decode("ascii").strip()
        return f"[{self.address}]:{self.port} {key}\n"

    async def start(self) -> int:
        self._acceptor = await asyncssh.listen(
            self.address,
            0,
            server_factory=lambda: _Login(self),
            server_host_keys=[self.host_key],
            process_factory=self._handle,
            sftp_factory=lambda chan: _HostSftp(chan, self),
            allow_scp=False,
            encoding="utf-8",
            login_timeout=10.0,
        )
        return self.port

    async def close(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None

    async def __aenter__(self) -> LoopbackSshHost:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def lose_reply_to(self, prefix: str) -> None:
        self._lose_reply_to = prefix

    # -- exec requests -------------------------------------------------------------------

    async def _handle(self, process: asyncssh.SSHServerProcess[str]) -> None:
        command = process.command
        if command is None:
            process.stderr.write("interactive shells are not emulated\n")
            process.exit(1)
            return
        self.commands.append(command)
        if self.stall_commands:
            await asyncio.Event().wait()  # hangs until the client gives up and disconnects
        status, out, err = self.execute(command)
        if self._lose_reply_to is not None and command.startswith(self._lose_reply_to):
            self._lose_reply_to = None
            await asyncio.Event().wait()  # it ran; its answer never comes
        process.stdout.write(out)
        process.stderr.write(err)
        process.exit(status)

    def execute(self, command: str) -> Result:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            words = list(lexer)
        except ValueError:
            return 2, "", "sh: 1: Syntax error: Unterminated quoted string\n"
        if any(set(w) <= _SHELL_SYNTAX for w in words) or "$" in command or "`" in command:
            return 2, "", "sh: 1: shell syntax is not emulated on this host\n"
        if not words:
            return 0, "", ""
        program, args = words[0], words[1:]
        if program == "systemctl":
            return self.systemd.systemctl(args)
        if program == "ps":
            return self.systemd.ps(args)
        return 127, "", f"sh: 1: {program}: not found\n"
