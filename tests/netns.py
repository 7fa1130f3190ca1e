"""Live tests use the lab's veth pair (rxfeed.lab.veth_pair): one end in a
namespace of the test's own, removed on exit whatever happens."""

from rxfeed.lab import veth_pair

__all__ = ["veth_pair"]
