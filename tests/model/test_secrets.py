"""Secret references ${env:NAME} / ${file:PATH} in the plant model: resolution, located errors, no disclosure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plantlink.errors import ConfigError
from plantlink.model import load_plant, parse_plant
from plantlink.model.secrets import MASK, SecretValue

SECRET = "s3cr3t-Pa55-Ω"


def plant(device: str, description: str = "x") -> str:
    """A plant file with OPC UA device ``ua`` whose extra lines are ``device`` (lines 5 on)."""
    return f"""enterprise: Acme
devices:
  ua:
    protocol: opcua
{device}
sites:
  - name: s
    timezone: UTC
    description: {description}
    areas:
      - name: a
        lines:
          - name: l
            machines:
              - name: m
                tags:
                  - {{name: t, source: {{device: ua, node: "ns=2;s=T"}}}}
"""


ENDPOINT = '    endpoint: "opc.tcp://127.0.0.1:4840/"\n'


def test_env_reference_resolves_into_a_secret_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PL_TEST_USER", "operator")
    monkeypatch.setenv("PL_TEST_PW", SECRET)
    p = parse_plant(plant(ENDPOINT + '    username: "${env:PL_TEST_USER}"\n    password: "${env:PL_TEST_PW}"'))
    cfg = p.devices["ua"].config
    assert cfg.username == "operator"
    assert cfg.password.get_secret_value() == SECRET
    assert SECRET not in repr(cfg) and SECRET not in str(cfg)
    dumped = json.dumps(cfg.model_dump(mode="json"))
    assert SECRET not in dumped and MASK in dumped


def test_file_reference_relative_to_the_plant_file_drops_one_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "ua.txt").write_text(SECRET + "\n\n", encoding="utf-8")
    (tmp_path / "abs.txt").write_text("by-absolute-path\n", encoding="utf-8")
    f = tmp_path / "plant.yaml"
    f.write_text(plant(ENDPOINT + '    username: "${file:' + str(tmp_path / "abs.txt") + '}"\n'
                       '    password: "${file:secrets/ua.txt}"'), encoding="utf-8")
    cfg = load_plant(f).devices["ua"].config
    assert cfg.password.get_secret_value() == SECRET + "\n"  # only one newline is removed
    assert cfg.username == "by-absolute-path"


def test_any_string_value_may_be_a_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PL_TEST_ENDPOINT", "opc.tcp://10.0.0.7:4840/")
    monkeypatch.setenv("PL_TEST_DESC", "from the environment")
    p = parse_plant(plant('    endpoint: "${env:PL_TEST_ENDPOINT}"', description='"${env:PL_TEST_DESC}"'))
    assert p.devices["ua"].config.endpoint == "opc.tcp://10.0.0.7:4840/"
    assert p.sites[0].description == "from the environment"


def test_missing_variable_is_located_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PL_TEST_MISSING", raising=False)
    with pytest.raises(ConfigError) as err:
        parse_plant(plant(ENDPOINT + '    username: op\n    password: "${env:PL_TEST_MISSING}"'), "p.yaml")
    [problem] = err.value.problems
    # line 7 (the password line), column 15 (where the value starts)
    assert (problem.file, problem.line, problem.column) == ("p.yaml", 7, 15)
    assert problem.path == "device ua password"
    assert "environment variable PL_TEST_MISSING is not set" in problem.message
    assert str(err.value).startswith("p.yaml:7:15: [device ua password] environment variable PL_TEST_MISSING")


def test_missing_file_is_located_and_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "pw"
    with pytest.raises(ConfigError) as err:
        parse_plant(plant(ENDPOINT + f'    username: op\n    password: "${{file:{missing}}}"'), "p.yaml")
    [problem] = err.value.problems
    assert (problem.line, problem.column, problem.path) == (7, 15, "device ua password")
    assert f"secret file not found: {missing}" in problem.message


def test_unreadable_file_and_bad_forms_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_plant(plant(ENDPOINT + f'    username: "${{file:{tmp_path}}}"\n    password: "pre-${{env:X}}"\n'
                                     '    private_key_password: "${env:}"'), "p.yaml")
    msgs = {p.line: p.message for p in err.value.problems}
    assert msgs[6].startswith(f"cannot read the secret file {tmp_path}:")  # a directory
    assert "must be the whole value" in msgs[7]
    assert "needs a variable name" in msgs[8]


def test_a_secret_in_a_wrongly_typed_field_is_not_disclosed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PL_TEST_PW", SECRET)
    cases = [
        ('    security_mode: "${env:PL_TEST_PW}"', MASK),  # the literal error quotes the input
        ('    timeout: "${env:PL_TEST_PW}"', MASK),  # the duration parser quotes the input
        ('    username: u\n    password: "${env:PL_TEST_PW}"\n    password: x', "duplicate key"),
        ('    password: "${env:PL_TEST_PW}"', "password needs a username"),
    ]
    texts = [(plant(ENDPOINT + extra), expected) for extra, expected in cases]
    texts.append((plant('    endpoint: "${env:PL_TEST_PW}"'), MASK))  # our own validator quotes the input
    for text, expected in texts:
        with pytest.raises(ConfigError) as err:
            parse_plant(text, "p.yaml")
        assert SECRET not in str(err.value), str(err.value)
        assert SECRET not in repr(err.value.problems)
        assert expected in str(err.value)


def test_secret_value_is_masked_but_equal() -> None:
    v = SecretValue(SECRET)
    assert v == SECRET and isinstance(v, str)
    assert repr(v) == repr(MASK) and SECRET not in repr([v, {"k": v}])


def test_text_without_references_is_untouched() -> None:
    p = parse_plant(plant(ENDPOINT, description='"costs ${5} per piece; $HOME"'))
    assert p.sites[0].description == "costs ${5} per piece; $HOME"
