"""Share posters: the QR code decodes back to the invite link and Chinese text is real glyphs."""

from __future__ import annotations

import io

import numpy as np
import pytest
import zxingcpp
from campaign_helpers import Api, rules
from fastapi.testclient import TestClient
from PIL import Image

from liebian.campaigns import poster
from liebian.web.app import create_app

needs_cjk = pytest.mark.skipif(
    poster.cjk_font_path() is None, reason="no CJK font installed (apt-get install fonts-noto-cjk)"
)


def decode(png: bytes) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def glyph(font, text: str) -> np.ndarray:
    return np.asarray(font.getmask(text, mode="L"))


def test_poster_from_the_api_decodes_to_the_link(sqlite_store: str, admin_headers) -> None:
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        api = Api(client)
        api.create(rules("double_sided", title="双十一拼好礼", poster_template="minimal"), "poster1")
        invite = api.invite("poster1", "alice", channel="poster", nickname="小红")
        r = client.get(invite["poster_url"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(r.content))
        assert image.size == (750, 1100)
        assert decode(r.content) == [invite["link"]]
        assert invite["link"].endswith("/i/" + invite["code"])
        forged = invite["code"][:-1] + ("a" if invite["code"][-1] != "a" else "b")
        assert client.get(f"/api/v1/invites/{forged}/poster.png").status_code == 400


@needs_cjk
def test_cjk_glyphs_are_not_tofu() -> None:
    font = poster.font(48)
    missing = glyph(font, "\U000f0000")  # a private-use code point: no font draws it, the box is .notdef
    for ch in "裂变小红邀请":
        g = glyph(font, ch)
        assert g.any(), ch
        assert g.shape != missing.shape or not np.array_equal(g, missing), f"{ch} renders as a box"
    assert not np.array_equal(glyph(font, "裂"), glyph(font, "变"))


@needs_cjk
def test_nickname_changes_the_poster_pixels() -> None:
    link = "http://127.0.0.1:8000/i/abc"
    one = np.asarray(Image.open(io.BytesIO(poster.render("春季活动", "小红", link))))
    two = np.asarray(Image.open(io.BytesIO(poster.render("春季活动", "小明", link))))
    box = np.asarray(Image.open(io.BytesIO(poster.render("春季活动", "\U000f0000\U000f0000", link))))
    assert (one != two).any() and (one != box).any()
    assert decode(poster.render("春季活动", "小红", link)) == [link]


def test_without_a_cjk_font_the_poster_still_renders_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(poster, "cjk_font_path", lambda: None)
    with pytest.warns(poster.NoCJKFontWarning, match="fonts-noto-cjk"):
        png = poster.render("春季活动", "小红", "http://x/i/abc")
    assert decode(png) == ["http://x/i/abc"]
