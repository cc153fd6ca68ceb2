from pathlib import Path

import pytest

from pipeline.settings import ConfigError, Settings, deep_merge


def test_deep_merge_overrides_leaves_and_keeps_siblings() -> None:
    base = {"links": {"window_hours": 120, "other": 1}, "load": {"max_future_skew_hours": 24}}
    merged = deep_merge(base, {"links": {"window_hours": 48}})
    assert merged == {"links": {"window_hours": 48, "other": 1}, "load": {"max_future_skew_hours": 24}}
    assert base["links"]["window_hours"] == 120  # input untouched


def test_user_file_merges_over_packaged_defaults(tmp_path: Path) -> None:
    config = tmp_path / "goodhart.toml"
    config.write_text("[links]\nwindow_hours = 48\n[load]\nmax_future_skew_hours = 2\n")
    settings = Settings.from_file(config)
    assert settings.feature_variables["link_window_hours"] == 48
    assert settings.max_future_skew.total_seconds() == 2 * 3600
    assert settings.feature_variables["tiny_change_lines"] == 10  # default kept
    assert settings.default_prices.name == "prices.csv" and settings.default_prices.exists()


def test_detector_rule_override_changes_one_threshold_and_keeps_the_rule(tmp_path: Path) -> None:
    from flows import with_detector_defaults  # the detectors' defaults are merged at the edge, in flows.py

    defaults = with_detector_defaults(Settings()).detectors["rules"]
    default_rule = next(r for r in defaults if r["name"] == "prompt_loop")
    config = tmp_path / "goodhart.toml"
    config.write_text('[[detectors.rules]]\nname = "prompt_loop"\nlevel = "user_week"\nweight = 0.5\n')
    user = Settings.from_file(config)
    assert user.detectors == {"rules": [{"name": "prompt_loop", "level": "user_week", "weight": 0.5}]}  # as written
    rules = with_detector_defaults(user).detectors["rules"]
    loop = next(r for r in rules if r["name"] == "prompt_loop" and r["level"] == "user_week")
    assert loop["weight"] == 0.5
    assert loop["conditions"] == next(
        r for r in defaults if r["name"] == "prompt_loop" and r["level"] == "user_week"
    )["conditions"]
    assert len(rules) == len(defaults)
    assert default_rule["description"]
    assert with_detector_defaults(with_detector_defaults(user)).detectors == with_detector_defaults(user).detectors


@pytest.mark.parametrize(("text", "said"), [
    ("[levels.user_week.model]\nfeatures = []\n",
     "unknown setting levels (not in the packaged defaults; detector settings go under [detectors], e.g. [detectors.levels])"),
    ("[features]\ntiny_change_line = 5\n", "unknown setting features.tiny_change_line (not in the packaged defaults)"),
    ("[links]\nwindow_hour = 48\n[engine]\nthreads = 2\n",
     "unknown settings links.window_hour, engine.threads (not in the packaged defaults)"),
    ("[detectors.levels.user_week.modle]\nfeatures = []\n[detectors.polcy]\nagree_z = 1.0\n",
     "unknown settings detectors.levels.user_week.modle, detectors.polcy (not in the packaged defaults)"),
    ("[detectors.levels.user-week.model]\nfeatures = []\n", "unknown setting detectors.levels.user-week (not in the packaged defaults)"),
    ('[[detectors.rules]]\nname = "prompt_loop"\nweight = 0.5\n',
     "[detectors] rule 'prompt_loop' needs a level (level = \"user_week\" or \"session\"): it is defined at user_week and session"),
])
def test_a_misspelt_or_misplaced_setting_is_a_usage_error(tmp_path: Path, text: str, said: str) -> None:
    from flows import with_detector_defaults  # the pipeline's settings are checked on reading, the detectors' here

    config = tmp_path / "goodhart.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as raised:
        with_detector_defaults(Settings.from_file(config))
    assert str(raised.value) == said


def test_open_tables_take_any_key(tmp_path: Path) -> None:
    from flows import with_detector_defaults

    config = tmp_path / "goodhart.toml"
    config.write_text("[detectors.levels.user_week.policy]\nagree_z = 2.5\n"  # a level's own policy
                      "[detectors.levels.user_week.model.transforms]\ntokens_own_z = \"slog1p\"\n"
                      "[detectors.levels.session.iforest]\nmax_features = 0.8\n")
    detectors = with_detector_defaults(Settings.from_file(config)).detectors
    assert detectors["levels"]["user_week"]["policy"] == {"agree_z": 2.5}
    assert detectors["levels"]["session"]["iforest"]["max_features"] == 0.8
