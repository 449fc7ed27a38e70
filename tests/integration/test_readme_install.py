"""
The README's two-machine install, run as it is written (issue 12): the
command blocks of its "Install" section are read from README.md and run,
in order, on two bare Debian 12 machines.

The home is a systemd-nspawn container made from a minimal Debian rootfs
(tests/systemd/sdtest.sh, profile home: systemd and nothing else; no make,
git, compiler or ssh client). Step 2 runs in it unbooted, on the host's
network so apt reaches the archive (the repository is bind-mounted where
the README says REPOSITORY-URL); then it boots in the home network
namespace of test_vps.py, next to pebble, with the VPS container behind
the veth. Each block runs there as root through `sh -e`, word for word,
with these exceptions, which a test cannot do otherwise:

- step 1 (apt-get on the VPS): the VPS's network has no archive; its
  rootfs already holds exactly those packages, which the test checks;
- `editor FILE` lines: the test writes the file (the README's YAML block
  itself for step 3);
- the admin's own ssh access to the VPS (root's key and the VPS's host
  key at home), and DNS (the names in /etc/hosts): the README's
  preconditions, set up by the test;
- certbot talks to pebble, the ACME test CA (test_vps.py's cli.ini).
"""

import os
import re
import shutil
import subprocess

import pytest

import harness
from harness import REPO, wait_until
from nginx_apps import HeaderEcho
from test_systemd import CONTAINER_PATH, Container
from test_vps import (HOME_IP, VPS_IP, _logs_on_failure, ct,  # noqa
                      net, not_served, pebble_root, requirements,
                      served_by)

SDTEST = REPO / "tests" / "systemd" / "sdtest.sh"
ENV = ["env", "-i", "PATH=" + CONTAINER_PATH, "HOME=/root", "LANG=C.UTF-8"]
NAMES = ["proxy.example.com", "blog.example.com", "www.blog.example.com",
         "wiki.example.com"]
TIMEOUT = 30


def readme_steps():
    """The Install section's code blocks: [(label, lang, text)], where
    label is the bold text that introduces the block."""
    text = (REPO / "README.md").read_text()
    m = re.search(r"^## Install: .*?$(.*?)^## ", text, re.M | re.S)
    assert m, "README.md has no '## Install: ...' section"
    steps, label = [], None
    for t in re.finditer(r"^\*\*(.+?)\*\*|^```(\w+)\n(.*?)^```$",
                         m.group(1), re.M | re.S):
        if t.group(1):
            label = t.group(1)
        else:
            steps.append((label, t.group(2), t.group(3)))
    return steps


def step(steps, label, lang="sh"):
    got = [t for lb, lg, t in steps if lb and lb.startswith(label)
           and lg == lang]
    assert len(got) == 1, "README: want one %s block after **%s**: %s" % (
        lang, label, [(lb, lg) for lb, lg, _ in steps])
    return got[0]


def without_editor(block):
    """The block minus its `editor FILE` lines (the test edits)."""
    lines = block.splitlines()
    assert any(re.match(r"editor /etc/tunnels/tunnels\.yaml$", l)
               for l in lines), block
    return "\n".join(l for l in lines if not l.startswith("editor "))


def sdtest(*args, env, timeout=120):
    r = subprocess.run([str(SDTEST)] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL,
                       env=dict(os.environ, SDTEST_PROFILE="home", **env))
    assert r.returncode == 0, "sdtest.sh %s: rc %d\n%s%s" % (
        " ".join(map(str, args)), r.returncode, r.stdout[-4000:],
        r.stderr[-4000:])
    return r


@pytest.fixture(scope="module")
def steps():
    s = readme_steps()
    # Every block of the section is accounted for below.
    assert [(lb, lg) for lb, lg, _ in s] == [
        ("1. On the VPS", "sh"), ("2. At home", "sh"),
        ("3. At home", "sh"), ("3. At home", "yaml"),
        ("4. At home", "sh"), ("5. At home", "sh"),
        ("Add a tunnel", "sh"), ("Remove a tunnel", "sh")], s
    return s


@pytest.fixture(scope="module")
def home(net, ct, steps):
    """The home machine after step 2, booted in the home namespace."""
    world = net.world
    sdtest("setup", env={}, timeout=1200)
    d = world.dir / "home-ct"
    d.mkdir()
    # The cached bare rootfs stays bare: the install goes into a copy.
    subprocess.run(["cp", "-a", REPO / "build" / "sdtest-home" / "rootfs",
                    d / "rootfs"], check=True)
    root = d / "rootfs"
    env = {"SDTEST_DIR": str(d), "SDTEST_NAME": "tunnels-readme"}
    block = step(steps, "2. At home")
    assert "REPOSITORY-URL" in block
    (root / "root" / "step2.sh").write_text(
        "cd /root\n" + block.replace("REPOSITORY-URL", "/src"))
    # The host's downloaded packages are apt's cache (verified as usual).
    binds = "--bind-ro=%s:/src --bind=/var/cache/apt/archives" % REPO
    # In a git worktree .git names the repository's common dir elsewhere:
    # the clone in the container reads it at the same path.
    common = subprocess.run(["git", "-C", str(REPO), "rev-parse",
                             "--path-format=absolute", "--git-common-dir"],
                            capture_output=True, text=True).stdout.strip()
    if common and not common.startswith(str(REPO) + os.sep):
        binds += " --bind-ro=%s" % common
    env_os = dict(env, SDTEST_ONESHOT_ARGS=binds)
    log = world.dir / "home-step2.log"
    world.add_log("home step 2", log, 80)
    r = subprocess.run([str(SDTEST), "oneshot", *ENV, "/bin/sh", "-e",
                        "/root/step2.sh"], stdin=subprocess.DEVNULL,
                       stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                       env=dict(os.environ, SDTEST_PROFILE="home", **env_os),
                       timeout=1500)
    assert r.returncode == 0, "step 2 failed: %s" % log.read_text()[-4000:]
    # The README's preconditions: DNS, and the admin's own ssh to the VPS
    # with its host key checked.
    with open(root / "etc" / "hosts", "a") as f:
        f.write("%s %s\n" % (VPS_IP, " ".join(NAMES)))
    with open("/etc/netns/%s/hosts" % net.home.name, "a") as f:
        f.write("%s %s\n" % (VPS_IP, " ".join(NAMES)))
    ssh = root / "root" / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    shutil.copy(net.admin_key.path, ssh / "id_ed25519")
    os.chmod(ssh / "id_ed25519", 0o600)
    pub = ct.run("cat", "/etc/ssh/ssh_host_ed25519_key.pub",
                 check=True).stdout.split()
    (ssh / "known_hosts").write_text("proxy.example.com %s %s\n" % (
        pub[0], pub[1]))
    sdtest("down", env=env)
    sdtest("boot", "--network-namespace-path=/run/netns/%s" % net.home.name,
           env=env, timeout=120)
    world.on_cleanup(lambda: sdtest("down", env=env))
    c = Container(int(sdtest("leader", env=env).stdout.strip()))
    c.root = root
    yield c
    if any(n for n in net.failed):
        r = c.run("journalctl", "--no-pager", "-u", "tunnels")
        print("home journal:\n" + r.stdout[-6000:])


def sh(c, block, timeout=300):
    """A README block in the home container, as root, `sh -e`."""
    r = c.run(*ENV, "sh", "-ec", "cd /root\n" + block, timeout=timeout)
    assert r.returncode == 0, "rc %d running:\n%s\n-- stdout:\n%s\n-- " \
        "stderr:\n%s" % (r.returncode, block, r.stdout, r.stderr)
    return r


def status_up(c, names):
    """Wait until `tunnels status` shows each tunnel up."""
    last = {}

    def ok():
        r = c.run("tunnels", "status")
        last["out"] = r.stdout + r.stderr
        return r.returncode == 0 and all(
            re.search(r"^\s*%s\b.*\bup\b" % n, r.stdout, re.M)
            for n in names)
    try:
        wait_until(ok, TIMEOUT, "tunnels status: %s up" % ", ".join(names))
    except harness.WaitTimeout as e:
        raise AssertionError("%s; last:\n%s" % (e, last.get("out")))
    return last["out"]


def app_on(net, port):
    a = HeaderEcho(port=port)
    with net.home.entered():
        net.world.app(a)
    return a


def test_readme_install(net, ct, home, steps):
    # 1. The VPS: the packages the README installs are there.
    s1 = step(steps, "1. On the VPS")
    pkgs = re.search(r"apt-get install -y (.+)$", s1, re.M).group(1).split()
    r = ct.run("dpkg-query", "-W", "-f", "${Status}\n", *pkgs, check=True)
    assert r.stdout.split("\n")[:len(pkgs)] == ["install ok installed"] * \
        len(pkgs), r.stdout

    # 2. Was the install: the binary, the user, the key.
    r = home.run("tunnels", "--version", check=True)
    assert r.stdout.startswith("tunnels "), r.stdout
    home.run("id", "tunnels", check=True)
    st = home.run("stat", "-c", "%U %a", "/etc/tunnels/id_ed25519",
                  check=True).stdout.split()
    assert st == ["tunnels", "600"], st

    # 3. The config: the README's YAML, as the editor would save it.
    assert "editor /etc/tunnels/tunnels.yaml" in step(steps, "3. At home")
    home.write("/etc/tunnels/tunnels.yaml", step(steps, "3. At home",
                                                 "yaml"))
    blog = app_on(net, 1313)

    # 4. The script over the admin's ssh; the host keys pinned.
    r = sh(home, step(steps, "4. At home"), timeout=600)
    kh = home.run("cat", "/etc/tunnels/known_hosts", check=True).stdout
    pub = ct.run("cat", "/etc/ssh/ssh_host_ed25519_key.pub",
                 check=True).stdout.split()
    assert "proxy.example.com %s %s" % (pub[0], pub[1]) in kh.splitlines()
    dropin = ct.run("sh", "-c", "cat /etc/ssh/sshd_config.d/tunnels-*",
                    check=True).stdout
    assert "PermitListen 127.0.0.1:4001\n" in dropin, dropin

    # 5. Start; the site over https with the certificate certbot got.
    r = sh(home, step(steps, "5. At home"))
    assert re.search(r"^\s*blog\b", r.stdout, re.M), r.stdout
    status_up(home, ["blog"])
    assert home.systemctl("is-enabled", "tunnels").stdout.strip() == \
        "enabled"
    ca = pebble_root(net)
    for name in ("blog.example.com", "www.blog.example.com"):
        got = served_by(net, name, blog, 443, ca)
        assert got["headers"]["x-forwarded-for"] == HOME_IP
        assert got["headers"]["x-forwarded-proto"] == "https"

    # Add a tunnel: the editor's change, then the README's commands.
    wiki = app_on(net, 0)
    cfg = home.run("cat", "/etc/tunnels/tunnels.yaml", check=True).stdout
    home.write("/etc/tunnels/tunnels.yaml", cfg + (
        "  - name: wiki\n    remote: 4002\n    local: %d\n"
        "    nginx:\n      server_name: wiki.example.com\n"
        "      tls: off\n" % wiki.port))
    sh(home, without_editor(step(steps, "Add a tunnel")), timeout=600)
    status_up(home, ["blog", "wiki"])
    served_by(net, "wiki.example.com", wiki)
    served_by(net, "blog.example.com", blog, 443, ca)

    # Remove it: the editor's change, then the README's commands.
    home.write("/etc/tunnels/tunnels.yaml", cfg)
    sh(home, without_editor(step(steps, "Remove a tunnel")), timeout=600)
    dropin = ct.run("sh", "-c", "cat /etc/ssh/sshd_config.d/tunnels-*",
                    check=True).stdout
    assert "4002" not in dropin and "4001" in dropin, dropin
    assert "wiki.example.com" not in ct.run(
        "sh", "-c", "cat /etc/nginx/conf.d/tunnels-*", check=True).stdout
    not_served(net, "wiki.example.com", [wiki])
    served_by(net, "blog.example.com", blog, 443, ca)
    r = home.run("tunnels", "status", check=True)
    assert not re.search(r"^\s*wiki\b", r.stdout, re.M), r.stdout
