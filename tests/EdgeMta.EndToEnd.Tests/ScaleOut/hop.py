#!/usr/bin/python3
# The namespace harness's next hop (NetnsHarnessSelfTests; ScaleOutTests relays to a real Postfix instead): an
# aiosmtpd server (Debian python3-aiosmtpd), run inside its own namespace with `ip netns exec`. Greets as `hop.test` (a name no
# node has: docs/DELIVERY.md "Loops"), accepts every message and prints one JSON line for each:
#   {"id": "<queue id from edgemta's Received: header>", "client": "<the address in it>", "seq": "N",
#    "peer": "<the node that relayed it>", "rcpts": [...]}
# then "ready" once listening. What it does not do: store messages, or refuse any. Stopped by SIGTERM (its pid).
import json, re, signal, sys
from aiosmtpd.controller import Controller

host, port = sys.argv[1], int(sys.argv[2])
received = re.compile(r"^Received: from \S+ \(.*?\[([0-9A-Fa-f.:]+)\]\)\s+by \S+ with \S+ id (\S+)", re.M)
seq = re.compile(r"^X-Scaleout-Seq: (\d+)", re.M)

class Handler:
    async def handle_DATA(self, server, session, envelope):
        text = envelope.content.decode("utf-8", "replace")
        m, s = received.search(text), seq.search(text)
        print(json.dumps({"id": m.group(2) if m else None, "client": m.group(1) if m else None,
                          "seq": s.group(1) if s else None, "peer": session.peer[0],
                          "rcpts": envelope.rcpt_tos}), flush=True)
        return "250 2.0.0 OK"

controller = Controller(Handler(), hostname=host, port=port, server_hostname="hop.test")
controller.start()
print("ready", flush=True)
signal.signal(signal.SIGTERM, lambda *_: (controller.stop(), sys.exit(0)))
signal.pause()
