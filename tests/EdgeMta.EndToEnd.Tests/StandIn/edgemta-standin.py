#!/usr/bin/python3
# A stand-in for the edgemta binary, built on aiosmtpd, used ONLY to validate this suite's plumbing
# (the fixture, the raw client, the peers' invocations, spool export parsing) while the real server
# is being written:  EDGEMTA_BINARY=tests/EdgeMta.EndToEnd.Tests/StandIn/edgemta-standin.py dotnet test ...
# It implements the happy paths of PROTOCOL.md's command line and little of its hostile-input rules, so
# most hostile-input tests fail against it by design. Needs Debian's python3-aiosmtpd (/usr/bin/python3).
import asyncio, json, os, signal, socket, sys, uuid

def usage_error(msg):
    print("edgemta: " + msg, file=sys.stderr)
    sys.exit(2)

def main(argv):
    if argv[:1] == ["--version"]:
        print("edgemta stand-in 0.0"); return 0
    if argv[:1] == ["--help"]:
        print("usage: edgemta [serve] [--listen ADDR:PORT] [--spool DIR] ..."); return 0
    if argv[:1] == ["spool"]:
        return spool(argv[1:])
    if argv[:1] == ["serve"]:
        argv = argv[1:]
    opts = {"--domain": []}
    flags = {"--legacy-send", "--refuse-mail", "--require-tls", "--verbose"}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in flags:
            opts[a] = True; i += 1; continue
        if not a.startswith("--") or i + 1 >= len(argv):
            usage_error("unknown argument " + a)
        v = argv[i + 1]
        if a in ("--max-message-size", "--max-recipients", "--command-timeout", "--data-timeout") and not v.isdigit():
            usage_error(f"{a}: '{v}' is not a positive whole number in range")
        if a == "--vrfy" and v not in ("ambiguous", "enabled", "disabled"):
            usage_error(f"--vrfy: '{v}' is not one of ambiguous, enabled, disabled")
        if a == "--domain": opts[a].append(v.lower())
        else: opts[a] = v
        i += 2
    return serve(opts)

def load_directory(path):
    entries = {}
    if not path: return entries
    for line in open(path):
        line = line.split("#")[0].strip()
        if line:
            parts = line.split(None, 1)
            entries[parts[0].lower()] = parts[1] if len(parts) > 1 else ""
    return entries

def serve(opts):
    from aiosmtpd.smtp import SMTP
    SMTP.line_length_limit = 1 << 24  # PROTOCOL.md accepts text lines over 1000 octets
    spool = opts.get("--spool", "spool")
    os.makedirs(spool, exist_ok=True)
    directory = load_directory(opts.get("--recipients"))
    domains = set(opts["--domain"]) | {k.split("@")[1] for k in directory}
    host = opts.get("--hostname", "standin.local")

    class Handler:
        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            session.host_name = hostname
            return [f"250-{host} greets {hostname}", "250-PIPELINING", "250-ENHANCEDSTATUSCODES"] + responses[1:]
        async def handle_MAIL(self, server, session, envelope, address, mail_options):
            envelope.mail_from = address.split(":")[-1]
            return "250 2.1.0 OK"
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            addr = address.split(":")[-1]
            if len(envelope.rcpt_tos) >= 1000: return "452 4.5.3 too many recipients"
            if domains:
                dom = addr.split("@")[-1].lower()
                if dom not in domains: return "550 5.7.1 relaying denied"
                if directory and addr.lower() not in directory: return "550 5.1.1 no such user here"
            envelope.rcpt_tos.append(addr)
            return "250 2.1.5 OK"
        async def handle_DATA(self, server, session, envelope):
            qid = uuid.uuid4().hex[:16].upper()
            received = f"Received: from {session.host_name} ([{session.peer[0]}])\r\n\tby {host} with ESMTP id {qid};\r\n\tThu, 1 Jan 2026 00:00:00 +0000\r\n"
            with open(os.path.join(spool, qid + ".eml"), "wb") as f:
                f.write(received.encode() + envelope.original_content)
            with open(os.path.join(spool, qid + ".json"), "w") as f:
                json.dump({"id": qid, "sender": envelope.mail_from, "recipients": envelope.rcpt_tos}, f)
            return "250 2.0.0 OK queued as " + qid

    async def run():
        loop = asyncio.get_running_loop()
        sock = socket.socket(); sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listen = opts.get("--listen", "127.0.0.1:2525"); h, p = listen.rsplit(":", 1)
        sock.bind((h, int(p))); sock.listen(128)
        tls = None
        if opts.get("--tls-cert"):
            import ssl
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(opts["--tls-cert"], opts["--tls-key"])
        srv = await loop.create_server(lambda: SMTP(Handler(), hostname=host, enable_SMTPUTF8=True, decode_data=False,
                                                    tls_context=tls, require_starttls=bool(opts.get("--require-tls"))), sock=sock)
        print(f"listening on {h}:{sock.getsockname()[1]}", flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set); loop.add_signal_handler(signal.SIGINT, stop.set)
        await stop.wait()
        srv.close()
    asyncio.run(run())
    return 0

def spool(argv):
    cmd, args = argv[0], dict(zip(argv[1::2], argv[2::2]))
    d = args.get("--spool", "spool")
    names = sorted(os.listdir(d)) if os.path.isdir(d) else []
    if cmd == "export":
        import shutil
        os.makedirs(args["--out"], exist_ok=True)
        for n in names: shutil.copy(os.path.join(d, n), args["--out"])
    elif cmd == "stats":
        print(json.dumps({"messages": sum(n.endswith(".eml") for n in names)}))
    elif cmd == "list":
        for n in names:
            if n.endswith(".json"): e = json.load(open(os.path.join(d, n))); print(e["id"], e["sender"], ",".join(e["recipients"]))
    return 0

sys.exit(main(sys.argv[1:]))
