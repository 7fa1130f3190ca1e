"""Configuration: frozen, unknown fields rejected, TOML and environment, errors name the field."""

from __future__ import annotations

import pytest

from rxfeed import ConfigError, Pipeline, RunConfig
from rxfeed import config as cfg


def test_wrong_field_name_and_value_are_named():
    with pytest.raises(ConfigError, match=r"backend.pcap_replay.sped: Extra inputs"):
        Pipeline("pcap_replay", "itch50", backend_config={"path": "x", "sped": 2})
    with pytest.raises(ConfigError, match=r"backend.pcap_replay.speed: Input should be greater"):
        Pipeline("pcap_replay", "itch50", backend_config={"path": "x", "speed": -1})
    with pytest.raises(ConfigError, match=r"run.burst"):
        Pipeline("pcap_replay", "itch50", backend_config={"path": "x"}, run={"burst": 0})
    with pytest.raises(ConfigError, match=r"filters.*bad destination"):
        Pipeline("pcap_replay", "itch50", backend_config={"path": "x", "filters": ["1.2.3:99999"]})
    with pytest.raises(KeyError, match="no backend named 'nic0'"):
        Pipeline("nic0", "itch50")


def test_frozen():
    rc = RunConfig()
    with pytest.raises(Exception):
        rc.burst = 5


def test_toml_and_env(tmp_path):
    p = tmp_path / "rx.toml"
    p.write_text('[run]\nburst = 8\n[backend.pcap_replay]\nspeed = 2.0\n')
    tree = cfg.load(p, environ={"RXFEED_RUN__BURST": "64", "RXFEED_BACKEND__PCAP_REPLAY__LOOPS": "3",
                                "RXFEED_UNRELATED": "x"})
    assert tree == {"run": {"burst": "64"}, "backend": {"pcap_replay": {"speed": 2.0, "loops": "3"}}}
    assert cfg.validate(RunConfig, tree["run"], "run").burst == 64
    p.write_text("[nonsense]\n")
    with pytest.raises(ConfigError, match="unknown top-level"):
        cfg.load(p, environ={})
    p.write_text("[run\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        cfg.load(p, environ={})


def test_cpu_pinning_checked(day_dir):
    with pytest.raises(ConfigError, match="run.cpu"):
        Pipeline("pcap_replay", "itch50", backend_config={"path": str(day_dir / "day.pcap")}, run={"cpu": 4096}).run()
    s = Pipeline("pcap_replay", "itch50", backend_config={"path": str(day_dir / "day.pcap")}, run={"cpu": 0}).run()
    assert s.messages == 20_000


@pytest.mark.parametrize("text,message", [
    ("run = 5\n", r"\[run\] must be a table \(got 5\)"),
    ('backend = "pcap_replay"\n', r"\[backend\] must hold one table per backend"),
    ("[backend]\npcap_replay = 5\n", r"\[backend\.pcap_replay\] must be a table \(got 5\)"),
    ("decoder = [1]\n", r"\[decoder\] must hold one table per decoder"),
    ("[decoder]\nitch50 = true\n", r"\[decoder\.itch50\] must be a table \(got True\)"),
])
def test_config_tables_must_be_tables(tmp_path, text, message):
    p = tmp_path / "rx.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        cfg.load(p, environ={})


def test_environment_cannot_descend_into_a_value(tmp_path):
    p = tmp_path / "rx.toml"
    p.write_text("[run]\nburst = 8\n")
    with pytest.raises(ConfigError, match=r"RXFEED_RUN__BURST__X: run\.burst is not a table"):
        cfg.load(p, environ={"RXFEED_RUN__BURST__X": "1"})


def test_unreadable_config_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"nothere\.toml: No such file"):
        cfg.load(tmp_path / "nothere.toml", environ={})


def test_initial_sequence_fits_64_bits(day_dir):
    with pytest.raises(ConfigError, match=r"decoder\.itch50\.initial_sequence: Input should be less than or equal"):
        Pipeline("pcap_replay", "itch50", backend_config={"path": str(day_dir / "day.pcap")},
                 decoder_config={"initial_sequence": 1 << 64})
    assert Pipeline("pcap_replay", "itch50", backend_config={"path": str(day_dir / "day.pcap")},
                    decoder_config={"initial_sequence": (1 << 64) - 1}).run().messages == 0
