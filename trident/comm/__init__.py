"""Transports and connections: byte streams (tcp, inproc), packets, batching, handshake.

Addresses are URLs: ``tcp://host:port`` and ``inproc://name``. `connect` and `listen`
pick the transport; `Connection` reads and writes packets of messages over any byte
stream; `BatchedSender` coalesces outgoing messages per peer; `handshake` authenticates
peers before any pickled data is accepted.
"""
