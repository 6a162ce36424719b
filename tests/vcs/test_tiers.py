"""The one ladder and its fit: parsing, costs, where a link starts."""

import pytest

from vcs.config import ConfigError, Settings
from vcs.tiers import DEFAULT_LADDER, DEFAULT_TIERS, NO_TIER, Ladder, TierSpec, parse_tiers


def test_default_ladder():
    assert DEFAULT_LADDER.names == ("720p", "360p", "180p", "audio")
    assert DEFAULT_LADDER.tiers == DEFAULT_TIERS
    assert (DEFAULT_LADDER.vcs_share, DEFAULT_LADDER.audio_kbps) == (0.5, 64)
    assert DEFAULT_LADDER.tier("audio").audio_only
    # a tier costs its video plus the audio budget
    assert [DEFAULT_LADDER.cost_kbps(t) for t in DEFAULT_LADDER.tiers] == [2564, 864, 314, 64]


def test_parse_tiers_sorts_by_bitrate():
    tiers = parse_tiers("low:320x180@250, audio, hd:1280x720@2500")
    assert [t.name for t in tiers] == ["hd", "low", "audio"]
    assert tiers[0] == TierSpec("hd", 1280, 720, 2500)


@pytest.mark.parametrize("text", ["", "x", "a:1x1@5", "a:641x360@500", "a:640x360@500,a:320x180@200", "hd:640x360@99999"])
def test_parse_tiers_rejects(text):
    with pytest.raises(ValueError):
        parse_tiers(text)


@pytest.mark.parametrize(
    ("downlink", "max_tier", "share", "expected"),
    [
        (200_000, "720p", 0.5, "720p"),  # government fibre
        (5_128, "720p", 0.5, "720p"),  # exactly 2,564 fits
        (5_127, "720p", 0.5, "360p"),
        (10_000, "360p", 0.5, "360p"),  # capped by the meeting's profile
        (1_728, "720p", 0.5, "360p"),
        (1_727, "720p", 0.5, "180p"),
        (2_000, "720p", 0.5, "360p"),  # satellite
        (628, "720p", 0.5, "180p"),
        (627, "720p", 0.5, "audio"),
        (499, "720p", 0.5, "audio"),  # 64 fits the share
        (100, "720p", 0.5, "audio"),  # only 50 reserved, but audio fits the link: given anyway
        (64, "720p", 0.5, "audio"),
        (63, "720p", 0.5, NO_TIER),
        (200_000, "audio", 0.5, "audio"),
        (2_564, "720p", 1.0, "720p"),
        (2_500, "720p", 0.2, "180p"),
    ],
)
def test_where_a_link_starts(downlink, max_tier, share, expected):
    assert Ladder(vcs_share=share).choose(downlink, max_tier=max_tier) == expected


def test_beyond_the_share_is_marked():
    assert DEFAULT_LADDER.start(499, max_tier="720p").within_share
    assert not DEFAULT_LADDER.start(100).within_share
    assert DEFAULT_LADDER.start(63).tier is None


def test_a_custom_ladder_in_any_order_with_its_own_audio_budget():
    ladder = Ladder(parse_tiers("audio,1080p:1920x1080@4500,540p:960x540@1200"), audio_kbps=32)
    assert ladder.choose(9_064, max_tier="1080p") == "1080p"
    assert ladder.choose(9_063, max_tier="1080p") == "540p"


def test_unknown_max_tier_is_refused():
    with pytest.raises(ValueError, match="not in the ladder"):
        DEFAULT_LADDER.choose(1000, max_tier="4k")


@pytest.mark.parametrize(("changes", "match"), [({"vcs_share": 0}, "vcs_share"), ({"vcs_share": 1.5}, "vcs_share"), ({"tiers": ()}, "empty")])
def test_bad_ladders_are_refused(changes, match):
    with pytest.raises(ValueError, match=match):
        Ladder(**changes)


def test_settings_read_the_ladder_from_the_sfu_variables():
    settings = Settings.from_environ({"VCS_SFU_TIERS": "360p:640x360@800,audio", "VCS_SFU_SHARE": "0.8", "VCS_SFU_AUDIO_KBPS": "40"})
    assert settings.ladder == Ladder(parse_tiers("360p:640x360@800,audio"), 0.8, 40)
    assert Settings.from_environ({}).ladder == DEFAULT_LADDER


@pytest.mark.parametrize("env", [{"VCS_SFU_SHARE": "half"}, {"VCS_SFU_SHARE": "2"}, {"VCS_SFU_TIERS": "x"}, {"VCS_SFU_AUDIO_KBPS": "-1"}])
def test_settings_refuse_a_bad_ladder_naming_it(env):
    with pytest.raises(ConfigError):
        Settings.from_environ(env)
