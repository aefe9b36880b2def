#!/usr/bin/python3
# The scale-out run's mail client (ScaleOutTests), run inside the client namespace with `ip netns exec`.
# THREADS threads each send one message per SMTP session to HOST:PORT (HAProxy's frontend) until the file STOP
# exists or MAX messages have been sent in all, and print one JSON line per message:
#   {"seq": N, "code": 250, "text": "2.0.0 OK queued as ID", "queue_id": "ID"}   acknowledged
#   {"seq": N, "code": 421 | 0, "text": "..."}                                     not acknowledged (0: no reply)
# One session per message, so that HAProxy's round robin spreads them and a node stopped mid-run cuts some.
# What it does not do: retry. A message not acknowledged is reported and left; the test only asks that
# nothing acknowledged is lost (RFC 5321 §6.1: a 250 to the final dot takes the responsibility over).
# Bounded: every socket operation times out at 10 s, and MAX caps the run if the STOP file never comes.
import json, os, smtplib, sys, threading

host, port, stop, max_messages, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
lock = threading.Lock()
counter = [0]

def report(record):
    with lock:
        print(json.dumps(record), flush=True)

def next_seq():
    with lock:
        if counter[0] >= max_messages or os.path.exists(stop):
            return None
        counter[0] += 1
        return counter[0]

def send(seq):
    body = (f"From: client@client.test\r\nTo: rcpt@node.test\r\nSubject: scale-out {seq}\r\n"
            f"X-Scaleout-Seq: {seq}\r\n\r\nmessage {seq}\r\n")
    try:
        s = smtplib.SMTP(host, port, local_hostname="client.test", timeout=10)
    except smtplib.SMTPConnectError as e:
        return {"seq": seq, "code": e.smtp_code, "text": str(e.smtp_error)}
    except (OSError, smtplib.SMTPException) as e:
        return {"seq": seq, "code": 0, "text": f"connect: {e!r}"}
    try:
        s.ehlo()
        code, text = s.mail("client@client.test")
        if code != 250:
            return {"seq": seq, "code": code, "text": text.decode("utf-8", "replace")}
        code, text = s.rcpt("rcpt@node.test")
        if code not in (250, 251):
            return {"seq": seq, "code": code, "text": text.decode("utf-8", "replace")}
        code, text = s.data(body.encode("ascii"))
        text = text.decode("utf-8", "replace")
        record = {"seq": seq, "code": code, "text": text}
        if code == 250 and " queued as " in text:
            record["queue_id"] = text.rsplit(" ", 1)[1]
        try:
            s.quit()
        except (OSError, smtplib.SMTPException):
            pass   # the 250 to the dot is what counts; a node stopping may cut the QUIT
        return record
    except smtplib.SMTPResponseException as e:
        return {"seq": seq, "code": e.smtp_code, "text": e.smtp_error.decode("utf-8", "replace")}
    except (OSError, smtplib.SMTPException) as e:
        return {"seq": seq, "code": 0, "text": repr(e)}
    finally:
        try:
            s.close()
        except OSError:
            pass

def worker():
    while (seq := next_seq()) is not None:
        report(send(seq))

workers = [threading.Thread(target=worker) for _ in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
