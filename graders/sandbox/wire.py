"""How values cross between the grader's trusted interpreter and the learner's, inside a sandbox.

Standard library only (numpy and pandas are used when the sandbox's python has them): the source of
this module is prepended to both in-sandbox scripts (``runner.py``, ``learner.py``), and it is
imported normally by the grader's own tests.

The rule that makes grading tamper-resistant: test code runs in the trusted interpreter, and what it
gets from the learner's interpreter are **values** — numbers, text, bytes, None, booleans, lists,
tuples, dicts, sets, dates, decimals, fractions, numpy arrays and scalars, pandas frames and series —
rebuilt as the built-in types they are (a subclass loses its methods on the way: a list whose ``__eq__``
says yes to everything arrives as a plain list). Anything else (a function, a generator, an object of
a learner's class) arrives as a :class:`Handle` the test can call, read attributes and items of,
iterate and print — each such use is a request to the learner's interpreter, answered again with a
value or a handle — but not compare or ask for truth: what ``==`` or ``assert x`` means in a test is
never decided by learner code. Values the test passes to learner code travel the same way in the
other direction, and what learner code did to a list or dict it was given is copied back into the
test's own object afterwards (so a test can check that a function did not change its argument).
"""
import base64 as _b64
import math as _math

MAX_DEPTH = 64
#: how many values one message may carry (a list of a million numbers is fine, a billion is not)
MAX_ITEMS = 2_000_000


class WireError(ValueError):
    """A value that cannot cross: too deep, too large, or not a message of this protocol."""


def _np():
    try:
        import numpy
        return numpy
    except Exception:  # noqa: BLE001 - numpy is optional in the sandbox
        return None


def _np_loaded():
    """numpy, when this process has imported it (else nothing can be a numpy value here): checking a
    value must not import numpy, which costs a learner's interpreter more than its start-up."""
    import sys
    return sys.modules.get("numpy")


def _pd():
    import sys
    if "pandas" not in sys.modules:  # only a process that uses pandas pays for importing it
        return None
    return sys.modules["pandas"]


class Encoder:
    """Turns a value into JSON-able data. ``handle_of(obj)`` names an object that must stay where it
    is (it returns the JSON for a handle or a callback); ``known(obj)`` may return a JSON for an
    object the other side gave us (so its own objects come back as themselves)."""

    def __init__(self, handle_of, known=None):
        self.handle_of = handle_of
        self.known = known or (lambda obj: None)
        self.items = 0

    def __call__(self, obj, depth=0):
        self.items += 1
        if self.items > MAX_ITEMS:
            raise WireError("the value is too large to send between the notebook and its tests")
        if depth > MAX_DEPTH:
            raise WireError("the value is nested too deeply to send between the notebook and its tests")
        ref = self.known(obj)
        if ref is not None:
            return ref
        t = type(obj)
        if obj is None or t is bool or t is str:
            return obj
        if t is int:
            return obj
        if t is float:
            return obj if _math.isfinite(obj) else {"$f": repr(obj)}
        # subclasses of the built-in types cross as the built-in type: their methods stay behind
        if isinstance(obj, bool):
            return bool(obj)
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return self(float(obj), depth)
        if isinstance(obj, str):
            return str(obj)
        if isinstance(obj, dict):
            return {"$d": [[self(k, depth + 1), self(v, depth + 1)] for k, v in list(obj.items())]}
        if isinstance(obj, list):
            return {"$l": [self(v, depth + 1) for v in list(obj)]}
        if isinstance(obj, tuple):
            return {"$t": [self(v, depth + 1) for v in tuple(obj)]}
        if isinstance(obj, frozenset):
            return {"$fs": [self(v, depth + 1) for v in list(obj)]}
        if isinstance(obj, set):
            return {"$s": [self(v, depth + 1) for v in list(obj)]}
        if isinstance(obj, bytearray):
            return {"$ba": _b64.b64encode(bytes(obj)).decode()}
        if isinstance(obj, bytes):
            return {"$b": _b64.b64encode(bytes(obj)).decode()}
        if isinstance(obj, complex):
            return {"$c": [self(obj.real, depth + 1), self(obj.imag, depth + 1)]}
        if isinstance(obj, range):
            return {"$r": [obj.start, obj.stop, obj.step]}
        if obj is Ellipsis:
            return {"$e": 1}
        special = self._special(obj, depth)
        if special is not None:
            return special
        return self.handle_of(obj)

    def _special(self, obj, depth):
        import datetime
        import decimal
        import fractions

        if isinstance(obj, datetime.datetime):
            return {"$dt": obj.isoformat()}
        if isinstance(obj, datetime.date):
            return {"$date": obj.isoformat()}
        if isinstance(obj, datetime.time):
            return {"$time": obj.isoformat()}
        if isinstance(obj, datetime.timedelta):
            return {"$td": [obj.days, obj.seconds, obj.microseconds]}
        if isinstance(obj, decimal.Decimal):
            return {"$dec": str(obj)}
        if isinstance(obj, fractions.Fraction):
            return {"$frac": [obj.numerator, obj.denominator]}
        np = _np_loaded()
        if np is not None:
            if isinstance(obj, np.ndarray) and obj.dtype.kind in "biufcSUmM" and not obj.dtype.fields:
                self.items += obj.size
                if self.items > MAX_ITEMS:
                    raise WireError("the array is too large to send between the notebook and its tests")
                data = np.ascontiguousarray(obj)
                return {"$nd": [data.dtype.str, list(data.shape), _b64.b64encode(data.tobytes()).decode()]}
            if isinstance(obj, np.generic) and obj.dtype.kind in "biufcSUmM":
                return {"$ns": [obj.dtype.str, _b64.b64encode(np.asarray(obj).tobytes()).decode()]}
        pd = _pd()
        if pd is not None:
            if isinstance(obj, pd.Series):
                return {"$ps": [self(obj.name, depth + 1), self(list(obj.index), depth + 1),
                                self(obj.to_numpy(), depth + 1), str(obj.dtype)]}
            if isinstance(obj, pd.DataFrame):
                return {"$pd": [[self(c, depth + 1) for c in obj.columns], self(list(obj.index), depth + 1),
                                [self(obj[c].to_numpy(), depth + 1) for c in obj.columns],
                                [str(d) for d in obj.dtypes]]}
            if isinstance(obj, pd.Timestamp):
                return {"$dt": obj.isoformat()}
        return None


class Decoder:
    """Rebuilds a value from :class:`Encoder`'s JSON. ``resolve(tag, data)`` turns a handle or
    callback JSON into an object (a proxy, or one of our own objects coming back)."""

    def __init__(self, resolve):
        self.resolve = resolve
        self.items = 0

    def __call__(self, data, depth=0):
        self.items += 1
        if self.items > MAX_ITEMS or depth > MAX_DEPTH:
            raise WireError("a message that is too large or too deep")
        if data is None or isinstance(data, (bool, int, str)):
            return data
        if isinstance(data, float):
            return data
        if not isinstance(data, dict):
            raise WireError("not a value of this protocol")
        for tag in ("$h", "$cb"):
            if tag in data:
                return self.resolve(tag, data)
        if len(data) != 1:
            raise WireError("not a value of this protocol")
        (tag, value), = data.items()
        if tag == "$f":
            if value not in ("nan", "inf", "-inf"):
                raise WireError("not a float")
            return float(value)
        if tag == "$l":
            return [self(v, depth + 1) for v in self._seq(value)]
        if tag == "$t":
            return tuple(self(v, depth + 1) for v in self._seq(value))
        if tag == "$s":
            return {self(v, depth + 1) for v in self._seq(value)}
        if tag == "$fs":
            return frozenset(self(v, depth + 1) for v in self._seq(value))
        if tag == "$d":
            out = {}
            for pair in self._seq(value):
                if not isinstance(pair, list) or len(pair) != 2:
                    raise WireError("not a dict item")
                out[self(pair[0], depth + 1)] = self(pair[1], depth + 1)
            return out
        if tag == "$b":
            return _b64.b64decode(value)
        if tag == "$ba":
            return bytearray(_b64.b64decode(value))
        if tag == "$c":
            re, im = self._seq(value)
            return complex(self(re, depth + 1), self(im, depth + 1))
        if tag == "$r":
            return range(*[int(v) for v in self._seq(value)])
        if tag == "$e":
            return Ellipsis
        return self._special(tag, value, depth)

    @staticmethod
    def _seq(value):
        if not isinstance(value, list):
            raise WireError("not a sequence")
        return value

    def _special(self, tag, value, depth):
        import datetime
        import decimal
        import fractions

        if tag == "$dt":
            return datetime.datetime.fromisoformat(str(value))
        if tag == "$date":
            return datetime.date.fromisoformat(str(value))
        if tag == "$time":
            return datetime.time.fromisoformat(str(value))
        if tag == "$td":
            days, seconds, micro = [int(v) for v in self._seq(value)]
            return datetime.timedelta(days=days, seconds=seconds, microseconds=micro)
        if tag == "$dec":
            return decimal.Decimal(str(value))
        if tag == "$frac":
            n, d = [int(v) for v in self._seq(value)]
            return fractions.Fraction(n, d)
        if tag in ("$nd", "$ns"):
            np = _np()
            if np is None:
                raise WireError("numpy is not available to rebuild an array")
            dtype = np.dtype(str(value[0]))
            if dtype.kind not in "biufcSUmM":
                raise WireError("not an array of plain values")
            if tag == "$ns":
                return np.frombuffer(_b64.b64decode(value[1]), dtype=dtype)[0]
            shape = [int(s) for s in value[1]]
            count = 1
            for s in shape:
                count *= s
            self.items += count
            if self.items > MAX_ITEMS:
                raise WireError("an array that is too large")
            return np.frombuffer(_b64.b64decode(value[2]), dtype=dtype).reshape(shape).copy()
        if tag in ("$ps", "$pd"):
            import pandas as pd  # the other side sent one: pandas is there

            if tag == "$ps":
                name, index, values, dtype = value
                series = pd.Series(self(values, depth + 1), index=self(index, depth + 1), name=self(name, depth + 1))
                return series.astype(dtype) if str(series.dtype) != dtype else series
            columns, index, data, dtypes = value
            names = [self(c, depth + 1) for c in columns]
            frame = pd.DataFrame({n: self(col, depth + 1) for n, col in zip(names, data)},
                                 index=self(index, depth + 1), columns=names)
            for name, dtype in zip(names, dtypes):
                if str(frame[name].dtype) != dtype:
                    frame[name] = frame[name].astype(dtype)
            return frame
        raise WireError(f"unknown kind of value {tag!r}")


def update_in_place(original, new):
    """Make ``original`` (a value the test gave learner code) equal to ``new`` (what it became
    there), keeping the identity of ``original`` and, where they match, of what it holds."""
    if isinstance(original, list) and isinstance(new, list):
        for i in range(min(len(original), len(new))):
            if _mutable_same(original[i], new[i]):
                update_in_place(original[i], new[i])
            else:
                original[i] = new[i]
        if len(new) < len(original):
            del original[len(new):]
        else:
            original.extend(new[len(original):])
    elif isinstance(original, dict) and isinstance(new, dict):
        for key in [k for k in original if k not in new]:
            del original[key]
        for key, value in new.items():
            if key in original and _mutable_same(original[key], value):
                update_in_place(original[key], value)
            else:
                original[key] = value
    elif isinstance(original, set) and isinstance(new, set):
        original.clear()
        original.update(new)
    elif isinstance(original, bytearray) and isinstance(new, (bytes, bytearray)):
        original[:] = new
    else:
        np = _np_loaded()
        if np is not None and isinstance(original, np.ndarray) and isinstance(new, np.ndarray) \
                and original.shape == new.shape and original.flags.writeable:
            original[...] = new


def _mutable_same(a, b):
    return type(a) is type(b) and isinstance(a, (list, dict, set, bytearray))


def is_mutable_value(obj):
    """Values whose changes by learner code are copied back to the test's object."""
    if isinstance(obj, (list, dict, set, bytearray)):
        return True
    np = _np_loaded()
    return np is not None and isinstance(obj, np.ndarray)


class PeerGone(Exception):
    """The other interpreter closed its end (it exited, or was killed)."""


class Connection:
    """JSON lines between the two interpreters, requests and replies nested to any depth.

    A request is ``{"id": n, "op": ...}``; its reply ``{"reply": n, "ok": ...}``. While a side waits
    for a reply it answers the other side's requests (a test calls learner code, which calls a
    function the test gave it, which calls learner code again, ...) with ``handle(request)``. A
    message that is neither the awaited reply nor a request is a breach of the protocol.
    """

    def __init__(self, rfile, wfile, handle, max_line=1 << 26):
        self.rfile, self.wfile, self.handle = rfile, wfile, handle
        self.max_line = max_line
        self.waiting = []  # ids awaited, innermost last

    def send(self, obj):
        import json

        self.wfile.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self.wfile.flush()

    def receive(self):
        import json

        line = self.rfile.readline(self.max_line)
        if not line:
            raise PeerGone("the other interpreter is gone")
        if not line.endswith("\n"):
            raise WireError("a message longer than allowed")
        try:
            message = json.loads(line)
        except ValueError:
            raise WireError("a message that is not JSON") from None
        if not isinstance(message, dict):
            raise WireError("a message that is not an object")
        return message

    def request(self, message):
        # An unpredictable id: the other interpreter cannot send a reply ahead of a request it has
        # not received yet (learner code could otherwise answer the tests' questions blind).
        import random

        ident = random.SystemRandom().getrandbits(53)
        message["id"] = ident
        self.send(message)
        self.waiting.append(ident)
        try:
            while True:
                incoming = self.receive()
                if incoming.get("reply") == ident:
                    return incoming
                if "op" in incoming and isinstance(incoming.get("id"), int):
                    self.answer(incoming)
                    continue
                raise WireError("a reply to no request")
        finally:
            self.waiting.pop()

    def answer(self, request):
        try:
            reply = self.handle(request)
        except PeerGone:
            raise
        except WireError as exc:
            reply = {"ok": False, "error": {"type": "WireError", "bases": ["ValueError"], "message": str(exc)}}
        reply["reply"] = request["id"]
        self.send(reply)
