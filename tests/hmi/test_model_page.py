"""The plant model page (issue 13 item 4, "an engineer's action in the HMI"): a viewer sees no link to it and is
refused at its address; an engineer at every site uploads a changed model, reads its plan, applies it, and
the change is live on the machine page reached by clicking links. A model that fails validation changes
nothing and its problems are listed with their lines; a plan that loses history shows it in red and is refused
without "allow history loss"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from plantlink.identity import Principal
from tests.hmi.conftest import PRESS, seed_history
from tests.hmi.harness import HmiServer
from tests.waiting import wait_until

PRINCIPALS = {
    "viewer": Principal("victor", {"windsor": "viewer", "detroit": "viewer"}),
    "windsor-engineer": Principal("erin", {"windsor": "engineer"}),  # not at every site: no model page
    "chief": Principal("chen", {"*": "engineer"}),
}
YAML_BOX = 'textarea[data-testid="model-yaml"], [data-testid="model-yaml"] textarea'
TONNAGE = "                  - name: tonnage\n                    unit: t\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HmiServer]:
    srv = HmiServer(tmp_path_factory.mktemp("hmi-model"), PRINCIPALS, prepare=seed_history).start()
    try:
        yield srv
    finally:
        srv.stop()


def text_of(v: Any, selector: str) -> str:
    return str(v.page.locator(selector).inner_text())


def test_a_viewer_and_an_engineer_of_one_site_have_no_model_page(visit: Any) -> None:
    for who in ("viewer", "windsor-engineer"):
        v = visit(who)
        v.goto("/hmi/")
        v.page.wait_for_selector("a.pl-tile")
        assert v.page.locator('[data-testid="nav-model"]').count() == 0
        answer = v.page.goto(v.server.url + "/hmi/model")
        assert answer.status == 403


def test_an_engineer_plans_and_applies_a_changed_model(visit: Any, server: HmiServer) -> None:
    assert TONNAGE in server.model_text
    v = visit("chief")
    v.goto("/hmi/")
    v.page.click('[data-testid="nav-model"]')
    v.page.wait_for_selector('[data-testid="model-digest"]')
    v.page.wait_for_function("() => !window.socket || window.socket.connected")
    running = text_of(v, '[data-testid="model-digest"]')
    assert running.startswith("Running model sha256:")

    # a model that fails validation: nothing changes, the problem names its line
    bad = server.model_text.replace(TONNAGE, TONNAGE.replace("unit: t", "unit: t\n                    decimals: many"))
    v.page.locator(YAML_BOX).first.fill(bad)
    v.page.click('[data-testid="model-plan"]')
    wait_until(lambda: "not valid" in text_of(v, '[data-testid="model-result"]'), 60, "the validation errors")
    line = server.model_text[:server.model_text.index(TONNAGE)].count("\n") + 3  # the decimals line
    assert f":{line}:" in text_of(v, '[data-testid="model-result"]')
    assert not v.page.locator('[data-testid="model-apply"]').is_visible()

    # a model that drops a tag with history: the loss in red, "allow history loss" offered, refused without it
    at = server.model_text.index("                  - name: spm ")
    lossy = server.model_text[:at] + server.model_text[server.model_text.index("                  - ", at + 10):]
    v.page.locator(YAML_BOX).first.fill(lossy)
    v.page.click('[data-testid="model-plan"]')
    wait_until(lambda: "Plan:" in text_of(v, '[data-testid="model-plan-text"]'), 60, "the lossy plan")
    lost = v.page.locator('[data-testid="model-plan-text"] [data-loss="yes"]')
    assert lost.count() >= 1 and f"{PRESS}/spm" in lost.last.inner_text()
    assert "183, 28, 28" in lost.first.evaluate("e => getComputedStyle(e).color")  # red
    assert v.page.locator('[data-testid="model-allow-loss"]').is_visible()
    v.page.click('[data-testid="model-apply"]')
    wait_until(lambda: "Refused" in text_of(v, '[data-testid="model-result"]'), 60, "the refusal")
    assert "allow_history_loss" in text_of(v, '[data-testid="model-result"]')
    assert text_of(v, '[data-testid="model-digest"]') == running  # nothing changed

    # the changed model, uploaded as a file: planned at once
    changed = server.model_text.replace(TONNAGE, TONNAGE.replace("unit: t", "unit: kN"))
    v.page.set_input_files('[data-testid="model-upload"] input[type=file]', files=[
        {"name": "plant.yaml", "mimeType": "application/yaml", "buffer": changed.encode()}])
    wait_until(lambda: "kN" in text_of(v, '[data-testid="model-plan-text"]'), 60, "the uploaded model's plan")
    plan = text_of(v, '[data-testid="model-plan-text"]')
    assert f"~ tag {PRESS}/tonnage" in plan and 'unit: "t" -> "kN"' in plan
    assert "Plan: 0 to add, 1 to change, 0 to rename, 0 to remove." in plan
    assert running.split()[2] in plan  # made against the running model
    assert server.runtime is not None and server.runtime.plant.tag(f"{PRESS}/tonnage").tag.unit == "t"
    v.page.click('[data-testid="model-apply"]')
    wait_until(lambda: "Applied" in text_of(v, '[data-testid="model-result"]'), 60, "the apply's result")
    after = text_of(v, '[data-testid="model-digest"]')
    assert after != running and after.split()[2] in text_of(v, '[data-testid="model-result"]')

    # live: the machine page, reached by clicking, shows the new unit
    v.page.click("header a >> nth=0")  # the enterprise: the plant overview
    v.page.click(f'a.pl-tile[data-machine="{PRESS}"]')
    wait_until(lambda: text_of(v, '[data-testid="value-tonnage"]').endswith("kN"), 60, "tonnage in kN")
