"""The e-mail path against a real SMTP server (aiosmtpd) started on loopback by the test, through an
Airflow SMTP connection given in the environment."""

import email
import json
import socket

import pandas as pd
import pytest

from jichu.reconcile.mail import mail_batch, send_report
from jichu.reconcile.outbox import deliver_agency


ITEMS = pd.DataFrame([("S1", "VALUE_MISMATCH", "major", "open", "2026-01-01", "2026-02-01", 31, "name", "x", "y",
                       "shichang", "shuiwu:taxpayer:1", "2026-02-01")],
                     columns=["discrepancy_id", "rule", "severity", "status", "first_seen", "last_seen", "days_open",
                              "field", "value", "golden_value", "golden_agency", "record_ref", "batch"])


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Keep(Message):
        def handle_message(self, message):
            received.append(message)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


def test_a_report_arrives_by_smtp_with_its_files(tmp_path, smtp_server, monkeypatch):
    port, received = smtp_server
    monkeypatch.setenv("AIRFLOW_CONN_JICHU_SMTP", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "jichu@example.org"},
    }))
    manifest = deliver_agency(tmp_path, "shuiwu", "2026-02-01", ITEMS, pd.DataFrame({"batch": [], "open": []}), {})
    sent = send_report(manifest, ["clerk@shuiwu.example.org"], "数据核查清单 shuiwu 2026-02-01")

    assert len(received) == 1
    message = email.message_from_string(received[0].as_string())
    assert message["To"] == "clerk@shuiwu.example.org" and message["From"] == "jichu@example.org"
    assert str(email.header.make_header(email.header.decode_header(message["Subject"]))) == "数据核查清单 shuiwu 2026-02-01"
    attached = {part.get_filename(): part.get_payload(decode=True) for part in message.walk() if part.get_filename()}
    assert sorted(attached) == sorted(sent) == sorted(["jichu-shuiwu-2026-02-01.csv", "jichu-shuiwu-2026-02-01.html",
                                                       "jichu-shuiwu-2026-02-01.xlsx", "manifest.json"])
    assert attached["jichu-shuiwu-2026-02-01.xlsx"] == (manifest.parent / "jichu-shuiwu-2026-02-01.xlsx").read_bytes()


def test_after_a_run_each_named_agency_gets_its_own_report(tmp_path, smtp_server, monkeypatch):
    port, received = smtp_server
    monkeypatch.setenv("AIRFLOW_CONN_MAIL_TEST", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "jichu@example.org"},
    }))
    batch = "2026-02-01"
    for agency in ("shuiwu", "tongji"):
        deliver_agency(tmp_path, agency, batch, ITEMS, pd.DataFrame({"batch": [], "open": []}), {})
    recipients = {"shuiwu": ["a@shuiwu.example.org", "b@shuiwu.example.org"],
                  "renshe": ["clerk@renshe.example.org"]}  # no report for 人社 this batch: no e-mail
    sent = mail_batch(tmp_path, batch, recipients, conn_id="mail_test")

    assert sorted(sent) == ["shuiwu"]
    assert len(received) == 1  # 统计 is not named: its report stays in the outbox only
    message = email.message_from_string(received[0].as_string())
    assert message["To"] == "a@shuiwu.example.org, b@shuiwu.example.org"
    assert {p.get_filename() for p in message.walk() if p.get_filename()} == {
        f"jichu-shuiwu-{batch}.{x}" for x in ("csv", "html", "xlsx")} | {"manifest.json"}
