"""
The VPS half end to end (issue 12): `tunnels server-setup --script` run as
root on a bare Debian VPS, and the home's daemon serving sites through it.

The VPS is a systemd-nspawn container (tests/systemd/sdtest.sh, profile
vps: Debian's openssh-server, nginx and certbot, nothing of ours) booted
in a network namespace of its own; the "home" is another namespace on this
machine, joined to it by a veth pair (10.77.0.1 home, 10.77.0.2 VPS, in
these namespaces only). In the home namespace run the daemon, its apps,
the test's HTTP clients, and pebble, the ACME test CA certbot on the VPS
talks to; /etc/netns/HOME/hosts names the VPS (vps.test) and the sites.

One container for the module; the tests run in file order and build on
each other, as an admin's sessions would: first setup over ssh exactly as
the README says, a second run that changes nothing, a tunnel added and one
removed, a second home on the same VPS, and the script's refusals.
"""

import json
import os
import re
import shutil
import socket
import ssl
import subprocess

import pytest

import faults
import harness
from harness import REPO, SSH, alloc_port, run_cli, wait_until
from nginx_apps import HeaderEcho, http_exchange
# _logs_on_failure: test_systemd's autouse fixture, on this module's net.
from test_systemd import Container, _logs_on_failure  # noqa: F401

SDTEST = REPO / "tests" / "systemd" / "sdtest.sh"
SD_ENV = {"SDTEST_PROFILE": "vps"}
HOME_IP, VPS_IP = "10.77.0.1", "10.77.0.2"
NAMES = ["vps.test", "site1.test", "site2.test", "site3.test",
         "secure.test", "other.test", "unknown.test"]
TIMEOUT = 20


def sdtest(*args, timeout=120):
    env = dict(os.environ, **SD_ENV)
    r = subprocess.run([str(SDTEST)] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, env=env)
    assert r.returncode == 0, "sdtest.sh %s: rc %d\n%s%s" % (
        " ".join(map(str, args)), r.returncode, r.stdout, r.stderr)
    return r


@pytest.fixture(scope="module", autouse=True)
def requirements():
    """A missing tool is a failure, not a skip: make deps installs
    them."""
    missing = [t for t in ("systemd-nspawn", "debootstrap", "nsenter",
                           "pebble", "openssl", "dash", "shellcheck")
               if not shutil.which(t)]
    assert not missing, "missing %s (run make deps)" % ", ".join(
        missing)
    assert os.geteuid() == 0, "the VPS tests boot a container: root"


class Homes:
    """The home side: namespaces, veth, names, pebble, keys, apps."""


@pytest.fixture(scope="module")
def net(requirements):
    w = harness.World("vps")
    n = Homes()
    n.world = w
    n.failed = []
    n.home = faults.NetNS(w)
    n.vps = faults.NetNS(w)
    # One veth pair, created inside the home namespace, one end moved.
    n.home.run("ip", "link", "add", "vh0", "type", "veth", "peer", "name",
               "vv0", "netns", n.vps.name)
    n.home.run("ip", "addr", "add", HOME_IP + "/24", "dev", "vh0")
    n.home.run("ip", "link", "set", "vh0", "up")
    n.vps.run("ip", "addr", "add", VPS_IP + "/24", "dev", "vv0")
    n.vps.run("ip", "link", "set", "vv0", "up")
    # Names in the home namespace (ip netns exec bind-mounts this file
    # over /etc/hosts): the daemon dials vps.test, pebble validates the
    # sites at VPS_IP.
    etc = "/etc/netns/%s" % n.home.name
    os.makedirs(etc)

    def rm_etc():
        shutil.rmtree(etc, ignore_errors=True)
        try:
            os.rmdir("/etc/netns")      # only when nobody else uses it
        except OSError:
            pass
    w.on_cleanup(rm_etc)
    with open(etc + "/hosts", "w") as f:
        f.write("127.0.0.1 localhost\n%s %s\n" % (VPS_IP, " ".join(NAMES)))
    n.pebble_dir = w.dir / "pebble"
    n.pebble_dir.mkdir()
    start_pebble(n)
    yield n
    errors, _ = w.close(bool(n.failed))
    assert not errors, "teardown problems (dir %s): %s" % (w.dir, errors)


def start_pebble(n):
    """pebble in the home namespace, on HOME_IP, with a certificate for
    that address; validates http-01 on port 80 of the names."""
    d = n.pebble_dir
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                    str(d / "key.pem"), "-out", str(d / "cert.pem"),
                    "-days", "2", "-subj", "/CN=pebble", "-addext",
                    "subjectAltName=IP:%s" % HOME_IP],
                   check=True, capture_output=True)
    (d / "pebble.json").write_text(json.dumps({"pebble": {
        "listenAddress": HOME_IP + ":14000",
        "managementListenAddress": HOME_IP + ":15000",
        "certificate": str(d / "cert.pem"),
        "privateKey": str(d / "key.pem"),
        "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
        "externalAccountBindingRequired": False}}))
    log = open(d / "pebble.log", "ab")
    n.world.add_log("pebble", d / "pebble.log", 60)
    env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0")
    p = subprocess.Popen([n.home.ip, "netns", "exec", n.home.name, "pebble",
                          "-config", str(d / "pebble.json")],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         env=env)

    def stop():
        harness.stop_popen(p)
        log.close()
    n.world.on_cleanup(stop)
    with n.home.entered():
        wait_until(lambda: harness.is_listening(14000, HOME_IP), 15,
                   "pebble listening on %s:14000" % HOME_IP)


@pytest.fixture(scope="module")
def ct(net):
    """The VPS, booted; root's key for the admin's ssh; certbot pointed at
    pebble (its cli.ini, and the CA of pebble's own TLS in the
    environment sshd sessions get)."""
    sdtest("setup", timeout=900)
    sdtest("down")
    sdtest("boot", "--network-namespace-path=/run/netns/%s" % net.vps.name,
           timeout=120)
    c = Container(int(sdtest("leader").stdout.strip()))
    try:
        for u in ("ssh.service", "nginx.service"):
            c.wait_props(u, {"ActiveState": "active"}, 30)
        net.admin_key = net.world.key("admin_ed25519")
        with open(net.admin_key.path + ".pub") as f:
            c.write("/root/.ssh/authorized_keys", f.read(), "0600")
        r = c.run("cat", "/etc/ssh/ssh_host_ed25519_key.pub", check=True)
        # The admin's own known_hosts: how they reach the VPS today.
        net.admin_kh = net.world.dir / "admin_known_hosts"
        net.admin_kh.write_text("vps.test %s\n" % " ".join(
            r.stdout.split()[:2]))
        ca = (net.pebble_dir / "cert.pem").read_text()
        c.write("/etc/pebble-ca.pem", ca)
        c.write("/etc/environment", "REQUESTS_CA_BUNDLE=/etc/pebble-ca.pem\n")
        c.write("/etc/letsencrypt/cli.ini",
                "server = https://%s:14000/dir\n" % HOME_IP)
        yield c
    finally:
        sdtest("down")


# ---------------------------------------------------------------------------
# Helpers


class Home:
    """One home: its key, account on the VPS, apps, config, daemon."""

    def __init__(self, net, name, user, key=None):
        self.net = net
        self.name = name
        self.user = user
        self.key = key or net.world.key("id_%s" % name)
        self.kh = net.world.dir / ("known_hosts_%s" % name)
        self.cfg = net.world.dir / ("%s.yaml" % name)
        self.control = net.world.dir / ("%s.sock" % name)
        self.daemon = None
        self.apps = {}

    def app(self, site):
        """A header-echo app in the home namespace for one site."""
        if site not in self.apps:
            a = HeaderEcho()
            with self.net.home.entered():
                self.net.world.app(a)
            self.apps[site] = a
        return self.apps[site]

    def write_config(self, tunnels):
        """tunnels: [(name, remote port, site or None, tls)]."""
        doc = {"control": str(self.control),
               "state_dir": str(self.net.world.dir / ("state_" + self.name)),
               "servers": {"vps": {
                   "host": "vps.test", "user": self.user,
                   "identity": self.key.path, "known_hosts": str(self.kh),
                   "keepalive": "2s", "keepalive_count": 3,
                   "connect_timeout": "5s"}},
               "tunnels": [], "backoff": {"initial": "200ms", "max": "2s"}}
        for name, port, site, tls in tunnels:
            t = {"name": name, "server": "vps", "remote": port,
                 "local": self.app(name).local}
            if site:
                t["nginx"] = {"server_name": site, "tls": tls}
            doc["tunnels"].append(t)
        self.cfg.write_text(harness.to_yaml(doc) + "\n")

    def script(self, *extra):
        r = run_cli("server-setup", "--script", "-c", self.cfg, "--home",
                    self.name, *extra)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def start(self):
        if self.daemon is not None:
            self.daemon.stop(timeout=5.0)
        self.daemon = self.net.world.daemon(
            self.cfg, self.control, name="daemon_" + self.name,
            wrapper=[self.net.home.ip, "netns", "exec", self.net.home.name])
        return self.daemon


def run_script(ct, text, check=True):
    """The script piped into sh as root inside the VPS (nsenter)."""
    r = ct.run("env", "REQUESTS_CA_BUNDLE=/etc/pebble-ca.pem", "sh",
               input=text.encode(), timeout=180)
    if check:
        assert r.returncode == 0, "script: rc %d\n%s%s" % (
            r.returncode, r.stdout, r.stderr)
    return r


def http(net, host, port=80, tls_ca=None, path="/"):
    """GET from the home namespace to the VPS with Host (and SNI) host;
    (status, headers, body) or (None, {}, b"") when closed unanswered."""
    with net.home.entered():
        s = socket.create_connection((VPS_IP, port), timeout=10)
    if tls_ca is not None:
        try:
            s = ssl.create_default_context(cadata=tls_ca).wrap_socket(
                s, server_hostname=host)
        except BaseException:
            s.close()
            raise
    return http_exchange(s, host, path, timeout=30)


def served_by(net, host, app, port=80, tls_ca=None):
    """The request reached app through nginx and the tunnel: its echo of
    the request headers (JSON), after waiting for nginx's reload."""
    last = {}

    def ok():
        before = len(app.requests)
        st, _, body = http(net, host, port, tls_ca)
        last["got"] = (st, body[:300])
        return st == 200 and len(app.requests) > before and \
            json.loads(body)
    try:
        return wait_until(ok, TIMEOUT, "%s served by its home app" % host)
    except harness.WaitTimeout as e:
        raise AssertionError("%s; last answer: %s" % (e, last.get("got")))


def not_served(net, host, apps):
    """A request for host reaches none of the apps."""
    counts = [len(a.requests) for a in apps]
    st, _, body = http(net, host)
    assert [len(a.requests) for a in apps] == counts, (
        "%s reached an app (status %s)" % (host, st))
    return st, body


def snapshot(ct, *paths):
    """sha256 and mtime (ns) of each path in the VPS; None when absent."""
    out = {}
    for p in paths:
        r = ct.run("sh", "-c", 'stat -c %Y.%y "$1" && sha256sum < "$1"',
                   "sh", p)
        out[p] = r.stdout if r.returncode == 0 else None
    return out


def reloads(ct):
    """Reloads systemd ran for ssh and nginx, and nginx's process ids."""
    r = ct.run("journalctl", "--no-pager", "-o", "cat", "-u", "ssh",
               "-u", "nginx")
    n = len(re.findall(r"^Reloaded ", r.stdout, re.M))
    pids = ct.run("pgrep", "-d", ",", "nginx").stdout.strip()
    return n, pids


def home_files(ct, home, user):
    stem = "tunnels-%s-vps" % home
    return ["/etc/ssh/sshd_config.d/%s.conf" % stem,
            "/etc/nginx/conf.d/%s.conf" % stem,
            "/home/%s/.ssh/authorized_keys" % user]


def pebble_root(net):
    """The root certificate pebble issues under (its management API)."""
    ctx = ssl.create_default_context(cadata=(net.pebble_dir /
                                             "cert.pem").read_text())
    ctx.check_hostname = False
    with net.home.entered():
        s = socket.create_connection((HOME_IP, 15000), timeout=10)
    s = ctx.wrap_socket(s)
    try:
        s.sendall(b"GET /roots/0 HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    body = data.partition(b"\r\n\r\n")[2].decode()
    assert "BEGIN CERTIFICATE" in body, data[:300]
    return body


# ---------------------------------------------------------------------------
# The tests, in order


@pytest.fixture(scope="module")
def home1(net):
    h = Home(net, "home1", "tun1")
    h.ports = {"site1": alloc_port(), "secure": alloc_port(),
               "site3": alloc_port()}
    h.write_config([("site1", h.ports["site1"], "site1.test", "off"),
                    ("secure", h.ports["secure"], "secure.test",
                     "letsencrypt")])
    return h


def test_script_is_posix_sh(home1):
    text = home1.script("--email", "admin@example.org")
    path = home1.net.world.dir / "script.sh"
    path.write_text(text)
    r = subprocess.run(["dash", "-n", str(path)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    # Bashisms, quoting and the rest: shellcheck in POSIX sh mode.
    r = subprocess.run(["shellcheck", "-s", "sh", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert text.startswith("#!/bin/sh\n") and "\nset -eu\n" in text


def test_refuses_without_root(ct, home1):
    r = ct.run("setpriv", "--reuid=nobody", "--regid=nogroup",
               "--clear-groups", "sh", input=home1.script().encode())
    assert r.returncode != 0 and "run this as root" in r.stderr, r
    assert r.stdout == ""


def test_first_run_over_ssh(ct, net, home1):
    # Exactly the README's line, from the admin's own ssh session.
    text = home1.script("--email", "admin@example.org")
    r = subprocess.run(
        [net.home.ip, "netns", "exec", net.home.name,
         "sh", "-c", '"$@" > %s' % home1.kh, "sh",
         SSH, "-F", "/dev/null", "-i", net.admin_key.path,
         "-o", "UserKnownHostsFile=%s" % net.admin_kh,
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
         "root@vps.test", "sh"], input=text, capture_output=True,
        text=True, timeout=300)
    assert r.returncode == 0, "rc %d\n%s" % (r.returncode, r.stderr)
    summary = r.stderr
    assert "account tun1: created" in summary, summary
    assert "certificate secure.test obtained" in summary, summary
    # Standard output: the host keys as known_hosts lines, nothing else.
    lines = home1.kh.read_text().splitlines()
    pub = ct.run("cat", "/etc/ssh/ssh_host_ed25519_key.pub",
                 check=True).stdout.split()
    assert "vps.test %s %s" % (pub[0], pub[1]) in lines, lines
    assert all(re.fullmatch(r"vps\.test \S+ [A-Za-z0-9+/=]+", l)
               for l in lines), lines

    # The VPS as the script left it.
    f = home_files(ct, "home1", "tun1")
    dropin = ct.run("cat", f[0], check=True).stdout
    assert "Match User tun1\n" in dropin
    assert "\tPermitListen 127.0.0.1:%d 127.0.0.1:%d\n" % (
        home1.ports["site1"], home1.ports["secure"]) in dropin
    keys = ct.run("cat", f[2], check=True).stdout.splitlines()
    assert len(keys) == 1 and keys[0].endswith(
        " %s id_home1 tunnels:home1/vps" % home1.key.pub_line), keys
    st = ct.run("stat", "-c", "%a %U", f[2], "/home/tun1/.ssh",
                check=True).stdout.split("\n")
    assert st[:2] == ["600 tun1", "700 tun1"], st
    # Debian's default site is still enabled: nothing the admin had is
    # gone, and nginx -t passed with it next to our catch-all.
    assert ct.run("test", "-L", "/etc/nginx/sites-enabled/default"
                  ).returncode == 0
    assert ct.run("nginx", "-t").returncode == 0

    d = home1.start()
    d.wait_all_up(TIMEOUT)
    got = served_by(net, "site1.test", home1.app("site1"))
    h = got["headers"]
    assert h["host"] == "site1.test"
    assert h["x-forwarded-for"] == HOME_IP and h["x-real-ip"] == HOME_IP
    assert h["x-forwarded-proto"] == "http"

    # https with the certificate certbot got from pebble over the
    # generated port-80 block; verified against pebble's root.
    root = pebble_root(net)
    got = served_by(net, "secure.test", home1.app("secure"), 443, root)
    assert got["headers"]["x-forwarded-proto"] == "https"
    st, hdrs, _ = http(net, "secure.test")
    assert st == 301 and hdrs["location"] == "https://secure.test/", hdrs
    # An unknown name never reaches a tunnel (Debian's default answers).
    not_served(net, "unknown.test", list(home1.apps.values()))


def test_second_run_changes_nothing(ct, net, home1):
    paths = home_files(ct, "home1", "tun1") + [
        "/etc/nginx/conf.d/00-tunnels-default.conf", "/etc/ssh/sshd_config"]
    before, rel = snapshot(ct, *paths), reloads(ct)
    assert rel[0] >= 2, "no reload seen for the first run: %s" % (rel,)
    r = run_script(ct, home1.script("--email", "admin@example.org"))
    assert "nothing changed" in r.stderr, r.stderr
    assert snapshot(ct, *paths) == before
    assert reloads(ct) == rel, "a service was reloaded"
    assert r.stdout == home1.kh.read_text()


def test_add_and_remove_a_tunnel(ct, net, home1):
    p1, p3 = home1.ports["site1"], home1.ports["site3"]
    # The daemon running since the first test is reloaded, as the README
    # says: the added tunnel is refused on the session that logged in
    # before the script allowed it, and the daemon logs in again.
    d = home1.daemon or home1.start()
    d.wait_all_up(TIMEOUT)
    home1.write_config([("secure", home1.ports["secure"], "secure.test",
                         "letsencrypt"),
                        ("site3", p3, "site3.test", "off")])
    r = run_script(ct, home1.script())
    f = home_files(ct, "home1", "tun1")
    assert "%s: written" % f[0] in r.stderr, r.stderr
    assert "nginx: reloaded" in r.stderr and "sshd: reloaded" in r.stderr
    d.reload(timeout=TIMEOUT)
    d.wait_all_up(TIMEOUT)
    served_by(net, "site3.test", home1.app("site3"))
    served_by(net, "secure.test", home1.app("secure"), 443, pebble_root(net))
    # The removed one: not proxied, and the server no longer permits it.
    not_served(net, "site1.test", list(home1.apps.values()))
    dropin = ct.run("cat", f[0], check=True).stdout
    assert str(p1) not in dropin and str(p3) in dropin
    keys = ct.run("cat", f[2], check=True).stdout
    assert "127.0.0.1:%d" % p1 not in keys and "127.0.0.1:%d" % p3 in keys
    # A trial forward of the removed tunnel's port, with this home's key.
    trial = Home(net, "home1", "tun1", key=home1.key)
    trial.kh = home1.kh
    trial.cfg = net.world.dir / "trial.yaml"
    trial.control = net.world.dir / "trial.sock"
    trial.apps = home1.apps
    trial.write_config([("site1", p1, None, "off")])
    r = net.home.run(harness.tunnels_bin(), "check", "--connect", "-c",
                     trial.cfg, check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r"forward site1: the server refused to listen on "
                     r"127\.0\.0\.1:%d" % p1, r.stdout), r.stdout


def test_second_home_leaves_the_first_alone(ct, net, home1):
    f1 = home_files(ct, "home1", "tun1")
    shared = "/etc/nginx/conf.d/00-tunnels-default.conf"
    before = snapshot(ct, *(f1 + [shared]))
    home2 = Home(net, "home2", "tun2")
    p = alloc_port()
    home2.write_config([("other", p, "other.test", "off")])
    r = run_script(ct, home2.script())
    assert "account tun2: created" in r.stderr, r.stderr
    home2.kh.write_text(r.stdout)
    assert snapshot(ct, *(f1 + [shared])) == before, \
        "the second home changed the first one's files"
    d2 = home2.start()
    d2.wait_all_up(TIMEOUT)
    served_by(net, "other.test", home2.app("other"))
    served_by(net, "site3.test", home1.app("site3"))
    keys2 = ct.run("cat", "/home/tun2/.ssh/authorized_keys",
                   check=True).stdout
    assert home1.key.pub_line not in keys2
    # Its account is its own: this home may not take the first's.
    home2.user = "tun1"
    home2.write_config([("other", p, "other.test", "off")])
    r = run_script(ct, home2.script(), check=False)
    assert r.returncode != 0 and "already set up by" in r.stderr, r.stderr
    assert snapshot(ct, *(f1 + [shared])) == before


def test_refused_config_is_rolled_back(ct, net, home1):
    f = home_files(ct, "home1", "tun1")
    before, rel = snapshot(ct, *f), reloads(ct)
    ct.write("/etc/ssh/sshd_config.d/zz-broken.conf", "NoSuchKeyword yes\n")
    home1.write_config([("secure", home1.ports["secure"], "secure.test",
                         "letsencrypt"),
                        ("site3", home1.ports["site3"], "site3.test", "off"),
                        ("extra", alloc_port(), "site2.test", "off")])
    try:
        r = run_script(ct, home1.script(), check=False)
        assert r.returncode != 0 and "sshd -t refused" in r.stderr, r.stderr
        assert snapshot(ct, *f) == before and reloads(ct) == rel
    finally:
        ct.run("rm", "-f", "/etc/ssh/sshd_config.d/zz-broken.conf",
               check=True)
    # nginx's turn: a broken file next to ours.
    ct.write("/etc/nginx/conf.d/zz-broken.conf", "this is not nginx;\n")
    try:
        r = run_script(ct, home1.script(), check=False)
        assert r.returncode != 0 and "nginx -t refused" in r.stderr, r.stderr
        after = snapshot(ct, *f)
        assert after[f[1]] == before[f[1]], "nginx file not restored"
        assert after[f[0]] != before[f[0]], "sshd part not applied"
    finally:
        ct.run("rm", "-f", "/etc/nginx/conf.d/zz-broken.conf", check=True)
    served_by(net, "site3.test", home1.app("site3"))


def sshd_effective(ct, user):
    """sshd's settings for a connection of user (sshd -T -C)."""
    r = ct.run("sshd", "-T", "-C", "user=%s,host=h,addr=%s" % (user, HOME_IP),
               check=True)
    return dict(l.split(" ", 1) for l in r.stdout.splitlines() if " " in l)


def test_match_blocks_stay_in_their_place(ct, home1):
    # The drop-in's Match block applies to its account only: Debian's
    # main config includes sshd_config.d at its top.
    mine, root = sshd_effective(ct, "tun1"), sshd_effective(ct, "root")
    dropin = ct.run("cat", home_files(ct, "home1", "tun1")[0],
                    check=True).stdout
    want = re.search(r"(?m)^\tPermitListen (.*)$", dropin).group(1)
    assert "127.0.0.1:%d" % home1.ports["site3"] in want
    assert mine["permitlisten"] == want, mine["permitlisten"]
    assert mine["x11forwarding"] == "no" and mine["permittty"] == "no"
    assert root["permitlisten"] == "any" and root["x11forwarding"] == "yes"


def test_managed_block_without_include(ct, net):
    # A sshd_config that does not include sshd_config.d: a managed block
    # at its end, replaced in place, and nothing else of the file touched.
    main = "/etc/ssh/sshd_config"
    text = ct.run("cat", main, check=True).stdout
    body = re.sub(r"(?m)^Include /etc/ssh/sshd_config\.d/\*\.conf\n", "",
                  text)
    assert body != text
    ct.write(main, body)
    home3 = Home(net, "home3", "tun3")
    p = alloc_port()
    home3.write_config([("t3", p, None, "off")])
    r = run_script(ct, home3.script())
    assert "%s: written" % main in r.stderr, r.stderr
    new = ct.run("cat", main, check=True).stdout
    assert new.startswith(body), "the admin's part of sshd_config changed"
    block = new[len(body):]
    assert block.startswith("# BEGIN tunnels:home3/vps ") and \
        block.endswith("# END tunnels:home3/vps\n"), block
    assert "Match User tun3\n" in block and "\tPermitListen 127.0.0.1:%d\n" \
        % p in block
    assert sshd_effective(ct, "tun3")["permitlisten"] == "127.0.0.1:%d" % p
    # home3 has no nginx: section and had no file: nginx is left alone.
    assert "nginx" not in r.stderr, r.stderr
    r = run_script(ct, home3.script())
    assert "nothing changed" in r.stderr, r.stderr
    # A changed port is replaced inside the block, in place.
    p2 = alloc_port()
    home3.write_config([("t3", p2, None, "off")])
    home3.kh.write_text(run_script(ct, home3.script()).stdout)
    new2 = ct.run("cat", main, check=True).stdout
    assert new2.startswith(body) and new2.count("# BEGIN tunnels:") == 1
    assert "\tPermitListen 127.0.0.1:%d\n" % p2 in new2
    d = home3.start()
    d.wait_all_up(TIMEOUT)
