#!/usr/bin/env python3
"""A tiny SMTP sink with STARTTLS, for tests/outbound_tls.rs (stdlib only).

Usage: tls_sink.py CERT KEY MODE LOG [USER:PASSWORD]
With USER:PASSWORD, EHLO offers AUTH PLAIN LOGIN (in plaintext too) and
AUTH checks them (535 5.7.8 when wrong); messages record "auth".
MODE: starttls (offer STARTTLS and do it), nostarttls (never offer it),
broken (offer it, answer 220, then send junk instead of a handshake),
inject (answer 220 and, in the same write, a pipelined fake reply).
Prints the port it listens on (127.0.0.1), then serves until killed.
Appends one JSON line per connection event to LOG:
{"event": "connect"} and {"event": "message", "tls": "TLSv1.3"|null,
"sni": name|null, "from": ..., "rcpt": [...]}.
"""
import base64
import json
import socket
import ssl
import sys
import threading
import time

CERT, KEY, MODE, LOG = sys.argv[1:5]
CREDS = sys.argv[5] if len(sys.argv) > 5 else None
LOCK = threading.Lock()


def log(record):
    with LOCK, open(LOG, "a") as f:
        f.write(json.dumps(record) + "\n")


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.tls = None
        self.sni = None
        self.auth = None

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def send(self, text):
        self.sock.sendall(text.encode())


def serve(sock):
    c = Conn(sock)
    log({"event": "connect"})
    c.send("220 sink.tls.test ESMTP\r\n")
    mail_from, rcpts = None, []
    while True:
        line = c.line()
        if line is None:
            return
        verb = line.split(" ", 1)[0].upper()
        if verb in ("EHLO", "HELO"):
            offer = MODE != "nostarttls" and c.tls is None
            auth = "250-AUTH PLAIN LOGIN\r\n" if CREDS else ""
            c.send("250-sink.tls.test\r\n" + ("250-STARTTLS\r\n" if offer else "") + auth + "250 8BITMIME\r\n")
        elif verb == "AUTH" and CREDS:
            words = line.split(" ")
            mech = words[1].upper()
            if mech == "PLAIN":
                _, user, password = base64.b64decode(words[2]).decode().split("\0")
            else:
                c.send("334 VXNlcm5hbWU6\r\n")
                user = base64.b64decode(c.line()).decode()
                c.send("334 UGFzc3dvcmQ6\r\n")
                password = base64.b64decode(c.line()).decode()
            if user + ":" + password == CREDS:
                c.auth = mech + " " + user
                c.send("235 2.7.0 Authentication successful\r\n")
            else:
                c.send("535 5.7.8 Error: authentication failed: bad password\r\n")
        elif verb == "STARTTLS":
            if MODE == "broken":
                c.send("220 2.0.0 Ready to start TLS\r\n")
                # Late enough to be read as the server's TLS handshake.
                time.sleep(0.3)
                c.send("this is not a TLS record\r\n" * 4)
                sock.close()
                return
            if MODE == "inject":
                c.send("220 2.0.0 Ready to start TLS\r\n250 injected reply\r\n")
            else:
                c.send("220 2.0.0 Ready to start TLS\r\n")
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(CERT, KEY)

            def sni_cb(_s, name, _ctx):
                c.sni = name

            ctx.sni_callback = sni_cb
            try:
                c.sock = ctx.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError) as e:
                log({"event": "handshake-failed", "error": str(e)})
                return
            c.tls = c.sock.version()
            c.buf = b""
        elif verb == "MAIL":
            mail_from = line.split(":", 1)[1].strip().split(" ")[0].strip("<>")
            rcpts = []
            c.send("250 2.1.0 Ok\r\n")
        elif verb == "RCPT":
            rcpts.append(line.split(":", 1)[1].strip().split(" ")[0].strip("<>"))
            c.send("250 2.1.5 Ok\r\n")
        elif verb == "DATA":
            c.send("354 End data with <CR><LF>.<CR><LF>\r\n")
            while True:
                l = c.line()
                if l is None:
                    return
                if l == ".":
                    break
            log({"event": "message", "tls": c.tls, "sni": c.sni, "auth": c.auth, "from": mail_from, "rcpt": rcpts})
            c.send("250 2.0.0 Ok: queued\r\n")
        elif verb == "QUIT":
            c.send("221 2.0.0 Bye\r\n")
            c.sock.close()
            return
        elif verb in ("RSET", "NOOP"):
            c.send("250 2.0.0 Ok\r\n")
        else:
            c.send("502 5.5.2 Error: command not recognized\r\n")


def main():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    print(srv.getsockname()[1], flush=True)
    while True:
        sock, _ = srv.accept()
        sock.settimeout(30)
        threading.Thread(target=lambda: serve_safely(sock), daemon=True).start()


def serve_safely(sock):
    try:
        serve(sock)
    except (OSError, ssl.SSLError):
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass


main()
