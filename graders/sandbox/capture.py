"""What a cell prints and displays, kept as nbformat outputs under a size cap, in both interpreters.

Standard library and IPython only: like ``wire.py``, its source is prepended to the in-sandbox
scripts (``runner.py``, ``learner.py``). Outputs are shaped as nbclient would write them (consecutive
writes of a stream merged), so nbgrader's ``determine_grade`` sees what a kernel would have produced.
"""
import json as _json


class OutputCapture:
    """Outputs of the request being answered, innermost frame last, and the output cap."""

    def __init__(self, max_output):
        self.max_output = max_output
        self.written = 0
        self.truncated = False
        self.frames = [[]]

    @property
    def outputs(self):
        return self.frames[-1]

    def push(self):
        self.frames.append([])

    def pop(self):
        return self.frames.pop()

    def room(self, n):
        """How much of an n-character write still fits under the cap."""
        left = self.max_output - self.written
        if left <= 0:
            if not self.truncated:
                self.truncated = True
                self.add_stream("stderr", "\n[learnhub] output truncated: limit of %d bytes reached\n"
                                % self.max_output, force=True)
            return 0
        return min(n, left)

    def add_stream(self, name, text, force=False):
        if not force:
            keep = self.room(len(text))
            if keep < len(text):
                text = text[:keep]
                self.room(1)  # records the truncation notice
            if not text:
                return
            self.written += len(text)
        outs = self.outputs
        if outs and outs[-1]["output_type"] == "stream" and outs[-1]["name"] == name:
            outs[-1]["text"] += text
        else:
            outs.append({"output_type": "stream", "name": name, "text": text})

    def sized(self, data):
        n = len(_json.dumps(data, default=str))
        if self.room(n) < n:
            return False
        self.written += n
        return True

    def add(self, output):
        """An output another interpreter produced (its text counts against this cap too)."""
        kind = output.get("output_type") if isinstance(output, dict) else None
        if kind == "stream" and output.get("name") in ("stdout", "stderr"):
            self.add_stream(output["name"], str(output.get("text", "")))
        elif kind == "display_data" and isinstance(output.get("data"), dict):
            data = json_safe(output["data"])
            if self.sized(data):
                self.outputs.append({"output_type": "display_data", "data": data,
                                     "metadata": output.get("metadata") if isinstance(output.get("metadata"), dict)
                                     else {}})

    def stream(self, name):
        return CapturedStream(self, name)


class CapturedStream:
    """``sys.stdout`` / ``sys.stderr`` writing into an :class:`OutputCapture`."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, capture, name):
        self.capture, self.name = capture, name

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        self.capture.add_stream(self.name, text)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def isatty(self):
        return False

    def readable(self):
        return False

    def writable(self):
        return True

    def fileno(self):
        import io

        raise io.UnsupportedOperation("fileno")


def json_safe(data):
    try:
        _json.dumps(data)
        return data
    except (TypeError, ValueError):
        return {str(k): str(v) for k, v in data.items()}


class LateNamespace(dict):
    """Globals whose missing names are looked up by ``resolver`` (set by their owner: the runner's
    tests' globals resolve to the learner's notebook), so that the shell using them can be made
    before its owner exists (``zygote.py``)."""

    resolver = None

    def __missing__(self, name):
        resolver = self.resolver
        if resolver is None:
            raise KeyError(name)
        return resolver(name)


def ipython_shell(capture, user_ns=None, adopt=None):
    """An IPython shell whose display hook, display publisher and tracebacks write into ``capture``
    (None when the sandbox's python has no IPython).

    ``adopt`` (``"learner"`` or ``"runner"``): take over the shell of that kind a warm parent made
    ahead (``zygote.py``, before any notebook existed; nothing of a notebook ran in it), pointed at
    ``capture``, instead of making one (a runner's has a :class:`LateNamespace`); ``user_ns`` is then
    used only when there is none. The other shells made ahead are dropped: a process has one."""
    try:
        from IPython.core.displayhook import DisplayHook
        from IPython.core.displaypub import DisplayPublisher
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config
    except Exception:  # noqa: BLE001 - minimal pythons without IPython
        return None
    ahead = InteractiveShell.__dict__.get("_learnhub_ahead") or {}
    InteractiveShell._learnhub_ahead = {}
    shell = ahead.get(adopt) if adopt else None
    InteractiveShell.clear_instance()
    if shell is not None:
        shell._learnhub_capture[0] = capture
        # what making it here would have done: instance() returns it (IPython's display() asks), and
        # __main__ is its namespace (pickle finds the notebook's classes)
        InteractiveShell._instance = shell
        shell.init_sys_modules()
        return shell
    box = [capture]  # where the outputs go

    def out():
        return box[0]

    class Hook(DisplayHook):
        def start_displayhook(self):
            self._fmt = None

        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            data = json_safe(format_dict)
            if out().sized(data):
                out().outputs.append({"output_type": "execute_result", "execution_count": self.prompt_count,
                                        "data": data, "metadata": md_dict or {}})

        def finish_displayhook(self):
            pass

    class Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kw):
            data = json_safe(data)
            if out().sized(data):
                out().outputs.append({"output_type": "display_data", "data": data, "metadata": metadata or {}})

        def clear_output(self, wait=False):
            out().outputs.clear()

    config = Config()
    # as nbgrader's Execute.extra_arguments: no history file
    config.HistoryManager.hist_file = ":memory:"
    kwargs = {"user_ns": user_ns} if user_ns is not None else {}
    shell = InteractiveShell.instance(config=config, displayhook_class=Hook, display_pub_class=Publisher,
                                      colors="NoColor", **kwargs)

    def showtraceback(etype, evalue, stb):
        out().outputs.append({"output_type": "error", "ename": str(etype.__name__), "evalue": str(evalue),
                                "traceback": stb})

    shell._showtraceback = showtraceback
    shell._learnhub_capture = box
    if hasattr(shell, "_tee"):
        # IPython >= 9 copies every write of a cell into its output history (for %history -o),
        # without a cap: a cell printing in a loop would exhaust the memory limit long before
        # the output cap ends it. The capture keeps the outputs itself.
        import contextlib

        shell._tee = lambda channel: contextlib.nullcontext()
    return shell
