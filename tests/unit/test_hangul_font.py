"""Plots in Korean: the image's matplotlib configuration (docker/matplotlibrc) draws a Hangul title
with real glyphs, no missing-glyph warning. Needs a font with Hangul installed (the image has
fonts-noto-cjk); without one the check is skipped, saying so, and the detector is still proven."""

from __future__ import annotations

import io
import warnings

import pytest

from tests.conftest import ROOT

matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is not installed")
matplotlib.use("Agg")

RC = ROOT / "docker" / "matplotlibrc"
TITLE = "루프라인: 산술 강도와 메모리 대역폭 (FP32)"


def render(rc: dict | None = None, fname=None) -> list[str]:
    """Draw a figure with a Korean title; return the missing-glyph warnings."""
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(rc=rc, fname=fname), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.set_title(TITLE)
        ax.set_xlabel("산술 강도 (FLOP/byte)")
        fig.savefig(io.BytesIO(), format="png")
        plt.close(fig)
    return [str(w.message) for w in caught if "missing from" in str(w.message) and "font" in str(w.message)]


def hangul_fonts() -> list[str]:
    from matplotlib import ft2font
    from matplotlib.font_manager import fontManager

    found = []
    for entry in fontManager.ttflist:
        if "Last Resort" in entry.name:  # matplotlib's own placeholder boxes for every code point
            continue
        try:
            if ord("한") in ft2font.FT2Font(entry.fname).get_charmap():
                found.append(entry.name)
        except (OSError, RuntimeError):
            continue
    return sorted(set(found))


def test_the_detector_sees_missing_hangul_glyphs():
    """A font without Hangul (DejaVu Sans alone) must produce the warning this check looks for."""
    assert render(rc={"font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"]}), \
        "no missing-glyph warning from a Latin-only font: the check below could not see a failure"


def test_the_image_installs_the_font_its_matplotlib_configuration_names():
    configured = matplotlib.rc_params_from_file(str(RC), use_default_template=False)["font.sans-serif"]
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert "fonts-noto-cjk" in dockerfile and "Noto Sans CJK KR" in configured
    assert "MATPLOTLIBRC=/etc/matplotlibrc" in dockerfile and "COPY docker/matplotlibrc /etc/matplotlibrc" in dockerfile


def test_the_image_configuration_draws_korean_titles(capsys):
    fonts = hangul_fonts()
    if not fonts:
        reason = "no font with Hangul is installed here (the image installs fonts-noto-cjk)"
        with capsys.disabled():
            print(f"\nSKIP Hangul rendering: {reason}")
        pytest.skip(reason)
    configured = matplotlib.rc_params_from_file(str(RC), use_default_template=False)["font.sans-serif"]
    assert set(fonts) & set(configured), f"{RC} names none of the installed Hangul fonts {fonts}"
    missing = render(fname=str(RC))
    assert not missing, f"{RC}: Korean text drawn with missing glyphs: {missing[:3]}"
