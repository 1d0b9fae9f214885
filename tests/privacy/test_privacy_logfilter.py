"""The masking rules of the log filter, one by one."""

from __future__ import annotations

import logging

import pytest

from liebian.privacy.logfilter import PIIMaskingFilter, mask_record, mask_text


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("13812345678", "138****5678"),
        ("+86 138-1234-5678", "138****5678"),
        ("008613812345678", "138****5678"),
        ("mail zhang.san@example.com.", "mail z***@example.com."),
        ("id=li%40corp.cn", "id=l***@corp.cn"),
        ("身份证 11010519491231002X 已核验", "身份证 110***********002X 已核验"),
        # not personal data: longer digit runs, HMAC hex, order ids, amounts
        ("order 202611151381234567", "order 202611151381234567"),
        ("hmac a13812345678b9", "hmac a13812345678b9"),
        ("amount_fen=12800", "amount_fen=12800"),
    ],
)
def test_mask_text(raw, masked):
    assert mask_text(raw) == masked


def test_record_keeps_its_arguments_when_masking_them_is_enough():
    # uvicorn's access formatter reads record.args itself: they must stay a tuple
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", "/x?phone=13812345678", "1.1", 200),
        None,
    )
    mask_record(record)
    assert record.args == ("1.2.3.4:5", "GET", "/x?phone=138****5678", "1.1", 200)
    assert record.getMessage() == '1.2.3.4:5 - "GET /x?phone=138****5678 HTTP/1.1" 200'
    # a phone passed as a number under %d: the message is kept masked as text
    record = logging.LogRecord("x", logging.INFO, "", 0, "phone %d", (13812345678,), None)
    mask_record(record)
    assert record.getMessage() == "phone 138****5678"


def test_filter_masks_exceptions():
    try:
        raise ValueError("bad phone 13912345678")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, "", 0, "failed", None, sys.exc_info())
    assert PIIMaskingFilter().filter(record)
    assert "139****5678" in record.exc_text and "13912345678" not in record.exc_text
