"""The wire protocol: typed messages, their msgpack encoding, framing and user-data serialization.

Nothing in this package does I/O. `messages` declares every message that crosses a
connection; `registry` turns those declarations into fast, validating encoders and
decoders; `wire` packs batches of messages into frames; `serialize` turns user objects
into `Serialized` payloads (pickle protocol 5 with out-of-band buffers).
"""
