"""The diff's rules beyond the case folders: secrets never shown, the digest, what ``was:`` may name."""

from __future__ import annotations

import json

import pytest

from plantlink.errors import ConfigError
from plantlink.model import parse_plant
from plantlink.model.diff import diff_plants, model_digest

MQTT = """
enterprise: Acme
devices:
  broker: {{protocol: mqtt, host: 127.0.0.1, port: 1883, username: u, password: {pw}}}
sites:
  - name: windsor
    timezone: America/Toronto
    areas:
      - name: a
        lines:
          - name: l
            machines:
              - name: m
                tags:
{tags}
"""
T1 = "                  - {name: t1, source: {device: broker, topic: a/t1}}"
T2 = "                  - {name: t2, source: {device: broker, topic: a/t2}}"


def plant(pw: str = "s3cret-one", tags: str = T1):
    return parse_plant(MQTT.format(pw=pw, tags=tags))


def test_a_changed_password_is_a_change_whose_values_are_masked() -> None:
    plan = diff_plants(plant(), plant(pw="s3cret-two"))
    text = json.dumps(plan.to_dict())
    assert "s3cret" not in text
    (change,) = plan.changes
    assert (change.kind, change.path, change.action) == ("device", "broker", "change")
    assert [(f.field, f.old, f.new) for f in change.fields] == [("password", "**********", "**********")]
    assert plan.devices == ("broker",)
    assert plan.digest_before != plan.digest_after


def test_the_digest_ignores_comments_layout_and_written_defaults() -> None:
    a = plant()
    b = parse_plant("# a comment\n" + MQTT.format(pw="s3cret-one", tags=T1).replace(
        "port: 1883", "port: 1883, keepalive: 30"))
    assert model_digest(a) == model_digest(b)
    assert diff_plants(a, b).empty
    assert model_digest(a) != model_digest(plant(tags=T1.replace("a/t1", "a/t9")))


def test_was_as_a_full_path_renames_across_machines_and_keeps_history() -> None:
    before = plant(tags=T1 + "\n" + T2)
    moved = T2 + "\n" + T1.replace("name: t1,", "name: t1b, was: windsor/a/l/m/t1,")
    plan = diff_plants(before, plant(tags=moved), lambda _: True)
    assert [(c.action, c.path, c.was) for c in plan.changes] == [("rename", "windsor/a/l/m/t1b", "windsor/a/l/m/t1")]
    assert plan.history_loss == []
    assert plan.renames == {"windsor/a/l/m/t1b": "windsor/a/l/m/t1"}


def test_was_naming_a_tag_still_in_the_model_is_no_rename() -> None:
    before = plant(tags=T1 + "\n" + T2)
    after = plant(tags=T1 + "\n" + T2 + "\n" + T2.replace("t2,", "t3, was: t1,").replace("a/t2", "a/t3"))
    plan = diff_plants(before, after, lambda _: True)
    assert [(c.action, c.path) for c in plan.changes] == [("add", "windsor/a/l/m/t3")]
    assert not plan.renames


def test_was_must_look_like_a_name_or_a_path() -> None:
    with pytest.raises(ConfigError, match="was"):
        plant(tags=T1.replace("name: t1,", "name: t1, was: ' bad',"))
