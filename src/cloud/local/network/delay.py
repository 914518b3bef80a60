#!/usr/bin/env python3
"""Holds every packet of one netfilter queue for a fixed delay, then lets it go.

The local cloud's `fault slow --delay` (its kernel has no netem): nftables marks the
packets of a slow link, an iptables NFQUEUE rule hands the marked ones to queue N,
and this program accepts each DELAY_MS after it arrived, in order. Loss is nftables'
own (numgen). Usage: delay.py QUEUE DELAY_MS

It speaks nfnetlink_queue over a raw netlink socket (Python's standard library:
Node.js cannot open one), copies packet metadata only, and exits on SIGTERM. While
it does not run, the rule's --queue-bypass lets packets through undelayed.
"""
import collections
import os
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2


def attr(kind, payload):
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def message(kind, flags, queue, attrs, seq=0):
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + attrs
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq, 0) + body


def messages(data):
    """(type, payload after the netlink header) for each netlink message in a datagram."""
    offset = 0
    while offset + 16 <= len(data):
        length, kind, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, offset)
        if length < 16:
            return
        yield kind, data[offset + 16 : offset + length]
        offset += (length + 3) & ~3


def attrs(payload):
    offset = 4  # past the nfgenmsg header
    while offset + 4 <= len(payload):
        length, kind = struct.unpack_from("=HH", payload, offset)
        if length < 4:
            return
        yield kind & 0x7FFF, payload[offset + 4 : offset + length]
        offset += (length + 3) & ~3


def configure(sock, queue, body, held, delay):
    """Binds the queue with its settings in one message and waits for the kernel's
    answer. Packets can reach the socket before that answer (the rule queues to it as
    soon as it is bound): they are held like any other, not taken for the answer and
    left without a verdict."""
    sock.send(message(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, queue, body, 1))
    while True:
        data = sock.recv(262144)
        answered = False
        for kind, payload in messages(data):
            if kind == NLMSG_ERROR:
                (error,) = struct.unpack_from("=i", payload, 0)
                if error != 0:
                    raise OSError(-error, f"nfnetlink_queue refused the configuration (queue {queue})")
                answered = True
            else:
                hold(kind, payload, time.monotonic() + delay, held)
        if answered:
            return


PACKET_KIND = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET


def hold(kind, payload, until, held):
    """Holds a queued packet (its id) until `until`."""
    if kind != PACKET_KIND:
        return
    for akind, value in attrs(payload):
        if akind == NFQA_PACKET_HDR:
            held.append((until, struct.unpack_from("!I", value)[0]))


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: delay.py QUEUE DELAY_MS")
    queue, delay = int(sys.argv[1]), int(sys.argv[2]) / 1000.0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, 33, 16 * 1024 * 1024)  # SO_RCVBUFFORCE
    sock.bind((0, 0))
    held = collections.deque()
    # Bound, copying packet metadata only, with a long queue: one message, so no packet
    # is queued to this socket before its copy mode is set.
    configure(
        sock,
        queue,
        attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, socket.AF_INET))
        + attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))
        + attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", 65536)),
        held,
        delay,
    )
    # One write, then stdout is done with: whoever waits for it may close the pipe.
    os.write(1, f"delay.py: queue {queue}, {int(delay * 1000)} ms\n".encode())
    os.close(1)
    while True:
        now = time.monotonic()
        timeout = max(0.0, held[0][0] - now) if held else None
        readable, _, _ = select.select([sock], [], [], timeout)
        if readable:
            try:
                data = sock.recv(262144)
            except OSError:  # ENOBUFS: the kernel dropped some (a lossier link, not a stop)
                data = b""
            arrived = time.monotonic()
            for kind, payload in messages(data):
                hold(kind, payload, arrived + delay, held)
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, packet_id = held.popleft()
            verdict = attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id))
            sock.send(message(NFQNL_MSG_VERDICT, NLM_F_REQUEST, queue, verdict))


if __name__ == "__main__":
    main()
