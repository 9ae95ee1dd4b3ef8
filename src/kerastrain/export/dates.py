"""Date strings read inside the exported graph exactly as `predict` reads them
(`data/kinds.py`'s `as_days`): `ParseDays`, strings -> days since 1970-01-01.

- ISO 8601 as NumPy reads it: 2024, 2024-05, 2024-05-17, 2024-05-17T08[:30[:00[.5]]]
  (a space for the T), then Z or an offset to UTC (+01, +0100, -05:30), converted to UTC;
- the numeric forms: 05/17/2024[ 08:30[:00]], 2024/05/17, 17.05.2024;
- month names, any case, abbreviated or in full: 5 Mar 2024, 5 March 2024, Mar 5, 2024,
  March 5, 2024.

Anything else (and no such day: 2021-02-30) is missing, as in `predict`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TIME = r"(?: (\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?"
ISO_TIME = r"[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.\d*)?)?)?(?:Z|([+-])(\d{2})(?::?(\d{2}))?)?"
DATE_FORMS = (   # each rewritten as "Y-M-D h:m:s S:oh:om" (S the offset's sign)
    (r"^(\d{4})-(\d{2})-(\d{2})(?:" + ISO_TIME + ")?$", r"\1-\2-\3 \4:\5:\6 \7:\8:\9"),
    (r"^(\d{4})-(\d{2})$", r"\1-\2-1 :: ::"),                             # 2024-05
    (r"^(\d{4})$", r"\1-1-1 :: ::"),                                       # 2024
    (r"^(\d{1,2})/(\d{1,2})/(\d{4})" + TIME + "$", r"\3-\1-\2 \4:\5:\6 ::"),  # 05/17/2024
    (r"^(\d{4})/(\d{1,2})/(\d{1,2})$", r"\1-\2-\3 :: ::"),                   # 2024/05/17
    (r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$", r"\3-\2-\1 :: ::"))                 # 17.05.2024
NAMED_FORMS = (   # lower-cased; the month's name in place of its number
    (r"^(\d{1,2})\s+([a-z]+)\s+(\d{4})$", r"\3-\2-\1 :: ::"),                # 5 mar 2024
    (r"^([a-z]+)\s+(\d{1,2}),\s+(\d{4})$", r"\3-\1-\2 :: ::"))               # mar 5, 2024
NORMAL = r"^(\d+)-(\d+)-(\d+) (\d*):(\d*):(\d*) ([+-]?):(\d*):(\d*)$"
NAMED = r"^(\d+)-([a-z]+)-(.*)$"
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
          "january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]   # strptime's %b and %B


def parse_days_class(keras: Any, tf: Any, register: Any) -> type:
    """The `ParseDays` layer class, registered with `register`."""

    @register
    class ParseDays(keras.layers.Layer):
        """Date strings -> days since 1970-01-01 (float64; NaN where missing or no date)."""

        def __init__(self, **kwargs: Any) -> None:
            kwargs["dtype"] = "float64"
            super().__init__(**kwargs)

        def call(self, x: Any) -> Any:
            ok = tf.zeros_like(x, dtype=tf.bool)
            text = tf.fill(tf.shape(x), "1970-1-1 :: ::")
            lower = tf.strings.lower(x)   # month names in any case
            for source, (pattern, form) in [(x, f) for f in DATE_FORMS] + \
                    [(lower, f) for f in NAMED_FORMS]:
                match = tf.strings.regex_full_match(source, pattern) & ~ok
                text = tf.where(match, tf.strings.regex_replace(source, pattern, form), text)
                ok = ok | match
            named = tf.strings.regex_full_match(text, NAMED)
            found = tf.equal(tf.strings.regex_replace(text, NAMED, r"\2")[:, None],
                             tf.constant(MONTHS)[None, :])
            number = tf.strings.as_string(tf.argmax(tf.cast(found, tf.int32), axis=1) % 12 + 1)
            text = tf.where(named, tf.strings.join([tf.strings.regex_replace(
                text, NAMED, r"\1-"), number, tf.strings.regex_replace(text, NAMED, r"-\3")]),
                text)
            ok = ok & (~named | tf.reduce_any(found, axis=1))

            def group(k: int) -> Any:   # "0" before an empty (absent) part: 0
                return tf.strings.to_number(tf.strings.regex_replace(
                    text, NORMAL, "0\\" + str(k)), tf.float64)

            year, month, day = group(1), group(2), group(3)
            hour, minute, second = group(4), group(5), group(6)
            west = tf.equal(tf.strings.regex_replace(text, NORMAL, r"\7"), "-")
            sign = tf.where(west, tf.constant(-1.0, tf.float64), tf.constant(1.0, tf.float64))
            offset = sign * (group(8) * 3600.0 + group(9) * 60.0)   # seconds east of UTC
            start = _days(tf, year, month)
            length = _days(tf, year + tf.cast(month == 12, tf.float64),
                           tf.where(month == 12, tf.ones_like(month), month + 1)) - start
            valid = ok & (month >= 1) & (month <= 12) & (day >= 1) & (day <= length) & \
                (hour < 24) & (minute < 60) & (second < 60) & (group(8) < 24) & (group(9) < 60)
            seconds = (start + day - 1.0) * 86400.0 + hour * 3600.0 + minute * 60.0 + second
            days = (seconds - offset) / 86400.0   # whole seconds, divided once: as `predict`
            return tf.where(valid, days, tf.constant(np.nan, tf.float64))

    return ParseDays


def _days(tf: Any, year: Any, month: Any) -> Any:
    """Days since 1970-01-01 of the first of `month` in `year` (Hinnant's days-from-civil)."""
    y = year - tf.cast(month <= 2, tf.float64)
    era = tf.floor(y / 400.0)
    yoe = y - era * 400.0
    mp = tf.where(month > 2, month - 3.0, month + 9.0)
    doy = tf.floor((153.0 * mp + 2.0) / 5.0)
    doe = yoe * 365.0 + tf.floor(yoe / 4.0) - tf.floor(yoe / 100.0) + doy
    return era * 146097.0 + doe - 719468.0
