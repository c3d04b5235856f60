"""Delivery by e-mail through Airflow's SMTP connection (apache-airflow-providers-smtp's SmtpHook): the
report's files and manifest attached, its HTML summary as the body. Host, port, TLS and sender come
from the connection (conn id `jichu_smtp` unless the profile names another), never from code."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger("jichu")

CONN_ID = "jichu_smtp"


def send_report(manifest: Path, to: list[str], subject: str, conn_id: str = CONN_ID) -> list[str]:
    """Send the files a manifest lists, and the manifest, to `to`; returns the attached file names."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    folder = manifest.parent
    files = [folder / e["file"] for e in json.loads(manifest.read_text(encoding="utf-8"))["files"]] + [manifest]
    body = next((f.read_text(encoding="utf-8") for f in files if f.suffix == ".html"), subject)
    with SmtpHook(smtp_conn_id=conn_id) as hook:
        hook.send_email_smtp(to=to, subject=subject, html_content=body, files=[str(f) for f in files])
    return [f.name for f in files]


def mail_batch(outbox: Path, batch: str, recipients: dict[str, list[str]], conn_id: str = CONN_ID) -> dict[str, list[str]]:
    """Send each agency that `recipients` names its report for `batch` from the outbox (`province`: the
    province summary). An agency with no report this batch gets no e-mail. Returns {agency: files sent}."""
    sent = {}
    for agency, to in sorted(recipients.items()):
        manifest = outbox / agency / batch / "manifest.json"
        if not manifest.exists():
            log.info("no report for %s in batch %s: nothing to send", agency, batch)
            continue
        sent[agency] = send_report(manifest, to, f"jichu 数据核查清单 {agency} {batch}", conn_id)
        log.info("report for %s, batch %s, sent to %d address(es)", agency, batch, len(to))
    return sent
