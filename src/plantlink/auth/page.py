"""The minimal login page: plain HTML form, inline style, no script, no external asset."""

from __future__ import annotations

from html import escape

CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

STYLE = """body{font-family:system-ui,sans-serif;background:#1f2933;color:#e4e7eb;display:flex;min-height:100vh;
margin:0;align-items:center;justify-content:center}
form{background:#323f4b;padding:2rem;border-radius:8px;width:18rem;box-shadow:0 2px 12px #0006}
h1{font-size:1.3rem;margin:0 0 1rem} label{display:block;margin:.8rem 0 .2rem;font-size:.9rem}
input{width:100%;box-sizing:border-box;padding:.5rem;border-radius:4px;border:1px solid #616e7c;
background:#1f2933;color:#e4e7eb;font-size:1rem}
button{margin-top:1.2rem;width:100%;padding:.6rem;border:0;border-radius:4px;background:#2186eb;color:#fff;
font-size:1rem;cursor:pointer} .err{background:#8a1c1c;padding:.5rem;border-radius:4px;font-size:.9rem}
.back{font-size:.85rem;margin:1rem 0 0} a{color:#9fcbf5}
.ok{background:#1d5c2e;padding:.5rem;border-radius:4px;font-size:.9rem}
"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>plantlink - log in</title>
<style>
{style}</style></head>
<body><form method="post" action="/login">
<h1>plantlink</h1>{notice}{error}
<label for="user">User</label><input id="user" name="user" autocomplete="username" required autofocus value="{user}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{next}">
<button type="submit">Log in</button>
</form></body></html>
"""


def safe_next(target: str | None) -> str:
    """A local path to go to after login (never another site: no scheme, no '//' or backslash)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return "/"
    return target if all(32 < ord(ch) < 127 for ch in target) else "/"


#: notices the login page shows after an account action (``/login?changed=1``)
NOTICES = {"changed": "Your password was changed: log in with the new one."}


def login_page(error: str | None = None, user: str = "", next_path: str = "/", notice: str | None = None) -> str:
    err = f'<p class="err" role="alert">{escape(error)}</p>' if error else ""
    note = f'<p class="ok" role="status">{escape(NOTICES[notice])}</p>' if notice in NOTICES else ""
    return _PAGE.format(style=STYLE, notice=note, error=err, user=escape(user[:100]),
                        next=escape(safe_next(next_path)))
