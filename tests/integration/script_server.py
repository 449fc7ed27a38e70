"""
What the SSH servers the tests wrote in Python share (asyncssh_server.py,
hostile_server.py, injection_server.py; run by sshserver.ScriptServer):
the common options, the log file, the pid file written once listening,
and the top level that logs a crash and exits 1.
"""

import argparse
import asyncio
import logging
import os
import sys


def arg_parser():
    """An ArgumentParser with the options every such server takes."""
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host-key", required=True)
    p.add_argument("--authorized-keys", required=True)
    p.add_argument("--pidfile", required=True)
    p.add_argument("--log", required=True)
    return p


def log_to(path, level=logging.INFO):
    """Log to the file the harness shows on failure."""
    logging.basicConfig(filename=path, level=level,
                        format="%(asctime)s %(levelname)s %(name)s "
                        "%(message)s")


def write_pidfile(path):
    """Our pid, renamed into place: the harness waits for the file."""
    with open(path + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(path + ".tmp", path)


def run(coro, log):
    """Run the server's main coroutine; a crash is logged, exit 1."""
    try:
        asyncio.run(coro)
    except Exception:
        log.exception("server failed")
        sys.exit(1)
