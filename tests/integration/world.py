"""
The per-test world: temp dir, cleanup stack, logs shown on failure, and
factories for keys, sshd, apps, configs and the daemon; bring_up() starts
the usual one-tunnel set-up in one call.

Part of the integration harness (harness.py re-exports it).
"""

import getpass
import os
import shutil
import tempfile
from pathlib import Path

import apps
from daemon import Daemon
from keys import Key
from netio import alloc_port
from openssh import Sshd
from yamlcfg import to_yaml


class Up:
    """What World.bring_up started: the daemon, its config path, the remote
    port of the tunnel, the local app it reaches and the sshd (None when
    the test passed a server config of its own)."""

    def __init__(self, daemon, config, remote, app, sshd):
        self.daemon = daemon
        self.config = config
        self.remote = remote
        self.app = app
        self.sshd = sshd


class World:
    """
    Everything one test owns: a short temp dir (unix socket paths stay under
    108 bytes), a cleanup stack run in reverse order, the logs to show on
    failure, and factories for keys, sshd, apps, configs and the daemon.
    """

    def __init__(self, test_name="test"):
        self.dir = Path(os.path.realpath(tempfile.mkdtemp(prefix="tun-")))
        self.test_name = test_name
        self._cleanups = []
        self.logs = []          # (title, path, tail lines)
        self._user_key = None
        self.user = getpass.getuser()
        self.daemons = []

    # -- bookkeeping

    def add_log(self, title, path, lines=80):
        self.logs.append((title, Path(path), lines))

    def on_cleanup(self, fn):
        self._cleanups.append(fn)

    def close(self, failed):
        """Run cleanups (LIFO); keep the dir on failure or TEST_KEEP=1."""
        errors = []
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                fn()
            except Exception as e:   # collect, keep cleaning up
                errors.append(e)
        keep = failed or errors or os.environ.get("TEST_KEEP") == "1"
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        return errors, keep

    # -- keys

    @property
    def user_key(self):
        if self._user_key is None:
            self._user_key = Key(self.dir / "id_ed25519", comment="tunnels")
        return self._user_key

    def key(self, name, ktype="ed25519", bits=None):
        return Key(self.dir / name, ktype, bits=bits)

    # -- sshd

    def sshd(self, name=None, authorized=None, extra=(), listen_v6=False,
             start=True, port=None, host_key_type="ed25519"):
        name = name or "sshd%d" % (sum(1 for t, _, _ in self.logs
                                       if t.startswith("sshd ")) + 1)
        if authorized is None:
            authorized = [self.user_key]
        d = Sshd(self, name, authorized, extra, listen_v6, port,
                 host_key_type)
        self.on_cleanup(d.stop)
        if start:
            d.start()
        return d

    def known_hosts(self, *lines_or_sshds, name="known_hosts"):
        """Write a known_hosts file from sshd objects and/or raw lines."""
        path = self.dir / name
        out = []
        for x in lines_or_sshds:
            # Any test server (harness.Sshd, servers.py) has the method.
            out.append(x.known_hosts_line() if hasattr(x, "known_hosts_line")
                       else x)
        path.write_text("".join(l + "\n" for l in out))
        return path

    # -- apps

    def app(self, app):
        """Start a local app (apps.py) and stop it at cleanup."""
        app.start()
        self.on_cleanup(app.stop)
        return app

    # -- config and daemon

    def server_cfg(self, sshd, known_hosts=None, identity=None, **over):
        """A server entry for the config, with the brief's defaults."""
        if known_hosts is None and "host_key" not in over:
            known_hosts = self.known_hosts(sshd, name="known_hosts_%s" %
                                           sshd.name)
        d = {
            "host": "127.0.0.1",
            "port": sshd.port,
            "user": self.user,
            "identity": str(identity or self.user_key.path),
        }
        if known_hosts is not None:
            d["known_hosts"] = str(known_hosts)
        d.update({"keepalive": "2s", "keepalive_count": 3,
                  "connect_timeout": "5s"})
        d.update(over)
        return {k: v for k, v in d.items() if v is not None}

    def write_config(self, servers, tunnels, name="tunnels.yaml",
                     backoff=None, **top):
        """Write the daemon's YAML; returns (path, control socket path)."""
        control = self.dir / "control.sock"
        doc = {"control": str(control), "state_dir": str(self.dir / "state")}
        doc.update(top)
        doc["servers"] = servers
        doc["tunnels"] = tunnels
        doc["backoff"] = backoff or {"initial": "200ms", "max": "2s"}
        path = self.dir / name
        text = to_yaml(doc) + "\n"
        path.write_text(text)
        if not any(p == path for _, p, _ in self.logs):
            self.add_log("config %s" % name, path, 200)
        return path, Path(doc["control"])

    def daemon(self, config_path, control=None, name="daemon", **kw):
        if control is None:
            control = self.dir / "control.sock"
        d = Daemon(self, config_path, control, name, **kw)
        self.daemons.append(d)
        self.on_cleanup(d.teardown)
        return d

    def bring_up(self, server=None, app=None, remote=None, name="t1",
                 backoff=None, wait="up", timeout=10.0, daemon_kw=None,
                 **top):
        """
        The usual start of a test: an sshd, a config with server s1 and one
        tunnel `name` to a local app, the daemon, and a wait until the
        tunnel is in state `wait` (None: don't wait). server: None (a new
        sshd "sshd1"), a started test server (its server_cfg is used) or a
        server config dict. app: None (a new apps.EchoServer) or a started
        app. remote: the remote port (None: allocated). backoff and **top
        go to write_config, daemon_kw to daemon(). Returns an Up.
        """
        sshd = None
        if server is None:
            server = sshd = self.sshd("sshd1")
        if not isinstance(server, dict):
            sshd, server = server, self.server_cfg(server)
        if app is None:
            app = self.app(apps.EchoServer())
        if remote is None:
            remote = alloc_port()
        cfg, _ = self.write_config(
            {"s1": server},
            [{"name": name, "server": "s1", "remote": remote,
              "local": app.local}], backoff=backoff, **top)
        d = self.daemon(cfg, **(daemon_kw or {}))
        if wait is not None:
            d.wait_tunnel(name, wait, timeout)
        return Up(d, cfg, remote, app, sshd)
