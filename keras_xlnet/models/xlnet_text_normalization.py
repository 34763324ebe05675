"""XLNet's text normalisation and digit-comma rule.

They follow the original `preprocess_text` and `encode_pieces` of XLNet:
collapse whitespace, turn ``` `` ``` and `''` into `"`, NFKD-normalise and
drop combining characters, optionally lower-case; after SentencePiece, a
piece such as `▁2000,` is re-encoded without its comma and `,` follows as
its own piece.
"""

import unicodedata

SPIECE_UNDERLINE = "\u2581"


def normalize_python(text, lowercase=False):
    """XLNet's `preprocess_text` on one Python string."""
    text = " ".join(text.strip().split())
    text = text.replace("``", '"').replace("''", '"')
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return text.lower() if lowercase else text


def split_digit_commas_python(pieces, encode_pieces):
    """The original's digit-comma rule on a list of pieces."""
    result = []
    for piece in pieces:
        if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
            parts = encode_pieces(piece[:-1].replace(SPIECE_UNDERLINE, ""))
            if piece[0] != SPIECE_UNDERLINE and parts[0][0] == SPIECE_UNDERLINE:
                if len(parts[0]) == 1:
                    parts = parts[1:]
                else:
                    parts = [parts[0][1:]] + parts[1:]
            result.extend(parts + [","])
        else:
            result.append(piece)
    return result
