"""One registry for every plugin kind: the built-ins come from entry points, an unknown name is a PluginError
naming the group, the name asked for and the names available."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plantlink import plugins
from plantlink.bus import InProcBus, open_bus
from plantlink.errors import PluginError
from plantlink.model.notify import Notifications, Target
from plantlink.notify import DeliveryError, EmailChannel, Senders, WebhookChannel
from plantlink.runtime import Runtime
from tests.alarms.plants import plant

BUILT_INS = {
    plugins.CONNECTORS: ["logix", "modbus", "mqtt", "opcua", "s7"],
    plugins.HISTORIANS: ["clickhouse", "duckdb"],
    plugins.BUSES: ["inproc"],
    plugins.NOTIFIERS: ["email", "webhook"],
}


@pytest.mark.parametrize("group", plugins.GROUPS)
def test_built_ins_are_entry_points(group: str) -> None:
    from importlib.metadata import entry_points

    assert sorted(ep.name for ep in entry_points(group=group)) == BUILT_INS[group]
    assert plugins.names(group) == BUILT_INS[group]


def test_built_ins_load_to_their_objects() -> None:
    assert plugins.load(plugins.BUSES, "inproc") is InProcBus
    assert plugins.load(plugins.NOTIFIERS, "email") is EmailChannel
    assert plugins.load(plugins.NOTIFIERS, "webhook") is WebhookChannel
    assert isinstance(open_bus("inproc"), InProcBus)


def test_connector_plugins_name_their_class_and_import_it_when_it_is_first_used() -> None:
    from plantlink.connectors.base import Connector
    from plantlink.connectors.modbus.client import ModbusConnector
    from plantlink.connectors.opcua.client import OpcUaConnector
    from plantlink.connectors.plugin import ConnectorPlugin

    modbus, opcua = (plugins.load(plugins.CONNECTORS, name) for name in ("modbus", "opcua"))
    assert modbus.connector is ModbusConnector and opcua.connector is OpcUaConnector
    import plantlink.connectors.modbus as package

    assert package.ModbusConnector is ModbusConnector  # the package still exports it
    given = ConnectorPlugin("x", modbus.device_model, modbus.source_model, ModbusConnector)
    assert given.connector is ModbusConnector and issubclass(given.connector, Connector)
    with pytest.raises(ValueError, match=r"'package\.module:Class'"):
        ConnectorPlugin("x", modbus.device_model, modbus.source_model, "plantlink.connectors.modbus.client")


@pytest.mark.parametrize(("group", "kind"), [(plugins.CONNECTORS, "connector"), (plugins.HISTORIANS, "historian"),
                                             (plugins.BUSES, "bus"), (plugins.NOTIFIERS, "notifier")])
def test_unknown_name_names_group_name_and_known(group: str, kind: str) -> None:
    with pytest.raises(PluginError) as err:
        plugins.load(group, "nosuch")
    msg = str(err.value)
    assert f"unknown {kind} plugin 'nosuch'" in msg and group in msg
    assert f"(known: {', '.join(BUILT_INS[group])})" in msg


def test_a_plugin_that_fails_to_import_is_not_a_typo() -> None:
    from importlib.metadata import EntryPoint

    plugins._entry_points("plantlink.tests")["broken"] = EntryPoint("broken", "plantlink.nosuchmodule:x",
                                                                    "plantlink.tests")
    with pytest.raises(PluginError, match=r"plugin 'broken' of plantlink.tests failed to load: No module"):
        plugins.load("plantlink.tests", "broken")


def test_runtime_finds_its_bus_by_name(tmp_path: Path) -> None:
    assert isinstance(Runtime(plant(), tmp_path).bus, InProcBus)
    with pytest.raises(PluginError, match=r"unknown bus plugin 'mqtt' \(known: inproc\) in entry-point group"):
        Runtime(plant(), tmp_path, bus="mqtt")


def test_a_target_of_an_unknown_notifier_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"targets.pager: unknown notifier plugin 'sms' \(known: email, webhook\)"):
        Notifications.model_validate({"targets": {"pager": {"notifier": "sms"}}})
    with pytest.raises(ValueError, match="exactly one"):
        Notifications.model_validate({"targets": {"a": {"notifier": "webhook", "webhook": "http://x/"}}})


async def test_senders_deliver_through_the_channel_registered_for_a_kind() -> None:
    got: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    class Sms:
        def __init__(self, cfg: Notifications):
            self.cfg = cfg

        async def send(self, target: Target, n: dict[str, Any]) -> None:
            got.append(("sms", target.options, n))

        async def close(self) -> None:
            got.append(("closed", {}, {}))

    plugins.register(plugins.NOTIFIERS, "sms-test", Sms)
    try:
        cfg = Notifications.model_validate({"targets": {"p": {"notifier": "sms-test", "options": {"to": "+1"}}}})
        senders = Senders(cfg)
        await senders.send(cfg.targets["p"], {"key": "k"})
        await senders.close()
    finally:
        plugins._loaded.pop((plugins.NOTIFIERS, "sms-test"))
        plugins._entry_points(plugins.NOTIFIERS).pop("sms-test")
    assert got == [("sms", {"to": "+1"}, {"key": "k"}), ("closed", {}, {})]
    with pytest.raises(DeliveryError, match="unknown notifier plugin 'sms-test'"):
        await Senders(cfg).send(cfg.targets["p"], {"key": "k"})


async def test_a_built_in_channel_named_by_a_target_without_its_address_is_a_delivery_error() -> None:
    cfg = Notifications.model_validate({"targets": {"w": {"notifier": "webhook"}}})
    with pytest.raises(DeliveryError, match="no webhook URL"):
        await Senders(cfg).send(cfg.targets["w"], {"key": "k"})
