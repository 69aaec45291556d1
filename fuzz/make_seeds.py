#!/usr/bin/env python3
"""Writes the hand-made seeds under fuzz/seeds/<target>/ (run from fuzz/).

The seeds are committed; this script documents how the binary ones were
made. Regression seeds (inputs of bugs the fuzzing found) are committed
as they were found and are not written here.
"""
import os
import struct

def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF

def put(target, name, data):
    os.makedirs(f"seeds/{target}", exist_ok=True)
    with open(f"seeds/{target}/{name}", "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

# smtp_server: flags byte, then indices into the target's ALPHABET.
EHLO, MAIL, RCPT, DENY, DATA, BDAT, LAST, RSET, QUIT = 0, 2, 4, 5, 6, 7, 8, 9, 14
CRLF, LF, EOD, SUBJ, SIZE, SP, N64 = 24, 25, 28, 42, 15, 30, 39
put("smtp_server", "mail_transaction", bytes([0, EHLO, MAIL, CRLF, RCPT, CRLF, DATA, CRLF, SUBJ, EOD, QUIT, CRLF]))
put("smtp_server", "bdat_last", bytes([1, EHLO, MAIL, CRLF, RCPT, CRLF, BDAT, N64, LAST, CRLF, 0xE0, ord("x"), QUIT, CRLF]))
put("smtp_server", "pipelined_split_reads", bytes([4, EHLO, 0xF0, MAIL, SIZE, N64, CRLF, RCPT, 0xF1, CRLF, DENY, CRLF, DATA, CRLF, RSET, CRLF]))
# Appended words: STARTTLS, then SMTP AUTH's.
STARTTLS, AUTH_PLAIN, AUTH_LOGIN, B64_PLAIN, B64_JANE, B64_SECRET, STAR, MAIL_AUTH = 43, 44, 45, 46, 47, 48, 49, 51
put("smtp_server", "auth_inside_starttls", bytes([192, EHLO, AUTH_PLAIN, SP, B64_PLAIN, CRLF, STARTTLS, EHLO, AUTH_LOGIN, CRLF, B64_JANE, CRLF, B64_SECRET, CRLF, MAIL, MAIL_AUTH, 0xE0, ord("j"), CRLF, RCPT, CRLF, DATA, CRLF, SUBJ, EOD, AUTH_PLAIN, CRLF, STAR, CRLF, QUIT, CRLF]))
put("smtp_server", "bare_lf_and_limit", bytes([9, EHLO, MAIL, LF, RCPT, LF, DATA, LF, SUBJ, SUBJ, SUBJ, SUBJ, SUBJ, LF, 27, LF]))

# smtp_reply: flags byte (limits, read size), then the wire.
put("smtp_reply", "ehlo_and_rejection", b"\x0a220 mx.example ESMTP\r\n250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10240000\r\n550 5.1.1 <x@y>: Recipient address rejected\r\n")
put("smtp_reply", "garbage_continuation", b"\x01hello\r\n25x\x01\r\n250-\xffok\n250 done\r\n421\r\n")
put("smtp_reply", "endless_reply", b"\x00" + b"250-more\r\n" * 40)
put("smtp_reply", "long_line", b"\x05550-" + b"x" * 3000 + b"\r\n550 5.7.1 end\r\n")

# dns_reply: flags byte, then a reply the harness splices the question into.
def rr(owner, rtype, rdata, cls=1, ttl=300):
    return owner + struct.pack(">HHIH", rtype, cls, ttl, len(rdata)) + rdata
Q = b"\xc0\x0c"  # pointer to the question's name
def name(*labels, end=b"\x00"):
    return b"".join(bytes([len(l)]) + l for l in labels) + end
def header(rcode=0, an=0, flags=0x81):
    return struct.pack(">HBBHHHH", 0, flags, 0x80 | rcode, 1, an, 0, 0)
put("dns_reply", "mx_answer", b"\x00" + header(an=2) + rr(Q, 15, struct.pack(">H", 10) + name(b"mx", end=Q)) + rr(Q, 1, bytes([192, 0, 2, 25])))
put("dns_reply", "a_and_aaaa", b"\x01" + header(an=2) + rr(Q, 1, bytes([192, 0, 2, 1])) + rr(Q, 28, bytes.fromhex("20010db8000000000000000000000001")))
put("dns_reply", "cname_to_itself", b"\x00" + header(an=1) + rr(Q, 5, Q))
put("dns_reply", "pointer_loop", b"\x00" + header(an=1) + rr(b"\xc0\x1d", 15, b"\x00\x0a\xc0\x1d"))
put("dns_reply", "nxdomain", b"\x00" + header(rcode=3))
put("dns_reply", "truncated_udp", b"\x00" + header(an=1, flags=0x83) + rr(Q, 15, b"\x00"))
put("dns_reply", "null_mx", b"\x00" + header(an=1) + rr(Q, 15, b"\x00\x00\x00"))

# queue_record / queue_segment: records framed as storage/src/record.rs
# says, header CRC seeded with salt 0.
def u64(v): return struct.pack("<Q", v)
def s(b): return u64(len(b)) + b
def record(kind, qid, payload, salt=0):
    h = b"\xa7SLr" + bytes([kind, len(qid)]) + b"\x00\x00" + u64(len(payload)) + struct.pack("<I", crc32c(payload)) + qid.ljust(20, b"\x00")
    return h + struct.pack("<I", crc32c(h, salt)) + payload
def message(qid):
    env = s(b"a@b.example") + struct.pack("<I", 1) + s(b"c@d.example") + b"\x00" + b"\x00" + b"\x00" + b"\x00" + b"\x00" + b"\x00" + b"\x00"
    client = b"\x01" + s(b"client.example") + b"\x04" + bytes([192, 0, 2, 1]) + struct.pack("<H", 25) + b"\x01" + s(b"helo.example") + b"\x01"
    return record(1, qid, u64(1_700_000_000_000_000) + env + client + s(b"Subject: hi\r\n\r\nbody\r\n"))
msg = message(b"4Xyz0z0")
done = record(3, b"4Xyz0z0", b"")
rcpt = record(2, b"4Xyz0z0", struct.pack("<I", 0) + b"\x02" + s(b"4.4.1 connection refused") + u64(5))
void = record(9, b"VOID", u64(3) + u64(40))
put("queue_record", "message", b"\x00" + msg)
put("queue_record", "rcpt_deferred", b"\x00" + rcpt)
put("queue_record", "void", b"\x00" + void)
put("queue_record", "length_field_huge_resealed", b"\x01" + msg[:8] + u64(2**64 - 1) + msg[16:])
put("queue_record", "recipient_count_huge_resealed", b"\x01" + msg[:44 + 8 + 19] + b"\xff\xff\xff\xff" + msg[44 + 8 + 23:])
put("queue_segment", "clean", b"\x01" + void + msg + rcpt + done + b"\x00" * 64)
damaged = bytearray(msg); damaged[60] ^= 0x10
put("queue_segment", "damaged_middle", b"\x01" + bytes(damaged) + rcpt + done)
put("queue_segment", "torn_tail", b"\x01" + msg + rcpt[:30] + b"\x00" * 100)
put("queue_segment", "record_in_content", b"\x01" + record(1, b"4Xyz0z1", message(b"4Xyz0z2")[:44] + b"x" * 8) + done)

# main.cf and master.cf: text.
put("main_cf", "typical", """# a typical main.cf
myhostname = mx.example.com
mydomain = example.com
myorigin = $mydomain
mydestination = $myhostname, localhost.$mydomain, ${mydomain}
mynetworks = 127.0.0.0/8 [::1]/128
smtpd_relay_restrictions = permit_mynetworks,
    reject_unauth_destination
message_size_limit = 10240000
smtpd_banner = $myhostname ESMTP ${{$mail_name} == {Postfix}?{Postfix}:{$mail_name}}
queue_directory = /var/spool/sluice
""")
put("main_cf", "syntax_errors", "  leading = continuation\n= no name\nname without equals\nx = ${unclosed\ny = $(\nz = ${a?{b}:{c}}trailing}\n")
put("main_cf", "nesting_loop", "a = $b\nb = $a\nc = ${c?{$c}}\n")
put("master_cf", "postfix_default", """# service type  private unpriv  chroot  wakeup  maxproc command + args
smtp      inet  n       -       y       -       -       smtpd
submission inet n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
  -o { smtpd_tls_security_level = encrypt }
  -o smtpd_sasl_auth_enable=yes
127.0.0.1:2525 inet n - n - 10 smtpd -o smtpd_banner=hi
[::1]:submission inet n - n - - smtpd
pickup    unix  n       -       y       60      1       pickup
cleanup   unix  n       -       y       -       0       cleanup
qmgr      unix  n       -       n       300?    1       qmgr
""")
put("master_cf", "syntax_errors", "smtp inet n - y - - smtpd -o\nsmtp inet n - n - - smtpd -o { unbalanced\nx bogus n - n - - cmd\ny inet q - n - - smtpd\n")
