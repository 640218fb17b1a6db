"""The analysts' pages: interim reports and analysis datasets to download, blinding applied.

A DMC member downloads the closed report; a blinded statistician is refused it (403, nothing
built); blinded roles' downloads hold no arm code, arm label or team name.
"""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from html import unescape
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.conftest import starting_from
from tests.factories import frozen_small_trial
from tests.test_reports import arm_words, found
from tests.web.conftest import WebDemo, demo_login, login

#: a test given ``frozen`` (a freeze id) starts from a copy of a frozen six-family trial
#: (built once per run and backend)
prebuilt, db_url, frozen = starting_from(
    "small_trial_6_frozen", frozen_small_trial, fixture="frozen"
)


def _arm_words(text: str) -> list[str]:
    codes, labels = arm_words()
    return found(text, codes, labels)


def test_dmc_member_downloads_the_closed_report(client: TestClient, frozen: int) -> None:
    login(client, "dmc_chair")
    page = client.get("/reports")
    assert page.status_code == 200
    assert 'action="/reports/closed"' in page.text and 'action="/reports/open"' in page.text
    assert "DMC 1" in page.text
    got = client.get(f"/reports/closed?freeze={frozen}&format=html")
    assert got.status_code == 200, got.text[:500]
    assert got.headers["content-type"].startswith("text/html")
    disposition = got.headers["content-disposition"]
    assert disposition == f'attachment; filename="noim-closed-interim-report-freeze{frozen}.html"'
    assert got.headers["cache-control"] == "no-store"
    assert _arm_words(got.text)  # by arm
    assert client.get("/datasets").status_code == 403  # no analyse capability


def test_blinded_statistician_cannot_download_the_closed_report(
    client: TestClient, frozen: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(client, "statistician")
    page = client.get("/reports")
    assert 'action="/reports/open"' in page.text and "/reports/closed" not in page.text
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    for query in (f"?freeze={frozen}&format=html", f"?freeze={frozen}&format=zip", ""):
        refused = client.get(f"/reports/closed{query}")
        assert refused.status_code == 403 and "read_closed_report" in refused.text
        assert _arm_words(refused.text) == []
    assert list(temp.iterdir()) == []  # nothing was built
    opened = client.get(f"/reports/open?freeze={frozen}&format=zip")
    assert opened.status_code == 200 and opened.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(opened.content)) as z:
        for name in z.namelist():
            if not name.endswith(".pdf"):
                assert _arm_words(z.read(name).decode()) == [], name


def test_report_form_errors_beside_the_field(client: TestClient, frozen: int) -> None:
    login(client, "datamanager")
    missing = client.get("/reports/open?format=html")
    assert missing.status_code == 422
    assert 'aria-invalid="true"' in missing.text and "WEB-004" in missing.text
    nothing = client.get("/reports/open?freeze=999&format=html")
    assert nothing.status_code == 422 and "999" in unescape(nothing.text)
    odd = client.get(f"/reports/open?freeze={frozen}&format=docx")
    assert odd.status_code == 422 and "WEB-003" in odd.text
    assert client.get("/reports/secret").status_code == 404
    pdf = client.get(f"/reports/open?freeze={frozen}&format=pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


@pytest.mark.parametrize("user", ["coord_gla", "research_gla"])
def test_reports_refused_to_site_roles(client: TestClient, user: str) -> None:
    login(client, user)
    assert client.get("/reports").status_code == 403
    assert client.get("/reports/open?freeze=1").status_code == 403
    assert client.get("/datasets").status_code == 403
    assert client.get("/datasets/children").status_code == 403


def test_datasets_with_blinding(client: TestClient, frozen: int) -> None:
    login(client, "statistician")
    page = client.get(f"/datasets?freeze={frozen}")
    assert page.status_code == 200
    links = re.findall(r'href="(/datasets/[a-z_]+\?freeze=\d+)"', page.text)
    assert len(links) == 7
    for link in links:
        got = client.get(link)
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
        assert got.headers["content-disposition"].startswith("attachment;")
        assert _arm_words(got.text) == [], link
    live = client.get("/datasets/children")
    assert live.status_code == 200 and _arm_words(live.text) == []
    assert client.get("/datasets/allocations").status_code == 404
    assert client.get("/datasets/children?freeze=999").status_code == 404
    bad = client.get("/datasets?freeze=first")
    assert bad.status_code == 422 and "WEB-002" in bad.text
    client.cookies.clear()
    login(client, "unblinded_stat")
    seen = client.get(f"/datasets/children?freeze={frozen}")
    codes, _labels = arm_words()
    assert found(seen.text, codes, set())  # the unblinded statistician gets the arm codes


def test_blinded_crawl_of_reports_and_datasets(web_demo: WebDemo) -> None:
    client = demo_login(web_demo, "statistician")
    for path in ("/reports", "/datasets", "/datasets/children", "/datasets/costs", "/freezes"):
        got = client.get(path)
        assert got.status_code == 200, path
        assert _arm_words(got.text) == [], path
    assert client.get("/reports/closed").status_code == 403
