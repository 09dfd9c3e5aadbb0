#!/usr/bin/env python3
"""A Stagecoach client in Python, standard library only.

Creates a prospect, records that the prospect replied, and prints the
prospect with its exit criteria. The socket comes from the first argument,
`STAGECOACH_SOCKET`, or the daemon's default location.

    python3 examples/client.py [SOCKET]
"""

import itertools
import json
import os
import socket
import sys


class StagecoachError(Exception):
    """An error answered by the daemon (code, message, data)."""

    def __init__(self, error):
        super().__init__(f"{error['message']} (code {error['code']})")
        self.code = error["code"]
        self.data = error.get("data")


class Client:
    """JSON-RPC 2.0 over a Unix socket, one JSON object per line."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.reader = self.sock.makefile("r", encoding="utf-8")
        self.ids = itertools.count(1)

    def call(self, method, **params):
        request_id = next(self.ids)
        line = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        self.sock.sendall(line.encode("utf-8") + b"\n")
        while True:
            message = json.loads(self.reader.readline())
            if message.get("id") != request_id:
                continue  # a notification
            if "error" in message:
                raise StagecoachError(message["error"])
            return message["result"]


def default_socket():
    if os.environ.get("STAGECOACH_SOCKET"):
        return os.environ["STAGECOACH_SOCKET"]
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "stagecoach", "stagecoach.sock")


def main():
    client = Client(sys.argv[1] if len(sys.argv) > 1 else default_socket())
    prospect = client.call("prospect.create", name="Ada Lovelace", company="Analytical Engines",
                           owner="maria", fields={"budget": 12000})
    result = client.call("activity.record", prospect=prospect["id"], kind="replied", actor="prospect")
    for move in result["moves"]:
        print(f"moved {move['from']} -> {move['to']} ({move['kind']})")
    shown = client.call("prospect.get", id=prospect["id"])
    print(f"prospect {shown['id']}: {shown['name']} ({shown['company']}) is in {shown['stage']}")
    for verdict in shown.get("verdicts", []):
        mark = "met" if verdict["met"] else "unmet"
        print(f"  [{mark}] {verdict['question']} - {verdict['reason']}")


if __name__ == "__main__":
    main()
