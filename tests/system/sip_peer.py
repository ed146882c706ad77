"""A scriptable SIP endpoint on a raw UDP socket, for system tests that need to see or forge
exact bytes (SIPp cannot forge a response from a third address or read one header).
Python 3 standard library only. Every receive is bounded by a timeout."""

import hashlib
import re
import socket
import time

SDP = ("v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
       "m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def digest(user, password, nonce, uri, method="INVITE", nc="00000001"):
    """A SHA-256 digest Proxy-Authorization value (RFC 7616, qop=auth, realm "palisade")."""
    h = lambda text: hashlib.sha256(text.encode()).hexdigest()  # noqa: E731
    ha1 = h(f"{user}:palisade:{password}")
    ha2 = h(f"{method}:{uri}")
    response = h(f"{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}")
    return (f'Digest username="{user}", realm="palisade", nonce="{nonce}", uri="{uri}", response="{response}", '
            f'algorithm=SHA-256, cnonce="c0ffee", qop=auth, nc={nc}')


class Message:
    """A received SIP message: start line, header fields in order, body."""

    def __init__(self, data, source):
        self.raw = data
        self.source = source
        head, _, self.body = data.partition("\r\n\r\n")
        lines = head.split("\r\n")
        self.start = lines[0]
        self.headers = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                name, value = self.headers[-1]
                self.headers[-1] = (name, value + " " + line.strip())
            elif ":" in line:
                name, value = line.split(":", 1)
                self.headers.append((name.strip(), value.strip()))

    @property
    def is_request(self):
        return not self.start.startswith("SIP/2.0 ")

    @property
    def method(self):
        return self.start.split(" ", 1)[0] if self.is_request else None

    @property
    def status(self):
        return int(self.start.split(" ")[1]) if not self.is_request else None

    def values(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def value(self, name):
        found = self.values(name)
        return found[0] if found else None

    def has(self, name):
        return bool(self.values(name))

    def branch(self):
        match = re.search(r";branch=([^;,\s]+)", self.value("Via") or self.value("v") or "")
        return match.group(1) if match else None

    def to_tag(self):
        match = re.search(r";tag=([^;\s]+)", self.value("To") or "")
        return match.group(1) if match else None


class UdpPeer:
    def __init__(self, ip, port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, port))
        self.ip, self.port = self.sock.getsockname()

    def close(self):
        self.sock.close()

    def send(self, text, target):
        self.sock.sendto(text.encode(), target)

    def recv(self, timeout_s=2.0, want=None):
        """The next message (optionally the next one for which want(message) is true), or None."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, source = self.sock.recvfrom(65535)
            except socket.timeout:
                return None
            message = Message(data.decode(errors="replace"), source)
            if want is None or want(message):
                return message

    def drain(self, quiet_s=0.3):
        """Every message that arrives until the line has been quiet for `quiet_s`."""
        out = []
        while True:
            m = self.recv(quiet_s)
            if m is None:
                return out
            out.append(m)

    # --- building messages
    def invite(self, target, call_id, user="1000", branch=None, extra="", sdp=True, cseq=1):
        host, port = target
        branch = branch or f"z9hG4bK-{call_id}-{cseq}"
        body = SDP.format(ip=self.ip, port=40000) if sdp else ""
        return (f"INVITE sip:{user}@{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {self.ip}:{self.port};branch={branch};rport\r\n"
                f"From: \"Caller\" <sip:caller@{self.ip}:{self.port}>;tag=from-{call_id}\r\n"
                f"To: <sip:{user}@{host}:{port}>\r\n"
                f"Call-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\n"
                f"Contact: <sip:caller@{self.ip}:{self.port}>\r\nMax-Forwards: 70\r\n{extra}"
                + ("Content-Type: application/sdp\r\n" if body else "")
                + f"Content-Length: {len(body)}\r\n\r\n{body}")

    def cancel(self, target, call_id, user="1000", cseq=1):
        host, port = target
        return (f"CANCEL sip:{user}@{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {self.ip}:{self.port};branch=z9hG4bK-{call_id}-{cseq};rport\r\n"
                f"From: \"Caller\" <sip:caller@{self.ip}:{self.port}>;tag=from-{call_id}\r\n"
                f"To: <sip:{user}@{host}:{port}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} CANCEL\r\n"
                f"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")

    def ack_for(self, response, request_uri):
        """The ACK a UAC sends for `response` (a 2xx or not), addressed to `request_uri`."""
        cseq = response.value("CSeq").split()[0]
        return (f"ACK {request_uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {self.ip}:{self.port};branch=z9hG4bK-ack-{cseq}-{time.monotonic_ns()};rport\r\n"
                f"From: {response.value('From')}\r\nTo: {response.value('To')}\r\n"
                f"Call-ID: {response.value('Call-ID')}\r\nCSeq: {cseq} ACK\r\nMax-Forwards: 70\r\n"
                f"Content-Length: 0\r\n\r\n")

    def response_to(self, request, status, reason, to_tag=None, extra="", sdp=False):
        """A response echoing the request's Via, From, To (with `to_tag`), Call-ID and CSeq."""
        lines = [f"SIP/2.0 {status} {reason}"]
        for name, value in request.headers:
            lname = name.lower()
            if lname in ("via", "v", "from", "f", "call-id", "i", "cseq"):
                lines.append(f"{name}: {value}")
            elif lname in ("to", "t"):
                if to_tag and ";tag=" not in value:
                    value += f";tag={to_tag}"
                lines.append(f"To: {value}")
        lines.append(f"Contact: <sip:peer@{self.ip}:{self.port}>")
        body = SDP.format(ip=self.ip, port=42000) if sdp else ""
        if body:
            lines.append("Content-Type: application/sdp")
        text = "\r\n".join(lines) + "\r\n" + extra + f"Content-Length: {len(body)}\r\n\r\n{body}"
        return text
