"""Share posters (裂变海报): a PNG with the campaign title, the inviter's nickname and a QR code.

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


def render(title: str, nickname: str, link: str, template: str = "classic") -> bytes:
    """The poster as PNG bytes."""
    t = TEMPLATES.get(template) or TEMPLATES["classic"]
    img = Image.new("RGB", (t.width, t.height), t.background)
    draw = ImageDraw.Draw(img)
    title_font, text_font = font(t.title_size), font(t.text_size)
    y = 80
    for line in _wrap(draw, title, title_font, t.width - 100)[:3]:
        draw.text((t.width / 2, y), line, font=title_font, fill=t.title_color, anchor="mt")
        y += int(t.title_size * 1.3)
    margin = 60
    top = max(y + 40, 330)
    draw.rounded_rectangle((margin, top, t.width - margin, t.height - margin), radius=24, fill=t.panel)
    draw.text(
        (t.width / 2, top + 40),
        f"{nickname or '好友'} 邀请你参加",
        font=text_font,
        fill=t.text_color,
        anchor="mt",
    )
    qr = qr_image(link, t.qr_size)
    qr_top = top + 110
    img.paste(qr, ((t.width - t.qr_size) // 2, qr_top))
    draw.text(
        (t.width / 2, qr_top + t.qr_size + 30),
        "长按识别二维码",
        font=text_font,
        fill=t.text_color,
        anchor="mt",
    )
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()
