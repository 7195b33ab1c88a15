"""``parse_node_id`` (no asyncua) accepts and refuses exactly what ``asyncua.ua.NodeId.from_string`` does, and
reads the same identifier, kind, namespace, namespace URI and server index: over a table of cases and over
generated strings built from the parts a node id is made of (bounded: a fixed number of examples)."""

from __future__ import annotations

import pytest
from asyncua import ua
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantlink.connectors.opcua.config import OpcUaPoint
from plantlink.connectors.opcua.nodeid import parse_node_id

KINDS = {ua.NodeIdType.TwoByte: "i", ua.NodeIdType.FourByte: "i", ua.NodeIdType.Numeric: "i",
         ua.NodeIdType.String: "s", ua.NodeIdType.Guid: "g", ua.NodeIdType.ByteString: "b"}
GUID = "72962B91-FA75-4AE6-8D28-B404DC7DAF63"

VALID = [
    "i=84", "ns=0;i=2253", "ns=2;i=1042", "ns=2;s=Oven.Zone1.Temp", "ns=2;s=Windsor.Paint.Oven1.Zone1.Temperature",
    "s=Name", "ns=3;s=a;b=c", "ns=2;s=", "ns=2;s= padded ", "ns=2;s=Zone 1/Temp °C", f"ns=1;g={GUID}",
    f"g={GUID.lower()}", "ns=1;g={72962b91-fa75-4ae6-8d28-b404dc7daf63}", "ns=1;g=72962b91fa754ae68d28b404dc7daf63",
    "ns=1;b=M/RbKBsRVkePCePcx24oRA==", "ns=1;b=0x0102ff", "ns=1;b=0x", "ns=1;b=not base64!", "ns=1;b=",
    "nsu=urn:example:plant;i=5", "nsu=http://x/y;s=A.B", "srv=1;ns=2;i=3", "ns=2;i=3;nsu=urn:x", " ns = 2 ; i = 7 ",
    ";;ns=2;;i=7;", "ns=+2;i=-1", "ns=1_0;i=1_000", "i=99999999999999999999", "ns=2;x=whatever;i=1", "i=1;i=2",
    "s=a;i=5", "i=5;s=a", "ns=2;s=a=b=c", "ns=2;s=;;;",
]
INVALID = [
    "", ";", ";;", "ns=2", "ns=2;", "nsu=urn:x", "srv=1", "Oven.Zone1.Temp", "ns=2;Oven", "ns=x;i=1", "ns=2;i=x",
    "ns=2;i=", "ns=2;i=1.5", "i=0x10", "ns=;i=1", "ns=2;g=not-a-guid", "ns=2;g=", f"ns=2;g={GUID}00",
    "ns=2;b=0xZZ", "ns=2;b=0x123", "ns=2;b=é", "ns=2;b=0xé", "srv=x;i=1", "2;i=1", "i=1;bad", "ns=2;i=1;garbage",
    "ns=2 s=Name", "ns=2,i=1",
]


def asyncua_reading(text: str) -> tuple[object, ...] | None:
    try:
        node = ua.NodeId.from_string(text)
    except Exception:
        return None
    expanded = isinstance(node, ua.ExpandedNodeId)
    return (node.Identifier, KINDS[node.NodeIdType], node.NamespaceIndex,
            node.NamespaceUri if expanded else None, node.ServerIndex if expanded else None)


def our_reading(text: str) -> tuple[object, ...] | None:
    try:
        n = parse_node_id(text)
    except ValueError:
        return None
    return n.identifier, n.kind, n.namespace, n.namespace_uri, n.server_index


@pytest.mark.parametrize("text", VALID)
def test_valid_node_ids_are_read_as_asyncua_reads_them(text: str) -> None:
    theirs = asyncua_reading(text)
    assert theirs is not None, f"the table is wrong: asyncua refuses {text!r}"
    assert our_reading(text) == theirs


@pytest.mark.parametrize("text", INVALID)
def test_invalid_node_ids_are_refused_as_asyncua_refuses_them(text: str) -> None:
    assert asyncua_reading(text) is None, f"the table is wrong: asyncua accepts {text!r}"
    assert our_reading(text) is None


KEYS = ["ns", "i", "s", "g", "b", "nsu", "srv", " i ", "ns ", "x", "", "I", "S"]
VALUES = ["0", "2", "1042", "-1", "+3", " 7 ", "1_0", "", "x", "1.5", "0x1F", "0x0102", "0xZZ", "0x", GUID,
          GUID.lower(), "{" + GUID + "}", GUID.replace("-", ""), GUID[:-1], "urn:uuid:" + GUID, "AQID", "AQI=",
          "AQ=", "é", "a=b", "Oven.Zone1", "٣", "\t", " "]
PART = st.one_of(
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), st.one_of(st.sampled_from(VALUES), st.text(max_size=8))),
    st.sampled_from(["", "=", "Oven", "ns", "i"]),
    st.text(max_size=6),
)
NODE_IDS = st.one_of(st.lists(PART, max_size=5).map(";".join), st.text(max_size=20))


@settings(max_examples=3000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(NODE_IDS)
def test_generated_node_ids_get_the_same_answer_as_asyncua(text: str) -> None:
    assert our_reading(text) == asyncua_reading(text)


def test_generated_cases_are_both_accepted_and_refused() -> None:
    """The generator is no fake: the table's strings joined as it joins parts give both answers, often."""
    answers = [asyncua_reading(f"{k}={v}") is not None for k in KEYS for v in VALUES]
    assert answers.count(True) > 20 and answers.count(False) > 20


def test_the_tag_model_refuses_what_asyncua_refuses() -> None:
    assert OpcUaPoint(node="ns=2;s=Oven.Zone1.Temp").node == "ns=2;s=Oven.Zone1.Temp"
    with pytest.raises(ValueError, match="not an OPC UA node id: 'ns=2;i=x'"):
        OpcUaPoint(node="ns=2;i=x")
