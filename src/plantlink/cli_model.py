"""``plantlink plan``, ``plantlink apply`` and ``plantlink status``: the running server's plant model, through its
API (``/api/v1/model``, ``/api/v1/health``) with an API token, like every command given ``--url``.

``plan FILE`` prints what applying FILE would change (docs/plan-apply.md); ``apply FILE`` prints the same plan,
asks (unless ``--yes``), and applies it, refused when the running model changed since the plan was shown, and
when the plan leaves tags with samples unreachable unless ``--allow-history-loss``. ``status`` prints the
running model's digest (drift: compare with ``plantlink plan``) and the health of the devices.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

model_app = typer.Typer(add_completion=False, rich_markup_mode=None)
err = Console(stderr=True, emoji=False, highlight=False)
out = Console(emoji=False, highlight=False)

DEFAULT_URL = "http://127.0.0.1:8080"
Url = Annotated[str, typer.Option("--url", envvar="PLANTLINK_URL", show_envvar=True,
                                  help="The running server (http(s)://host:port).")]
Token = Annotated[str | None, typer.Option("--token", envvar="PLANTLINK_TOKEN", show_envvar=True,
                                           help="API token (plantlink users token create ...).")]
File = Annotated[Path, typer.Argument(help="The changed plant model YAML file.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the server's answer as JSON.")]
Timeout = Annotated[float, typer.Option(help="Seconds to wait for the server's answer.")]


def _fail(message: str, code: int = 1) -> None:
    err.print(f"error {message}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def _call(url: str, token: str | None, method: str, path: str, body: dict[str, Any] | None = None,
          timeout: float = 120.0) -> dict[str, Any]:
    import httpx

    from plantlink.client.remote import error_of

    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout) as http:
            r = http.request(method, path, json=body)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach plantlink at {url} ({type(exc).__name__}: {exc}); is the server running, and the "
              "URL right (--url)?")
        raise AssertionError from exc  # not reached
    if r.status_code == 401:
        _fail(f"the server refused the token (401): give an API token with --token or PLANTLINK_TOKEN "
              f"[{method} {path}]")
    if r.status_code >= 400:
        _fail(str(error_of(r)))
    answer: dict[str, Any] = r.json()
    return answer


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {file}: {exc}")
        raise AssertionError from exc  # not reached


def _show(plan: dict[str, Any], allow_history_loss: bool = False) -> None:
    from plantlink.model.plan_text import render

    out.print(render(plan, color=True, allow_history_loss=allow_history_loss), end="", soft_wrap=True)


@model_app.command("plan")
def plan_cmd(file: File, url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False,
             exit_code: Annotated[bool, typer.Option("--exit-code", help="Exit 2 when there are changes (drift), "
                                                                         "0 when none.")] = False,
             timeout: Timeout = 120.0) -> None:
    """Print what applying FILE to the running server would change: devices, tags, units, scaling, limits,
    alarms, roles; added, changed, renamed, removed; and what each change does to history. Changes nothing.

    A tag renamed keeps its history only when the new model says so with was: (its former name). A removed
    tag that has samples is shown in red: apply then needs --allow-history-loss."""
    plan = _call(url, token, "POST", "/api/v1/model/plan", {"yaml": _read(file), "file": file.name}, timeout)
    if as_json:
        print(json.dumps(plan))
    else:
        _show(plan)
    if exit_code and plan["changes"]:
        raise typer.Exit(2)


@model_app.command("apply")
def apply_cmd(file: File, url: Url = DEFAULT_URL, token: Token = None,
              allow_history_loss: Annotated[bool, typer.Option(
                  "--allow-history-loss", help="Apply even though tags with samples would no longer be reachable "
                  "(their samples stay in the historian).")] = False,
              yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
              timeout: Timeout = 300.0) -> None:
    """Apply FILE to the running server without a restart: the plan is shown first and confirmed (or --yes).

    Only the connectors of changed devices restart; the others keep streaming. A model that fails validation
    changes nothing. Audited (model.apply, with the changes)."""
    text = _read(file)
    plan = _call(url, token, "POST", "/api/v1/model/plan", {"yaml": text, "file": file.name}, timeout)
    _show(plan, allow_history_loss)
    if not plan["changes"]:
        return
    if plan["history_loss"] and not allow_history_loss:
        _fail("not applied: tags with samples would no longer be reachable; keep their history with was: (a "
              "rename), or apply with --allow-history-loss")
    if not yes and not typer.confirm("Apply these changes?", default=False):
        _fail("not applied", 1)
    done = _call(url, token, "POST", "/api/v1/model/apply",
                 {"yaml": text, "file": file.name, "allow_history_loss": allow_history_loss,
                  "expect_digest": plan["digest_before"]}, timeout)
    out.print(f"Applied in {done['seconds']:.3f} s: the running model is {done['plan']['digest_after']}.",
              markup=False)


@model_app.command("status")
def status_cmd(url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False,
               timeout: Timeout = 30.0) -> None:
    """The running server's plant model (its digest: compare with plantlink plan's) and its devices' health."""
    model = _call(url, token, "GET", "/api/v1/model", None, timeout)
    health = _call(url, token, "GET", "/api/v1/health", None, timeout)
    if as_json:
        print(json.dumps({"model": model, "health": health}))
        return
    out.print(f"model    {model['file']}  {model['digest']}", markup=False)
    out.print(f"         {model['devices']} devices, {model['tags']} tags", markup=False)
    out.print(f"health   {health['status']}" + (f" ({'; '.join(health['reasons'])})" if health["reasons"] else ""),
              markup=False)
    for d in health["devices"]:
        out.print(f"device   {d['device']}: {d['status']}" + (f" ({d['last_error']})" if d.get("last_error") else ""),
                  markup=False)
