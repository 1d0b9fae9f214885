"""Share posters (裂变海报): a PNG with the brand, the campaign title, the reward, the inviter's avatar
and nickname, a QR code of their link and the deadline.

Chinese text needs a CJK font. It is found at run time (fontconfig, then known paths of Debian's
fonts-noto-cjk / fonts-wqy-*); without one the poster is still made, with a warning, because
Pillow's default font draws Chinese as boxes (tofu).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import PIL.Image as Image
    import PIL.ImageDraw as ImageDraw
    import PIL.ImageFont as ImageFont
    import qrcode
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    qrcode = lazy_import("qrcode")
    Image = lazy_import("PIL.Image")
    ImageDraw = lazy_import("PIL.ImageDraw")
    ImageFont = lazy_import("PIL.ImageFont")

KNOWN_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)
# NotoSansCJK-*.ttc holds JP, KR, SC, TC, HK faces; index 2 is Simplified Chinese.
SC_INDEX = {"NotoSansCJK": 2, "NotoSerifCJK": 2}


class NoCJKFontWarning(UserWarning):
    pass


@dataclass(frozen=True)
class Template:
    """A poster layout; sizes in pixels, colours as RGB."""

    width: int = 750
    height: int = 1100
    background: tuple[int, int, int] = (196, 30, 58)
    panel: tuple[int, int, int] = (255, 247, 230)
    title_color: tuple[int, int, int] = (255, 236, 179)
    text_color: tuple[int, int, int] = (90, 20, 20)
    title_size: int = 56
    text_size: int = 36
    qr_size: int = 360


TEMPLATES = {
    "classic": Template(),
    "minimal": Template(
        background=(245, 245, 245), panel=(255, 255, 255), title_color=(30, 30, 30), text_color=(60, 60, 60)
    ),
}


@lru_cache
def cjk_font_path() -> tuple[str, int] | None:
    """(file, face index) of a font with Simplified Chinese glyphs, or None."""
    candidates: list[str] = []
    if shutil.which("fc-match"):
        for family in ("Noto Sans CJK SC", "WenQuanYi Micro Hei", "sans-serif:lang=zh-cn"):
            try:
                out = subprocess.run(
                    ["fc-match", "-f", "%{file}", family], capture_output=True, text=True, timeout=5
                ).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                continue
            if out:
                candidates.append(out)
    candidates += list(KNOWN_FONTS)
    for path in candidates:
        name = Path(path).name
        if not Path(path).exists() or not any(k in name for k in ("CJK", "wqy", "WenQuanYi", "Hei", "Song")):
            continue  # fc-match falls back to DejaVu & co. when no CJK font exists
        index = next((i for prefix, i in SC_INDEX.items() if name.startswith(prefix)), 0)
        return path, index
    return None


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    found = cjk_font_path()
    if found is None:
        warnings.warn(
            "no CJK font found (install fonts-noto-cjk); Chinese text on posters will render as boxes",
            NoCJKFontWarning,
            stacklevel=2,
        )
        return ImageFont.load_default(size)
    return ImageFont.truetype(found[0], size, index=found[1])


def qr_image(link: str, size: int) -> Image.Image:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
    qr.add_data(link)
    qr.make(fit=True)
    return (
        qr.make_image(fill_color="black", back_color="white")
        .get_image()
        .convert("RGB")
        .resize((size, size), Image.Resampling.NEAREST)
    )


def _wrap(draw: ImageDraw.ImageDraw, text: str, fnt, width: int) -> list[str]:
    """Chinese has no spaces: wrap by characters to the width."""
    lines, line = [], ""
    for ch in text:
        if draw.textlength(line + ch, font=fnt) > width and line:
            lines.append(line)
            line = ch
        else:
            line += ch
    return [*lines, line] if line else lines


def _hex_rgb(text: str | None, default: tuple[int, int, int]) -> tuple[int, int, int]:
    if not text or len(text) != 7 or not text.startswith("#"):
        return default
    try:
        return (int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16))
    except ValueError:
        return default


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    """Darker (factor < 1) or lighter (factor > 1, towards white) of a colour."""
    if factor <= 1:
        return (int(rgb[0] * factor), int(rgb[1] * factor), int(rgb[2] * factor))
    mix = factor - 1
    return tuple(int(c + (255 - c) * mix) for c in rgb)  # type: ignore[return-value]


def _background(img: Image.Image, base: tuple[int, int, int], pattern: str) -> None:
    """The background image drawn over the colour: a gradient, dots or diagonal stripes."""
    draw = ImageDraw.Draw(img)
    w, h = img.size
    if pattern == "gradient":
        dark = _shade(base, 0.55)
        for y in range(h):
            k = y / h
            draw.line(
                [(0, y), (w, y)], fill=tuple(int(a + (b - a) * k) for a, b in zip(base, dark, strict=True))
            )
    elif pattern == "dots":
        light = _shade(base, 1.18)
        for y in range(20, h, 48):
            for x in range(20 + (y // 48 % 2) * 24, w, 48):
                draw.ellipse((x - 6, y - 6, x + 6, y + 6), fill=light)
    elif pattern == "stripes":
        light = _shade(base, 1.12)
        for x in range(-h, w, 56):
            draw.line([(x, h), (x + h, 0)], fill=light, width=18)


def _avatar(draw: ImageDraw.ImageDraw, centre: tuple[int, int], nickname: str, fill, size: int) -> None:
    """The inviter's avatar: a disc with the first character of their nickname (no photo is stored)."""
    x, y = centre
    r = size // 2
    draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    draw.text((x, y), (nickname or "友")[:1], font=font(int(size * 0.5)), fill=(255, 255, 255), anchor="mm")


def render(
    title: str,
    nickname: str,
    link: str,
    template: str = "classic",
    *,
    reward: str = "",
    deadline: str = "",
    brand: str = "",
    background: str | None = None,
    pattern: str = "none",
    show_avatar: bool = False,
) -> bytes:
    """The poster as PNG bytes: brand, title, reward, the inviter (avatar and nickname), the QR code
    of the link and the deadline, on the template's colours (or `background`) and `pattern`."""
    t = TEMPLATES.get(template) or TEMPLATES["classic"]
    base = _hex_rgb(background, t.background)
    img = Image.new("RGB", (t.width, t.height), base)
    _background(img, base, pattern)
    draw = ImageDraw.Draw(img)
    title_font, text_font, small = font(t.title_size), font(t.text_size), font(28)
    y = 40
    if brand:
        draw.text((t.width / 2, y), brand[:40], font=small, fill=t.title_color, anchor="mt")
        y += 50
    y = max(y, 80)
    for line in _wrap(draw, title, title_font, t.width - 100)[: 2 if reward else 3]:
        draw.text((t.width / 2, y), line, font=title_font, fill=t.title_color, anchor="mt")
        y += int(t.title_size * 1.3)
    if reward:
        for line in _wrap(draw, reward, text_font, t.width - 120)[:2]:
            draw.text((t.width / 2, y + 6), line, font=text_font, fill=t.title_color, anchor="mt")
            y += int(t.text_size * 1.35)
    margin = 60
    top = max(y + 30, 300)
    bottom = t.height - margin
    draw.rounded_rectangle((margin, top, t.width - margin, bottom), radius=24, fill=t.panel)
    y = top + 30
    if show_avatar:
        _avatar(draw, (t.width // 2, y + 40), nickname, base, 80)
        y += 95
    draw.text(
        (t.width / 2, y), f"{nickname or '好友'} 邀请你参加", font=text_font, fill=t.text_color, anchor="mt"
    )
    y += 60
    below = 60 + (45 if deadline else 0)  # the hint under the QR code, and the deadline
    qr_size = max(200, min(t.qr_size, bottom - 20 - below - y))
    img.paste(qr_image(link, qr_size), ((t.width - qr_size) // 2, y))
    y += qr_size + 20
    draw.text((t.width / 2, y), "长按识别二维码", font=text_font, fill=t.text_color, anchor="mt")
    if deadline:
        draw.text((t.width / 2, y + 52), deadline, font=small, fill=t.text_color, anchor="mt")
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()
