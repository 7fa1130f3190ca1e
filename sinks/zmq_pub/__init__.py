"""ZeroMQ PUB fan-out of decoded ITCH records, one topic per symbol."""

from .sink import ZmqPubConfig, ZmqPubSink, decode_message

__all__ = ["ZmqPubConfig", "ZmqPubSink", "decode_message"]
