"""
Keys: ssh-keygen generated pairs and their fingerprints.

Part of the integration harness (harness.py re-exports it).
"""

import os
import re
import subprocess

from binaries import SSH_KEYGEN


class Key:
    """An ed25519 (or other type) key pair generated with ssh-keygen."""

    def __init__(self, path, ktype="ed25519", comment=None, bits=None):
        self.path = str(path)
        self.type = ktype
        cmd = [SSH_KEYGEN, "-q", "-t", ktype, "-N", "", "-f", self.path,
               "-C", comment or os.path.basename(self.path)]
        if bits is not None or ktype == "rsa":
            cmd[4:4] = ["-b", str(bits or 2048)]
        subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL,
                       capture_output=True)
        with open(self.path + ".pub") as f:
            parts = f.read().split()
        self.pub_line = "%s %s" % (parts[0], parts[1])   # "TYPE BASE64"
        out = subprocess.run([SSH_KEYGEN, "-lf", self.path + ".pub"],
                             check=True, capture_output=True,
                             text=True).stdout
        m = re.search(r"SHA256:[A-Za-z0-9+/]+", out)
        assert m, "no SHA256 fingerprint in %r" % out
        self.fingerprint = m.group(0)

    def authorized_line(self, options=None):
        """The authorized_keys line for this key, with optional key options
        (e.g. 'restrict,port-forwarding,command="/bin/false"')."""
        return ("%s %s" % (options, self.pub_line)) if options else \
            self.pub_line
