"""The ``tls:`` settings of every MQTT client in the plant model (model/tls.py, model/broker.py), table-driven
like the other model cases: each wrong setting is a ConfigError naming the file, the field, the file on disk and
what is expected; a key's password never shows (not in errors, reprs or logs). Certificates are made at test time
(tests/connectors/pki.py)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from plantlink.errors import ConfigError
from plantlink.model import load_plant
from plantlink.model.tls import TlsSettings, start_context
from tests.connectors.pki import KEY_PASSWORD, Pki, make_pki
from tests.plants import plant_yaml

DEVICE = "broker: {{protocol: mqtt, host: 127.0.0.1{device}}}"
TAG = "- name: m\n  tags:\n    - {name: t, source: {device: broker, topic: x/t}}\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def write(folder: Path, device: str = "", extra: str = "") -> Path:
    f = folder / "plant.yaml"
    f.write_text(plant_yaml(DEVICE.format(device=device), TAG) + extra, encoding="utf-8")
    return f


# (case, the device's extra settings, further sections; {p} is the Pki, {d} the plant file's folder) ->
# (the path of the problem, what its message says)
CASES: list[tuple[str, str, str, str, list[str]]] = [
    ("missing ca_file", ", tls: {{ca_file: missing.pem}}", "",
     "device broker tls.ca_file",
     ["ca_file '{d}/missing.pem' does not exist", "expected a PEM file of the CA certificate(s) that signed the "
                                                  "broker's certificate"]),
    ("ca_file a folder", ", tls: {{ca_file: {d}}}", "",
     "device broker tls.ca_file", ["ca_file '{d}' is not a file"]),
    ("ca_file not PEM", ", tls: {{ca_file: plant.yaml}}", "",
     "device broker tls", ["tls.ca_file '{d}/plant.yaml': no CA certificate in it"]),
    ("cert without key", ", tls: {{cert_file: {p.client_cert}}}", "",
     "device broker tls", ["tls.cert_file without tls.key_file: a client certificate needs both"]),
    ("key without cert", ", tls: {{key_file: {p.client_key}}}", "",
     "device broker tls", ["tls.key_file without tls.cert_file"]),
    ("key of another cert", ", tls: {{cert_file: {p.client_cert}, key_file: {p.server_key}}}", "",
     "device broker tls", ["tls.key_file '{p.server_key}' is not the private key of tls.cert_file"]),
    ("encrypted key, no password", ", tls: {{cert_file: {p.client_cert}, key_file: {p.client_key_encrypted}}}", "",
     "device broker tls", ["tls.key_file '{p.client_key_encrypted}' is encrypted and tls.key_password is missing"]),
    ("encrypted key, wrong password",
     ", tls: {{cert_file: {p.client_cert}, key_file: {p.client_key_encrypted}, key_password: not-it-at-all}}", "",
     "device broker tls", ["is encrypted and tls.key_password is wrong"]),
    ("key_file no key", ", tls: {{cert_file: {p.client_cert}, key_file: {p.ca}}}", "",
     "device broker tls", ["tls.key_file '{p.ca}' holds no private key in PEM"]),
    ("password without key", ", tls: {{key_password: abc}}", "",
     "device broker tls", ["tls.key_password without tls.key_file"]),
    ("ca_file with verify false", ", tls: {{ca_file: {p.ca}, verify: false}}", "",
     "device broker tls", ["tls.ca_file with tls.verify: false: the CA would never be used"]),
    ("unknown tls field", ", tls: {{cafile: {p.ca}}}", "",
     "device broker tls.cafile", ["unknown field 'cafile'"]),
    ("tls on mqtt:// publish", "", "publish: {{mqtt: 'mqtt://b.example', tls: {{ca_file: {p.ca}}}}}\n",
     "publish", ["tls: options for a TLS connection, but the broker 'mqtt://b.example' is plain MQTT: write "
                 "mqtts://host[:port]"]),
    ("tls on mqtt:// edges broker", "", "edges: {{broker: {{mqtt: 'mqtt://b.example', tls: {{verify: false}}}}}}\n",
     "edges.broker", ["is plain MQTT: write mqtts://"]),
    ("edge central with a missing key", "",
     "edge: {{name: e1, central: {{mqtt: 'mqtts://b.example', tls: {{cert_file: {p.client_cert}, "
     "key_file: nokey.pem}}}}}}\n",
     "edge.central.tls.key_file", ["key_file '{d}/nokey.pem' does not exist: expected a PEM file of the private key"]),
    ("another scheme", "", "publish: {{mqtt: 'ssl://b.example:8883'}}\n",
     "publish.mqtt", ["expected mqtt://host[:port] or, for TLS, mqtts://host[:port]"]),
]


@pytest.mark.parametrize(("device", "extra", "path", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_wrong_tls_setting_is_a_located_config_error(tmp_path: Path, pki: Pki, device: str, extra: str, path: str,
                                                       says: list[str]) -> None:
    f = write(tmp_path, device.format(p=pki, d=tmp_path), extra.format(p=pki, d=tmp_path))
    with pytest.raises(ConfigError) as err:
        load_plant(f)
    [problem] = err.value.problems
    assert problem.file == str(f) and problem.line is not None and problem.path == path, problem
    for text in says:
        assert text.format(p=pki, d=tmp_path) in problem.message, problem.message
    assert "not-it-at-all" not in str(err.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_says_so(tmp_path: Path, pki: Pki) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.ca.read_bytes())
    ca.chmod(0)
    with pytest.raises(ConfigError, match="cannot be read by this user"):
        load_plant(write(tmp_path, ", tls: {ca_file: ca.pem}"))


def test_good_settings_load_with_their_defaults(tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PL_KEY_PASSWORD", KEY_PASSWORD)
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_bytes(pki.ca.read_bytes())
    device = (f", tls: {{ca_file: certs/ca.pem, cert_file: {pki.client_cert}, key_file: {pki.client_key_encrypted}, "
              "key_password: '${env:PL_KEY_PASSWORD}', server_name: broker.example}")
    extra = ("publish: {mqtt: 'mqtts://b.example'}\n"
             "edges: {broker: {mqtt: 'mqtts://b.example:9883', tls: true}}\n")
    plant = load_plant(write(tmp_path, device, extra.replace("tls: true", "tls: {verify: false}")))
    cfg = plant.devices["broker"].config
    assert cfg.port == 8883 and cfg.tls.ca_file == str(tmp_path / "certs" / "ca.pem")  # relative to the plant file
    pub = plant.spec.publish
    assert (pub.port, pub.secure, pub.tls, pub.tls_settings) == (8883, True, None, TlsSettings())
    assert plant.spec.edges is not None and plant.spec.edges.broker.port == 9883
    # plain mqtt:// keeps 1883 and no TLS; a device's tls: true is TLS with the system's CAs on 8883
    plain = load_plant(write(tmp_path, ", tls: true", "publish: {mqtt: 'mqtt://b.example'}\n"))
    assert plain.devices["broker"].config.tls == TlsSettings() and plain.devices["broker"].config.port == 8883
    assert (plain.spec.publish.port, plain.spec.publish.tls_settings) == (1883, None)
    # the key's password shows nowhere: repr, str, JSON dump
    for shown in (repr(cfg), str(cfg), repr(cfg.tls), json.dumps(cfg.model_dump(mode="json"))):
        assert KEY_PASSWORD not in shown


def test_verify_false_is_warned_at_start_and_no_secret_is_logged(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert start_context(None, "x") is None
    tls = TlsSettings.model_validate({"cert_file": str(pki.client_cert), "key_file": str(pki.client_key_encrypted),
                                      "key_password": KEY_PASSWORD})
    assert start_context(tls, "publisher") is not None and not caplog.records  # verified: nothing to say
    start_context(TlsSettings(verify=False), "uns publisher")
    [record] = caplog.records
    assert record.levelname == "WARNING" and "uns publisher: TLS without certificate verification" in record.message
    assert KEY_PASSWORD not in caplog.text


def test_plantlink_check_warns_of_verify_false_at_its_line(tmp_path: Path) -> None:
    from plantlink.model.lint import model_warnings

    f = write(tmp_path, ", tls: {verify: false}", "publish:\n  mqtt: mqtts://b.example\n  tls:\n    verify: false\n"
                                                      "edges: {broker: {mqtt: 'mqtts://b.example'}}\n")
    lines = f.read_text().splitlines()
    found = {w.path: w for w in model_warnings(load_plant(f))}
    assert set(found) == {"device broker tls", "publish.tls.verify"}  # edges: verified, nothing to say
    assert found["publish.tls.verify"].line == lines.index("    verify: false") + 1
    assert found["device broker tls"].line == next(i for i, ln in enumerate(lines) if "verify: false}" in ln) + 1
    assert all("not checked" in w.message and "ca_file" in w.message for w in found.values())
