from pathlib import Path

from pipeline.settings import Settings, deep_merge


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
