"""What only one mode can get wrong: a server's errors (bad token, server down) and its own OEE answer; a data
directory that is in use, missing, or whose plant model cannot be found; and ``import plantlink`` stays cheap."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import plantlink
from plantlink.app import free_port
from plantlink.client.embedded import DataDirInUse
from plantlink.client.remote import ServerUnreachable
from plantlink.errors import AccessDenied, NotFound, RequestError, Unauthenticated, Unavailable
from tests.api.test_oee_downtime import local_us
from tests.client.plantdata import DET, M1, SPEED, TEMP, Server, plant_file, running_server

START, END = "2026-03-10T00:00:00Z", "2026-03-10T23:00:00Z"
HOLD = """
import sys
from plantlink.historian import open_historian
h = open_historian("duckdb", path=sys.argv[1])
print("open", flush=True)
sys.stdin.read()
h.close()
"""


def test_a_bad_token_is_unauthenticated_and_says_so(server: Server) -> None:
    with plantlink.connect(server.url, token="plk_nope_nope") as pl, \
            pytest.raises(Unauthenticated, match=r"check the token given to plantlink.connect") as e:
        pl.latest(SPEED)
    assert e.value.status == 401
    with plantlink.connect(server.url) as pl, pytest.raises(Unauthenticated):
        pl.latest(SPEED)


def test_a_site_the_token_may_not_view_is_access_denied(server: Server) -> None:
    with plantlink.connect(server.url, token=server.windsor_token) as pl:
        assert pl.tags("*/*/*/*/temp") == [TEMP]  # detroit's tags are not even listed
        with pytest.raises(NotFound, match="no tag 'detroit/d1/l2/m3/temp'"):
            pl.latest(DET)
        for call in (lambda: pl.oee("detroit", START, END), lambda: pl.downtime("detroit", START, END),
                     lambda: pl.states("detroit/d1/l2/m3", START, END)):
            with pytest.raises(AccessDenied) as e:
                call()
            assert e.value.status == 403 and e.value.field == "site"


def test_tls_verify_is_on_by_default(tmp_path: Path, model: Path) -> None:
    with running_server(tmp_path / "data", model, tls=True) as s:
        assert s.url.startswith("https://")
        with plantlink.connect(s.url, token=s.token) as pl, \
                pytest.raises(ServerUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
            pl.latest(SPEED)
        cert = s.data_dir / "tls" / "cert.pem"
        for verify in (False, str(cert)):  # told to trust it: the self-signed certificate itself
            with plantlink.connect(s.url, token=s.token, verify=verify) as pl:
                assert pl.latest(SPEED)["value"].to_list() == [5.0]


def test_a_server_that_is_down_is_unreachable_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with plantlink.connect(url, token="plk_x_y", timeout=5) as pl, \
            pytest.raises(ServerUnreachable, match=f"cannot reach plantlink at {url}") as e:
        pl.read(SPEED, "2026-03-10T12:00:00Z", "2026-03-10T12:01:00Z")
    assert isinstance(e.value, Unavailable) and e.value.status == 503


def test_oee_frame_is_the_servers_oee_json(server: Server) -> None:
    start, end = local_us(6) // 1000, local_us(14) // 1000
    r = httpx.get(f"{server.url}/api/v1/oee", params={"scope": "windsor/a1/l1", "start": start, "end": end},
                  headers={"authorization": f"Bearer {server.token}"})
    assert r.status_code == 200, r.text
    want = r.json()
    with plantlink.connect(server.url, token=server.token) as pl:
        df = pl.oee("windsor/a1/l1", "2026-03-10T06:00:00-04:00", "2026-03-10T14:00:00-04:00")
    for row, fig in zip(df.iter_rows(named=True), [want, *want["machines"]], strict=True):
        assert (row["oee"], row["availability"], row["effectiveness"], row["quality_rate"]) == (
            fig["oee"], fig["availability"], fig["effectiveness"], fig["quality_rate"])
        assert row["produced"] == fig["inputs"]["pq"] and row["performance_loss_s"] == fig["losses_s"]["performance"]
    assert df["scope"].to_list() == ["windsor/a1/l1", M1]


def test_a_data_dir_in_use_by_a_running_plantlink_says_to_use_the_url(data_dir: Path, tmp_path: Path) -> None:
    """Another process holds the historian (as ``plantlink run`` does): DuckDB's file lock refuses a second."""
    busy = tmp_path / "busy"
    shutil.copytree(data_dir, busy)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(busy / "historian.duckdb")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(DataDirInUse, match=r"in use by a running plantlink .* plantlink.connect\('http"):
            plantlink.connect(busy)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    with plantlink.connect(busy) as pl:  # free again
        assert pl.latest(SPEED)["value"].to_list() == [5.0]


def test_a_missing_data_dir_is_named(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match=f"no plantlink data directory at {tmp_path / 'nope'}"):
        plantlink.connect(tmp_path / "nope")


def test_the_plant_model_is_found_or_asked_for(data_dir: Path, tmp_path: Path, model: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(data_dir, moved)
    with plantlink.connect(moved, plant=model) as pl:  # given
        assert pl.tags("*/*/*/*/speed") == [SPEED]
    with plantlink.connect(moved, plant=plant_file(tmp_path / "elsewhere")) as pl:  # a copy elsewhere
        assert pl.tags("*/*/*/*/speed") == [SPEED]
    model.rename(model.with_suffix(".bak"))  # the file the data directory was run with is gone
    try:
        with pytest.raises(RequestError, match=r"is gone\): give it, plantlink.connect\(data_dir, plant="):
            plantlink.connect(moved)
    finally:
        model.with_suffix(".bak").rename(model)


def test_token_and_plant_belong_to_their_mode(data_dir: Path) -> None:
    with pytest.raises(TypeError, match="token= is for a server URL"):
        plantlink.connect(data_dir, token="x")
    with pytest.raises(TypeError, match="plant= is for a data directory"):
        plantlink.connect("http://127.0.0.1:1", plant="plant.yaml")


def test_import_plantlink_stays_cheap() -> None:
    code = ("import sys, plantlink; heavy = [m for m in ('plantlink.client', 'polars', 'httpx', 'duckdb', "
            "'plantlink.services') if m in sys.modules]; print(heavy); assert callable(plantlink.connect)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_embedded_raw_reads_page_through_the_historian(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 5 samples (a raw read answers at most ``RAW_PAGE``): the same 12 samples, none twice."""
    from plantlink.client import embedded

    with plantlink.connect(data_dir) as pl:
        whole = pl.read(TEMP, START, END)
        monkeypatch.setattr(embedded, "RAW_PAGE", 5)
        paged = pl.read(TEMP, START, END)
    assert whole.height == 12 and paged.equals(whole)


def test_a_remote_read_over_arrow_equals_the_embedded_read(data_dir: Path, server: Server) -> None:
    """Values (negatives too), timestamps to the microsecond and quality: the same frame, whichever the mode and
    whichever the server's format (Arrow by default, Parquet from a server without it)."""
    tags = [TEMP, SPEED, DET, f"{M1}/count", f"{M1}/reject", f"{M1}/power_w", "windsor/a1/l1/m2/meter_wh"]
    with plantlink.connect(data_dir) as emb:
        want = emb.read(tags, START, END)
    assert want.height == 40 and set(want["quality"].to_list()) == {"good", "bad", "uncertain"}
    with plantlink.connect(server.url, token=server.token) as rem:
        asked: list[str] = []
        rem.source.http.event_hooks["request"].append(
            lambda req: asked.append(str(req.url.params.get("format"))) if "export" in req.url.path else None)
        got = rem.read(tags, START, END)
        assert asked == ["arrow", "arrow"]  # windsor's tags, then detroit's
        assert got.schema == want.schema and got.equals(want)
        rem.source._arrow = False  # type: ignore[attr-defined]
        assert rem.read(tags, START, END).equals(want)
        assert asked[-2:] == ["parquet", "parquet"]


def test_a_server_without_the_arrow_export_is_asked_for_parquet(server: Server,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from plantlink.services import export as ex
    from tests.client.plantdata import TEMP_VALUES

    monkeypatch.setitem(ex.FORMATS, "trend", ("csv", "parquet"))  # the server refuses format=arrow (400, format)
    with plantlink.connect(server.url, token=server.token) as rem:
        asked: list[str] = []
        rem.source.http.event_hooks["request"].append(
            lambda req: asked.append(str(req.url.params.get("format"))) if "export" in req.url.path else None)
        assert rem.read(TEMP, START, END)["value"].to_list() == TEMP_VALUES
        assert rem.read(TEMP, START, END)["value"].to_list() == TEMP_VALUES
    assert asked == ["arrow", "parquet", "parquet"]  # asked once, then Parquet
