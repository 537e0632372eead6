"""``learnhub lti keys [--rotate | --retire] [--keep N] [--data-dir DIR]``: the tool's signing keys."""
from __future__ import annotations

import argparse
import json

from learnhub.config import load_settings

from .keys import ToolKeys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="learnhub lti", description="LTI 1.3 tool administration (docs/lti.md).")
    sub = parser.add_subparsers(dest="command", required=True)
    keys = sub.add_parser("keys", help="show the tool's public keys (the JWKS), or rotate the signing key")
    keys.add_argument("--data-dir", default=None, help="learnhub's data dir (default: from settings)")
    keys.add_argument("--rotate", action="store_true", help="generate a new signing key")
    keys.add_argument("--retire", action="store_true",
                      help="stop publishing every key but the newest (once the LMSs have the new one)")
    keys.add_argument("--keep", type=int, default=None,
                      help="with --rotate: keys that stay published, the new one included; with --retire: default 1")
    args = parser.parse_args(argv)
    settings, _path = load_settings(args.data_dir)
    tool = ToolKeys(settings.data_dir)
    if args.rotate and args.retire:
        parser.error("--rotate or --retire, not both")
    if args.retire:
        keep = 1 if args.keep is None else args.keep
        if keep < 1:
            parser.error("--keep must be at least 1")
        retired = tool.retire(keep)
        print(f"retired {len(retired)} key(s): {', '.join(retired) or 'none'}")
        return 0
    if args.rotate:
        keep = 2 if args.keep is None else args.keep
        if keep < 1:
            parser.error("--keep must be at least 1")
        kid = tool.rotate(keep=keep)
        print(f"new signing key {kid}; {len(tool.keys())} key(s) published at /hub/lti/jwks")
        return 0
    print(json.dumps(tool.jwks(), indent=1))
    return 0
