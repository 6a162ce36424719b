import pytest

from sfu.config import PRIVATE_NETWORKS, SfuConfig
from vcs.tiers import DEFAULT_TIERS, Ladder


def test_defaults():
    config = SfuConfig(public_url="http://x")
    assert config.vcs_share == 0.5
    assert [t.name for t in config.tiers] == ["720p", "360p", "180p", "audio"]
    assert config.tiers == DEFAULT_TIERS
    assert config.tier("audio").audio_only
    # a peer's candidates must be in private ranges unless the deployment says otherwise
    assert config.ice_allowed_networks == PRIVATE_NETWORKS == ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
    assert SfuConfig.from_environ({"VCS_SFU_ICE_ALLOW": ""}, public_url="http://x").ice_allowed_networks == PRIVATE_NETWORKS


def test_from_environ_reads_only_vcs_sfu_variables():
    env = {
        "VCS_SFU_NODE_ID": "n1",
        "VCS_SFU_SHARE": "0.4",
        "VCS_SFU_CAPACITY": "750",
        "VCS_SFU_TIERS": "360p:640x360@800,audio",
        "VCS_SFU_ICE_HOSTS": "127.0.0.1",
        "VCS_SFU_ICE_ALLOW": "127.0.0.0/8, 10.0.0.0/8",
        "VCS_SFU_KEYFRAME_MIN_INTERVAL": "0.25",
        "VCS_SFU_ADMISSION_WAIT": "5",
        "VCS_SFU_CERT_ROTATE": "3600",
        "UNRELATED": "1",
    }
    config = SfuConfig.from_environ(env, public_url="http://node:8090")
    assert config.node_id == "n1"
    assert config.public_url == "http://node:8090"
    assert config.vcs_share == 0.4
    assert config.capacity == 750
    assert [t.name for t in config.tiers] == ["360p", "audio"]
    assert config.ice_host_addresses == ("127.0.0.1",)
    assert config.ice_allowed_networks == ("127.0.0.0/8", "10.0.0.0/8")
    assert config.keyframe_min_interval_s == 0.25
    assert config.admission_wait_s == 5.0
    assert config.cert_rotate_s == 3600.0


@pytest.mark.parametrize(
    "env",
    [
        {"VCS_SFU_SHARE": "1.5"},
        {"VCS_SFU_SHARE": "half"},
        {"VCS_SFU_ROLE": "edge"},
        {"VCS_SFU_ICE_ALLOW": "nope"},
        {"VCS_SFU_CERT_ROTATE": "0"},
        {"VCS_SFU_CERT_ROTATE": str(30 * 24 * 3600)},
        {"VCS_SFU_MAX_HANDSHAKES": "0"},
        {"VCS_SFU_ADMISSION_WAIT": "-1"},
        {"VCS_SFU_FANOUT": "fast"},
        {"VCS_SFU_SRTP": "openssl"},
    ],
)
def test_from_environ_rejects_bad_values(env):
    with pytest.raises(ValueError):
        SfuConfig.from_environ(env, public_url="http://x")


def test_config_is_frozen():
    config = SfuConfig(public_url="http://x")
    with pytest.raises(AttributeError):
        config.capacity = 1  # type: ignore[misc]


def test_the_deployment_ladder_wins_over_the_variables():
    ladder = Ladder(vcs_share=0.8, audio_kbps=40)
    config = SfuConfig.from_environ({"VCS_SFU_SHARE": "0.4"}, public_url="http://x", ladder=ladder)
    assert config.ladder == ladder and (config.vcs_share, config.audio_kbps) == (0.8, 40)


def test_provinces_a_node_sits_near():
    assert SfuConfig.from_environ({"VCS_SFU_PROVINCES": "79, 1"}, public_url="http://x").provinces == ("01", "79")
    assert SfuConfig(public_url="http://x").provinces == ()  # anywhere
    with pytest.raises(ValueError, match="province code"):
        SfuConfig.from_environ({"VCS_SFU_PROVINCES": "hanoi"}, public_url="http://x")


def test_the_forwarding_loop_is_chosen_per_node():
    assert SfuConfig(public_url="http://x").fanout == "compiled"
    assert SfuConfig.from_environ({"VCS_SFU_FANOUT": "python"}, public_url="http://x").fanout == "python"
    assert SfuConfig(public_url="http://x").srtp == "compiled"
    assert SfuConfig.from_environ({"VCS_SFU_SRTP": "libsrtp"}, public_url="http://x").srtp == "libsrtp"
