"""
The daemon's config as YAML: block style from dicts and lists.

Part of the integration harness (harness.py re-exports it).
"""

import json
import re


_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./:@+-]*")


def yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if _PLAIN.fullmatch(s) and not s.endswith(":"):
        return s
    return json.dumps(s)    # a JSON string is a valid YAML double-quoted one


def to_yaml(obj, indent=0):
    """Block-style YAML for dicts/lists of scalars (insertion order)."""
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:" % (pad, k))
                out.append(to_yaml(v, indent + 2))
            else:
                out.append("%s%s: %s" % (pad, k,
                                         yaml_scalar(v) if not isinstance(
                                             v, (dict, list)) else
                                         ("{}" if isinstance(v, dict)
                                          else "[]")))
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict):
                sub = to_yaml(item, indent + 2).splitlines()
                sub[0] = pad + "- " + sub[0][indent + 2:]
                out += sub
            else:
                out.append("%s- %s" % (pad, yaml_scalar(item)))
    return "\n".join(out)
