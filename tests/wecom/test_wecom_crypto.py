"""WeCom's callback crypto against the sample vectors published with its official sample code.

Vectors: sbzhu/weworkapi_python `callback/Sample.py` (token hJqcu3uJ…, corp ww1436e0e65a779aee) and
the WXBizMsgCrypt samples for C#/PHP/Java and the callback documentation (token "QDG6eK",
EncodingAESKey "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", corp "wx5823bf96d3bd56c7").
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from wecom_helpers import SAMPLE_AES_KEY, SAMPLE_CORP_ID, SAMPLE_TOKEN

from liebian.wecom.crypto import CryptoError, MsgCrypt, aes_key, signature

# The documented sample: VerifyURL and a POSTed message (DecryptMsg).
VERIFY = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}
REQ_SIG, REQ_TS, REQ_NONCE = "477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149"
REQ_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/"
    "sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJ"
    "YuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUc"
    "allcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5P"
    "l/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)

# sbzhu/weworkapi_python callback/Sample.py
PY_TOKEN, PY_KEY, PY_CORP = (
    "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
    "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
    "ww1436e0e65a779aee",
)
PY_VERIFY = (
    "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
    "1476416373",
    "47744683",
    "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
)
PY_REQ = (
    "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
    "1476422779",
    "1597212914",
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew"
    "+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24Yh"
    "mZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcw"
    "ocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+",
)


@pytest.fixture
def sample() -> MsgCrypt:
    return MsgCrypt(SAMPLE_TOKEN, SAMPLE_AES_KEY, SAMPLE_CORP_ID)


def test_published_signatures_are_sha1_of_the_sorted_parts():
    # The published msg_signature values, recomputed from the documented formula.
    assert (
        signature(SAMPLE_TOKEN, VERIFY["timestamp"], VERIFY["nonce"], VERIFY["echostr"])
        == VERIFY["msg_signature"]
    )
    assert signature(SAMPLE_TOKEN, REQ_TS, REQ_NONCE, REQ_ENCRYPT) == REQ_SIG
    joined = "".join(sorted([PY_TOKEN, *PY_REQ[1:]]))
    assert hashlib.sha1(joined.encode()).hexdigest() == PY_REQ[0]


def test_published_url_verification(sample: MsgCrypt):
    assert sample.verify_url(**VERIFY) == "1616140317555161061"
    python_sample = MsgCrypt(PY_TOKEN, PY_KEY, PY_CORP)
    assert python_sample.verify_url(*PY_VERIFY) == "1288432023552776189"


def test_published_message_decrypts(sample: MsgCrypt):
    msg = sample.decrypt_msg(REQ_SIG, REQ_TS, REQ_NONCE, REQ_ENCRYPT)
    assert "<Content><![CDATA[hello]]></Content>" in msg
    assert "<MsgId>4561255354251345929</MsgId>" in msg
    assert "<CreateTime>1409659813</CreateTime>" in msg
    py = MsgCrypt(PY_TOKEN, PY_KEY, PY_CORP).decrypt_msg(*PY_REQ)
    assert "<Content>你好</Content>" in py and "<FromUserName>ChenJiaShun</FromUserName>" in py


def test_key_is_base64_of_the_encoding_aes_key():
    key = aes_key(SAMPLE_AES_KEY)
    assert key == base64.b64decode(SAMPLE_AES_KEY + "=") and len(key) == 32
    with pytest.raises(CryptoError) as exc:
        aes_key(SAMPLE_AES_KEY[:-1])
    assert exc.value.code == "bad_aes_key"


def test_round_trip_and_layout(sample: MsgCrypt):
    # Chinese text: the length field counts bytes, not characters (as the C# sample stresses).
    msg = "<xml><Content><![CDATA[测试一下中文的情况，消息长度是按字节来算的]]></Content></xml>"
    enc = sample.encrypt(msg)
    assert sample.decrypt(enc) == msg
    assert sample.encrypt(msg) != enc  # a fresh random prefix each time
    # Decrypt independently and check the documented layout: 16 random bytes, length, msg, receiveid,
    # PKCS#7 padding to 32-byte blocks.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = base64.b64decode(SAMPLE_AES_KEY + "=")
    raw = base64.b64decode(sample.encrypt(msg, random_prefix=b"R" * 16))
    d = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = d.update(raw) + d.finalize()
    body = msg.encode()
    unpadded_len = 16 + 4 + len(body) + len(SAMPLE_CORP_ID)
    pad = 32 - unpadded_len % 32
    assert len(plain) == unpadded_len + pad and plain[-pad:] == bytes([pad]) * pad
    assert plain[:16] == b"R" * 16
    assert int.from_bytes(plain[16:20], "big") == len(body)
    assert plain[20 : 20 + len(body)] == body
    assert plain[20 + len(body) : unpadded_len] == SAMPLE_CORP_ID.encode()


def test_envelope_round_trip(sample: MsgCrypt):
    import xml.etree.ElementTree as ET

    env = ET.fromstring(sample.encrypt_msg("<xml>hi</xml>", "1700000000", "42"))
    assert (
        sample.decrypt_msg(env.findtext("MsgSignature"), "1700000000", "42", env.findtext("Encrypt"))
        == "<xml>hi</xml>"
    )


@pytest.mark.parametrize("part", ["signature", "timestamp", "nonce"])
def test_tampered_signature_inputs_are_rejected(sample: MsgCrypt, part: str):
    args = {"msg_signature": REQ_SIG, "timestamp": REQ_TS, "nonce": REQ_NONCE, "encrypt": REQ_ENCRYPT}
    if part == "signature":
        args["msg_signature"] = "0" + REQ_SIG[1:]
    else:
        args[part] = args[part] + "1"
    with pytest.raises(CryptoError) as exc:
        sample.decrypt_msg(**args)
    assert exc.value.code == "bad_signature"


def test_tampered_ciphertext_is_rejected(sample: MsgCrypt):
    raw = bytearray(base64.b64decode(REQ_ENCRYPT))
    raw[-1] ^= 0x01  # flips the last plaintext byte: the padding no longer checks out
    forged = base64.b64encode(bytes(raw)).decode()
    # the signature is over the ciphertext: a forger without the token fails there first
    with pytest.raises(CryptoError) as exc:
        sample.decrypt_msg(REQ_SIG, REQ_TS, REQ_NONCE, forged)
    assert exc.value.code == "bad_signature"
    # and one who re-signs (knows the token, not the key) fails at decryption
    with pytest.raises(CryptoError) as exc:
        sample.decrypt(forged)
    assert exc.value.code in {"bad_padding", "bad_length", "bad_receive_id", "bad_ciphertext"}
    with pytest.raises(CryptoError) as exc:
        sample.decrypt("not base64!!")
    assert exc.value.code == "bad_ciphertext"
    with pytest.raises(CryptoError) as exc:
        sample.decrypt(base64.b64encode(b"x" * 20).decode())
    assert exc.value.code == "bad_ciphertext"


def test_wrong_receive_id_is_rejected():
    other = MsgCrypt(SAMPLE_TOKEN, SAMPLE_AES_KEY, "ww0000000000000000")
    enc = other.encrypt("<xml/>")
    with pytest.raises(CryptoError) as exc:
        MsgCrypt(SAMPLE_TOKEN, SAMPLE_AES_KEY, SAMPLE_CORP_ID).decrypt(enc)
    assert exc.value.code == "bad_receive_id"


def test_repr_hides_secrets(sample: MsgCrypt):
    assert SAMPLE_TOKEN not in repr(sample) and SAMPLE_AES_KEY not in repr(sample)
