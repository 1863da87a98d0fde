"""Building blocks of the provider's self-contained HTML reports (validation, drift).

A report is one HTML file with inline CSS, no script and no external asset, so it opens from
object storage, a mail attachment or the Airflow UI plugin alike. Everything that comes from data
(column names, values, messages) is untrusted: pass it through :func:`esc` before it enters markup.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

# The kinds of stored reports: each has its folder ``reports/<kind>/`` under a dataset (see
# ``DatasetStorageHook.report_path``) and its address in the UI plugin (see ``links.reports``).
REPORT_KINDS = ("validation", "drift")

BASE_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:0}
body{background:#f6f8fa}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px 20px;margin:12px 0}
.verdict{display:inline-block;padding:3px 12px;border-radius:14px;font-weight:600;color:#fff}
.pass{background:#1a7f37}.fail{background:#cf222e}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0 0}
dl.meta dt{color:#59636e}dl.meta dd{margin:0;overflow-wrap:anywhere}
.stats{display:flex;gap:28px;flex-wrap:wrap}.stats div{min-width:110px}
.stats b{display:block;font-size:22px}.stats span{color:#59636e}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #d0d7de;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4}tr.failed td{background:#fff5f5}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
td code,dd code{white-space:pre-wrap;overflow-wrap:anywhere}
.status{font-weight:600}.status.ok{color:#1a7f37}.status.ko{color:#cf222e}
footer{color:#59636e;font-size:12px;margin-top:24px}
"""


def esc(value: Any) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes."""
    return html.escape(value if isinstance(value, str) else str(value), quote=True)


def definition_list(items: Mapping[str, Any]) -> str:
    """A ``<dl>`` of label / value pairs (both escaped); None values are left out."""
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items.items() if v is not None)
    return f'<dl class="meta">{rows}</dl>'


def stat_tiles(items: Iterable[tuple[str, Any]]) -> str:
    """A row of big numbers with captions (both escaped)."""
    tiles = "".join(f"<div><b>{esc(value)}</b><span>{esc(label)}</span></div>" for label, value in items)
    return f'<div class="stats">{tiles}</div>'


def html_page(title: str, body: str, *, css: str = "") -> str:
    """A complete HTML document: ``title`` is escaped here, ``body`` must already be safe markup."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{BASE_CSS}{css}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
